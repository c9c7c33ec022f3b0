/**
 * `configure`: store a config field's secret in the vault and turn
 * the field into `<field>_vault_ref = "<scope>/<key>"`, changing nothing else
 * in the file: comments, order, spacing, line endings, a byte order mark and
 * other tables stay byte for byte. The file is locked while it is read,
 * changed and written, so concurrent runs on one file never lose an update.
 */
import { basename, dirname, join } from "../platform/path.ts";
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { fromUtf8, utf8 } from "../crypto/encoding.ts";
import { acquireLock } from "../store/scope_lock.ts";
import { formatScope, formatVaultRef, toScope, validateKey, type VaultScope } from "../scope.ts";
import { defaultFileSystem, type FileSystem } from "../platform/fs.ts";
import { findCredential, isPlaceholder, VAULT_REF_SUFFIX } from "./sensitive.ts";
import { backupsWithPlaintext, refIn } from "./audit.ts";
import { type ConfigField, formatPath, parseConfigFields, parsePath } from "./toml.ts";

/**
 * What configure needs from the vault. With `overwrite: false`, `putSecret`
 * must refuse (`conflict`) to replace a different value, and do nothing when
 * the key already holds the same one; `Vault.putSecret` does. When its result
 * has `replaced: true`, a different value was replaced.
 */
export interface SecretStore {
  /** Stores `value` under `scope`/`key`, honouring `overwrite` as above; of the result only `replaced` is read. */
  putSecret(
    scope: VaultScope | string,
    key: string,
    value: Uint8Array | string,
    options?: { overwrite?: boolean },
  ): Promise<unknown>;
}

/** Options of `configureField`. */
export interface ConfigureOptions {
  /** The TOML file to rewrite. */
  path: string;
  /** Dotted path of the field, e.g. `model_provider.openai_api_key`. */
  field: string;
  /** The scope to store the secret in: `global`, `ws:<id>`, … or a parsed `VaultScope`. */
  scope: VaultScope | string;
  /** The key to store it under (1–128 characters of `[a-z0-9._-]`). */
  key: string;
  /** The value to store; omit with `fromConfig` to move the plaintext already in the file. */
  value?: Uint8Array;
  /**
   * Move the plaintext the field holds now into the vault. A file whose field
   * already holds the reference is left as it is; an empty value or a
   * placeholder is `not_found`.
   */
  fromConfig?: boolean;
  /** How many backups to keep (`<file>.bak.1` newest). Default 5; 0 keeps none. */
  backups?: number;
  /** Replace a different value already stored under the key (otherwise that is a `conflict`). */
  force?: boolean;
  /** How long to wait for another configure run on the same file. Default 10 000 ms. */
  lockTimeoutMs?: number;
  /** Where the secret is stored: an open `Vault`, or anything with its `putSecret`. */
  vault: SecretStore;
  /** @internal the file layer (tests inject faults). */
  fs?: FileSystem;
}

/** What configure did. */
export interface ConfigureResult {
  /** The file that was (or would have been) rewritten. */
  path: string;
  /** The field that now holds the reference. */
  field: string;
  /** The reference the field holds: `<scope>/<key>`, canonical. */
  reference: string;
  /** Whether a value was stored in the vault. */
  stored: boolean;
  /** Whether storing replaced a different value (only with `force`). */
  replaced: boolean;
  /** Whether the file changed. */
  changed: boolean;
  /** The backup of the previous file, when one was made. */
  backup: string | undefined;
  /**
   * Every backup beside the file (`<file>.bak.N`) that still holds a
   * plaintext secret, newest first; checked whenever the file changed. Warn
   * the user: these should be deleted once the new file works.
   */
  plaintextBackups: string[];
}

/** A TOML basic string holding `text`. */
function tomlString(text: string): string {
  return `"${text.replace(/["\\]/g, (c) => "\\" + c)}"`;
}

/** Applies replacements (non-overlapping source ranges) from the end backwards. */
function splice(text: string, edits: Array<{ range: readonly [number, number]; text: string }>): string {
  let out = text;
  for (const e of edits.slice().sort((a, b) => b.range[0] - a.range[0])) {
    out = out.slice(0, e.range[0]) + e.text + out.slice(e.range[1]);
  }
  return out;
}

function refFieldPath(segments: readonly (string | number)[]): string {
  const last = segments.at(-1) as string;
  return formatPath([...segments.slice(0, -1), last + VAULT_REF_SUFFIX]);
}

/**
 * Plans the rewrite of `text`: returns the new text (equal to `text` when
 * nothing needs to change) and the plaintext currently in the field, if any.
 */
export async function planConfigure(
  text: string,
  file: string,
  field: string,
  reference: string,
): Promise<{ text: string; plaintext: string | undefined; refField: string }> {
  const segments = parsePath(field);
  if (segments === undefined || typeof segments.at(-1) !== "string") {
    throw new VaultError("invalid_ref", `configure field ${JSON.stringify(field)} failed: not a dotted field path`, {
      hint: "name the field as in the audit output, e.g. model_provider.openai_api_key or channels[0].bot_token",
    });
  }
  const canonical = formatPath(segments);
  const refPath = refFieldPath(segments);
  const fields = await parseConfigFields(text, file);
  const target = fields.find((f) => f.path === canonical);
  const existingRef = fields.find((f) => f.path === refPath);
  const fail = (why: string, hint: string) =>
    new VaultError("io", `configure ${canonical} in "${file}" failed: ${why}`, { hint });

  if (target !== undefined) {
    if (target.keyRange === undefined) throw fail("the field is inside an array", "move the value by hand");
    if (target.value === undefined) throw fail("the field does not hold a string", "only string fields can be moved");
    if (existingRef !== undefined) {
      throw fail(
        `both ${canonical} and ${refPath} are set`,
        `remove one of them from the file, then run configure again`,
      );
    }
    const keyEnd = target.keyQuoted ? target.keyRange[1] - 1 : target.keyRange[1];
    const edits = [
      { range: [keyEnd, keyEnd] as const, text: VAULT_REF_SUFFIX },
      { range: target.valueRange, text: tomlString(reference) },
    ];
    return { text: splice(text, edits), plaintext: target.value, refField: refPath };
  }
  if (existingRef !== undefined) {
    if (existingRef.value === reference) return { text, plaintext: undefined, refField: refPath };
    return {
      text: splice(text, [{ range: existingRef.valueRange, text: tomlString(reference) }]),
      plaintext: undefined,
      refField: refPath,
    };
  }
  throw new VaultError("not_found", `configure ${canonical} in "${file}" failed: the file has no such field`, {
    hint: `add ${canonical} (or ${refPath}) to the file first; audit lists the fields it found`,
  });
}

/** Checks that the rewrite did what it should before it is written. */
async function verify(
  newText: string,
  file: string,
  field: string,
  refField: string,
  reference: string,
): Promise<void> {
  const after = await parseConfigFields(newText, file);
  const ok = after.some((f: ConfigField) => f.path === refField && f.value === reference) &&
    !after.some((f) => f.path === field);
  if (!ok) throw new VaultError("io", `configure ${field} in "${file}" failed: the rewritten file did not check out`);
}

async function rotateBackups(fs: FileSystem, path: string, keep: number, original: Uint8Array): Promise<string> {
  for (let n = keep - 1; n >= 1; n--) {
    try {
      await fs.rename(`${path}.bak.${n}`, `${path}.bak.${n + 1}`);
    } catch (e) {
      if (errnoCode(e) !== "ENOENT") throw e;
    }
  }
  const first = `${path}.bak.1`;
  // Backups may hold the plaintext that is being moved: owner-only.
  await fs.writeFileAtomic(first, original, 0o600);
  return first;
}

/**
 * Stores a config field's secret and rewrites the field as a vault reference.
 * If storing fails, the file is untouched; if the rewrite fails, the secret
 * stays stored and the error says so.
 *
 * @example
 * ```ts
 * import { configureField, Vault } from "@palyra/vault";
 * const vault = await Vault.open();
 * await configureField({
 *   path: "palyra.toml",
 *   field: "model_provider.openai_api_key",
 *   scope: "global",
 *   key: "openai_api_key",
 *   fromConfig: true,
 *   vault,
 * });
 * ```
 */
export async function configureField(options: ConfigureOptions): Promise<ConfigureResult> {
  const fs = options.fs ?? defaultFileSystem;
  const scope = formatScope(toScope(options.scope));
  const key = validateKey(options.key);
  const reference = formatVaultRef({ scope: toScope(scope), key });
  const keep = options.backups ?? 5;
  if (!Number.isSafeInteger(keep) || keep < 0) throw new RangeError("configure failed: backups must be 0 or more");
  if (!options.fromConfig && options.value === undefined) {
    throw new TypeError("configure failed: give a value, or fromConfig to move the one in the file");
  }
  const segments = parsePath(options.field);

  // Write where the file really is, so a symlinked config (dotfiles) stays a link.
  let path: string;
  try {
    path = await fs.realpath(options.path);
  } catch (e) {
    throw readError(options.path, e);
  }
  // One configure at a time per file: read, change and write under the lock.
  const lock = await acquireLock(fs, join(dirname(path), `.${basename(path)}.lock`), {
    timeoutMs: options.lockTimeoutMs ?? 10_000,
    staleAfterMs: 30_000,
    what: `config file "${options.path}"`,
  });
  try {
    return await configureLocked(options, fs, path, scope, key, reference, keep, segments);
  } finally {
    await lock.release();
  }
}

function readError(file: string, e: unknown): VaultError {
  if (errnoCode(e) === "ENOENT") {
    return new VaultError("not_found", `configure failed: the config file "${file}" does not exist`, {
      hint: "pass --path with the file to change",
    });
  }
  return fsError("read config file", file, e);
}

async function configureLocked(
  options: ConfigureOptions,
  fs: FileSystem,
  path: string,
  scope: string,
  key: string,
  reference: string,
  keep: number,
  segments: (string | number)[] | undefined,
): Promise<ConfigureResult> {
  let bytes: Uint8Array;
  let mode: number;
  try {
    bytes = await fs.readFile(path);
    mode = (await fs.lstat(path))?.mode ?? 0o600;
  } catch (e) {
    throw readError(options.path, e);
  }
  let text: string;
  try {
    text = fromUtf8(bytes);
  } catch {
    throw new VaultError("invalid_config", `read config file "${options.path}" failed: it is not valid UTF-8`, {
      hint: "save the file as UTF-8",
    });
  }
  const plan = await planConfigure(text, options.path, options.field, reference);
  const field = formatPath(segments!);
  const unchanged = (stored: boolean, replaced: boolean): ConfigureResult => ({
    path,
    field: plan.refField,
    reference,
    stored,
    replaced,
    changed: false,
    backup: undefined,
    plaintextBackups: [],
  });

  // A reference typed into the plain field: the fix is a rename, not a store.
  const misplaced = plan.plaintext === undefined || findCredential(plan.plaintext) !== undefined
    ? undefined
    : refIn(plan.plaintext);
  let value: Uint8Array | undefined;
  if (options.fromConfig) {
    if (plan.plaintext === undefined) {
      // Already done: re-running is harmless.
      if (plan.text === text) return unchanged(false, false);
      throw new VaultError("not_found", `configure ${field} failed: --from-config, but the file holds no value there`, {
        hint: "pipe the value on stdin instead",
      });
    }
    if (plan.plaintext.length === 0) {
      throw new VaultError("not_found", `configure ${field} failed: the value in the file is empty`, {
        hint: "pipe the value on stdin instead",
      });
    }
    if (misplaced !== undefined) {
      const held = `${misplaced.scope}/${misplaced.key}`;
      if (held !== reference) {
        throw new VaultError(
          "conflict",
          `configure ${field} failed: the field holds the vault reference ${held}, not ${reference}`,
          {
            hint: `run configure ${field} ${misplaced.scope} ${misplaced.key} --from-config to rename the field, ` +
              `or pipe the secret on stdin to store it as ${reference}`,
          },
        );
      }
    } else if (isPlaceholder(plan.plaintext)) {
      throw new VaultError("not_found", `configure ${field} failed: the file holds a placeholder there, not a secret`, {
        hint: "pipe the real value on stdin instead (without --from-config)",
      });
    } else {
      value = utf8(plan.plaintext);
    }
  } else {
    value = options.value;
  }
  if (plan.text !== text) await verify(plan.text, options.path, field, plan.refField, reference);

  let stored = false;
  let replaced = false;
  if (value !== undefined) {
    let result: unknown;
    try {
      result = await options.vault.putSecret(scope, key, value, { overwrite: options.force === true });
    } catch (e) {
      if (VaultError.is(e, "conflict")) {
        throw new VaultError(
          "conflict",
          `configure ${field} failed: ${reference} already holds a different value; nothing was changed`,
          {
            hint: "choose another key, or pass --force (force: true) to replace the stored value",
            cause: e,
          },
        );
      }
      throw e;
    } finally {
      if (options.fromConfig) value.fill(0);
    }
    stored = true;
    replaced = typeof result === "object" && result !== null && (result as { replaced?: unknown }).replaced === true;
  }
  if (plan.text === text) return unchanged(stored, replaced);

  let backup: string | undefined;
  try {
    if (keep > 0) backup = await rotateBackups(fs, path, keep, bytes);
    await fs.writeFileAtomic(path, utf8(plan.text), mode);
  } catch (e) {
    const what = stored ? `the secret was stored as ${reference}, but rewriting` : "rewriting";
    throw new VaultError(
      "io",
      `configure ${field}: ${what} "${options.path}" failed (${errnoCode(e) ?? (e as Error).message})`,
      {
        hint: stored
          ? "the secret stays in the vault; fix the problem and run configure again (without --from-config)"
          : "fix the problem and run configure again",
        cause: e,
      },
    );
  }
  let plaintextBackups: string[];
  try {
    plaintextBackups = (await backupsWithPlaintext(path, fs)).map((h) => h.path);
  } catch {
    plaintextBackups = backup === undefined ? [] : [backup];
  }
  return {
    path: join(dirname(path), basename(path)),
    field: plan.refField,
    reference,
    stored,
    replaced,
    changed: true,
    backup,
    plaintextBackups,
  };
}
