/**
 * Export and import of secrets as an age file (docs/FORMAT.md §9): one JSON
 * document, `palyra.vault.export.v1`, encrypted with the C2SP age v1 format
 * through the `age-encryption` library, to a passphrase (scrypt) or to X25519
 * recipients, so that the standard `age` tool opens what `exportVault` writes
 * and `importVault` reads what `age` encrypted.
 *
 * The age library is loaded only when a file is made or opened.
 */
import { VaultError } from "./errors.ts";
import {
  concatBytes,
  fromPaddedBase64,
  fromUtf8,
  parseJsonObject,
  sameBytes,
  toBase64PaddedBytes,
  utf8,
} from "./crypto/encoding.ts";
import type { SensitiveBytes } from "./crypto/sensitive.ts";
import { formatScope, parseScope, toScope, validateKey, type VaultScope } from "./scope.ts";
import { type SecretMetadata, Vault } from "./vault.ts";

/** The `format` of the document inside an export file. */
export const EXPORT_FORMAT = "palyra.vault.export.v1";

/**
 * Options of `exportVault`: who can open the file (a passphrase, or one or
 * more age recipients), and which scopes go in it.
 *
 * @example
 * ```ts
 * import type { ExportOptions } from "@palyra/vault";
 * const options: ExportOptions = { recipients: ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"] };
 * ```
 */
export interface ExportOptions {
  /** Encrypt to this passphrase (age's scrypt recipient). Give this or `recipients`, not both. */
  passphrase?: string;
  /** Encrypt to these age X25519 recipients (`age1…`). */
  recipients?: readonly string[];
  /** Only these scopes. Default: every scope. */
  scopes?: readonly (VaultScope | string)[];
  /** scrypt's work factor (log2 of N) for a passphrase. Default 18, as the `age` tool uses. */
  scryptWorkFactor?: number;
}

/** What `exportVault` made. */
export interface ExportResult {
  /** The age file (binary, not armored). */
  file: Uint8Array;
  /** How many secrets it holds. */
  secrets: number;
  /** The scopes it holds secrets of, sorted. */
  scopes: string[];
}

/** What to do when an imported secret's key already holds a different value. */
export type ImportConflict = "fail" | "skip" | "overwrite";

/**
 * Options of `importVault`: how to open the file, and what to do about keys
 * that already hold a different value.
 *
 * @example
 * ```ts
 * import type { ImportOptions } from "@palyra/vault";
 * const options: ImportOptions = { passphrase: "correct horse battery staple", onConflict: "skip" };
 * ```
 */
export interface ImportOptions {
  /** The passphrase the file was encrypted to. */
  passphrase?: string;
  /** age identities (`AGE-SECRET-KEY-1…`), one per string, or the text of an identity file. */
  identities?: readonly string[];
  /**
   * A key that already holds a different value: `"fail"` (the default) imports
   * nothing at all; `"skip"` keeps the vault's value; `"overwrite"` replaces it.
   * A key already holding the same value is counted as unchanged in every mode.
   */
  onConflict?: ImportConflict;
}

/** What `importVault` did. */
export interface ImportResult {
  /** Secrets in the file. */
  secrets: number;
  /** Secrets stored under keys that were not set. */
  imported: number;
  /** Keys whose different value was replaced (`onConflict: "overwrite"`). */
  overwritten: number;
  /** Keys that already held the same value. */
  unchanged: number;
  /** Keys whose different value was kept (`onConflict: "skip"`). */
  skipped: number;
  /** The scopes of the file, sorted. */
  scopes: string[];
}

type Age = typeof import("age-encryption");
const loadAge = (): Promise<Age> => import("age-encryption");

/** One secret of a document being read. */
interface Incoming {
  scope: string;
  key: string;
  value: Uint8Array;
  createdAtUnixMs: number;
  updatedAtUnixMs: number;
}

function badOption(action: string, why: string): TypeError {
  return new TypeError(`${action} failed: ${why}`);
}

/** A passphrase or recipients, exactly one of them, checked before any secret is read. */
function protection(options: ExportOptions): { passphrase: string } | { recipients: string[] } {
  const action = "export vault";
  const { passphrase, recipients } = options;
  if (passphrase !== undefined && recipients !== undefined) {
    throw badOption(action, "give a passphrase or recipients, not both (age encrypts a file to one kind)");
  }
  if (passphrase !== undefined) {
    if (typeof passphrase !== "string" || passphrase.length === 0) {
      throw badOption(action, "the passphrase must be a non-empty string");
    }
    return { passphrase };
  }
  if (recipients === undefined || recipients.length === 0) {
    throw badOption(action, "give a passphrase or at least one age recipient (age1…)");
  }
  for (const r of recipients) {
    if (typeof r !== "string" || !/^age1[0-9a-z]+$/.test(r)) {
      throw badOption(action, `${JSON.stringify(r)} is not an age recipient (age1…, from age-keygen -y)`);
    }
  }
  return { recipients: [...recipients] };
}

function workFactor(value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < 10 || value > 22) {
    throw badOption("export vault", `scryptWorkFactor must be a whole number from 10 to 22, got ${String(value)}`);
  }
  return value;
}

/**
 * Writes secrets into an age file: every secret of the vault, or of the
 * scopes given, with their values and times, encrypted to a passphrase or to
 * age recipients. `age -d` opens it; `importVault` reads it back.
 *
 * @throws {TypeError} when neither or both of `passphrase` and `recipients` are given, or a recipient is malformed.
 * @throws {VaultError} as `getSecret` does for a secret that cannot be read; nothing is returned then.
 * @example
 * ```ts
 * import { exportVault, Vault } from "@palyra/vault";
 * using vault = await Vault.open();
 * const { file, secrets } = await exportVault(vault, {
 *   recipients: ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"],
 * });
 * console.log(file.length, secrets);
 * ```
 */
export async function exportVault(vault: Vault, options: ExportOptions): Promise<ExportResult> {
  const to = protection(options);
  const logN = workFactor(options.scryptWorkFactor);
  const wanted = options.scopes?.map((s) => formatScope(toScope(s)));
  const age = await loadAge();
  const encrypter = new age.Encrypter();
  if ("passphrase" in to) {
    encrypter.setPassphrase(to.passphrase);
    if (logN !== undefined) encrypter.setScryptWorkFactor(logN);
  } else {
    for (const r of to.recipients) {
      try {
        encrypter.addRecipient(r);
      } catch (e) {
        throw badOption("export vault", `${JSON.stringify(r)} is not a valid age recipient (${String(e)})`);
      }
    }
  }
  const listed: SecretMetadata[] = wanted === undefined
    ? await vault.listSecrets()
    : (await Promise.all([...new Set(wanted)].sort().map((s) => vault.listSecrets(s)))).flat();
  // The document is assembled from byte pieces, values as base64 bytes, so every copy of a value can be wiped.
  const parts: Uint8Array[] = [
    utf8(`{"format":"${EXPORT_FORMAT}","exported_at_unix_ms":${Date.now()},"secrets":[`),
  ];
  let doc: Uint8Array | undefined;
  try {
    for (const [i, m] of listed.entries()) {
      let value: SensitiveBytes;
      try {
        value = await vault.getSecret(m.scope, m.key);
      } catch (e) {
        if (!(e instanceof VaultError)) throw e;
        throw new VaultError(e.code, `export vault failed: ${e.message}`, {
          hint: e.hint ?? "nothing was exported; check the vault with palyra-secrets fsck",
          cause: e,
        });
      }
      try {
        parts.push(
          utf8(`${i === 0 ? "" : ","}{"scope":${JSON.stringify(m.scope)},"key":${JSON.stringify(m.key)},"value_b64":"`),
          toBase64PaddedBytes(value.bytes),
          utf8(`","created_at_unix_ms":${m.createdAtUnixMs},"updated_at_unix_ms":${m.updatedAtUnixMs}}`),
        );
      } finally {
        value[Symbol.dispose]();
      }
    }
    parts.push(utf8("]}\n"));
    doc = concatBytes(...parts);
    const file = await encrypter.encrypt(doc);
    return { file, secrets: listed.length, scopes: [...new Set(listed.map((m) => m.scope))].sort() };
  } finally {
    doc?.fill(0);
    for (const p of parts) p.fill(0);
  }
}

const AGE_MAGIC = "age-encryption.org/v1\n";
const ARMOR_BEGIN = "-----BEGIN AGE ENCRYPTED FILE-----";

/** The age file's binary form: armored text is decoded; anything else that is not age is `corrupt`. */
async function binaryAge(file: Uint8Array): Promise<Uint8Array> {
  const head = fromUtf8Lossy(file.subarray(0, 64));
  if (head.startsWith(AGE_MAGIC)) return file;
  if (head.trimStart().startsWith(ARMOR_BEGIN)) {
    try {
      return (await loadAge()).armor.decode(fromUtf8(file));
    } catch (e) {
      throw new VaultError("corrupt", `import vault failed: the armored age file is damaged (${String(e)})`, {
        hint: "check that the whole file was copied",
        cause: e,
      });
    }
  }
  throw new VaultError(
    "corrupt",
    "import vault failed: the file is not an age file (no age-encryption.org/v1 header)",
    {
      hint: "import a file made by palyra-secrets export or by age -e",
    },
  );
}

function fromUtf8Lossy(bytes: Uint8Array): string {
  return new TextDecoder("utf-8", { fatal: false }).decode(bytes);
}

/**
 * The kinds of recipient stanza in an age file's header (`scrypt`, `X25519`,
 * …): tells whether it wants a passphrase or an identity before asking for one.
 *
 * @example
 * ```ts
 * import { ageRecipientTypes } from "@palyra/vault";
 * const kinds = await ageRecipientTypes(new TextEncoder().encode("age-encryption.org/v1\n-> scrypt abc 18\n"));
 * console.log(kinds.includes("scrypt"));
 * ```
 */
export async function ageRecipientTypes(file: Uint8Array): Promise<string[]> {
  const bin = await binaryAge(file);
  const kinds: string[] = [];
  const header = fromUtf8Lossy(bin.subarray(0, Math.min(bin.length, 64 * 1024))).split("\n");
  for (const line of header.slice(1)) {
    if (line.startsWith("---")) break;
    if (line.startsWith("-> ")) kinds.push(line.slice(3).split(" ")[0] ?? "");
  }
  return kinds;
}

/** Identity strings from `identities`: each `AGE-SECRET-KEY-…` line, comments and blank lines skipped. */
function identityLines(identities: readonly string[]): string[] {
  const out: string[] = [];
  for (const text of identities) {
    if (typeof text !== "string") throw badOption("import vault", "identities must be strings");
    for (const raw of text.split(/\r?\n/)) {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) continue;
      if (!line.startsWith("AGE-SECRET-KEY-")) {
        throw badOption(
          "import vault",
          "an identity line is not an age identity (AGE-SECRET-KEY-1…, as age-keygen writes)",
        );
      }
      out.push(line);
    }
  }
  if (out.length === 0) throw badOption("import vault", "the identities hold no AGE-SECRET-KEY-1… line");
  return out;
}

const isTime = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** The secrets of a decrypted document, checked whole before anything is written. */
function readDocument(plain: Uint8Array, maxSecretBytes: number): Incoming[] {
  const bad = (why: string, cause?: unknown) =>
    new VaultError("corrupt", `import vault failed: the document in the file ${why}`, {
      hint: `import a file made by palyra-secrets export (format ${EXPORT_FORMAT}); nothing was imported`,
      cause,
    });
  const doc = parseJsonObject(plain, (why, cause) => bad(`is ${why}`, cause));
  if (doc.format !== EXPORT_FORMAT) {
    throw bad(`has format ${JSON.stringify(doc.format)}, not ${JSON.stringify(EXPORT_FORMAT)}`);
  }
  if (!Array.isArray(doc.secrets)) throw bad("has no secrets array");
  const out: Incoming[] = [];
  const seen = new Set<string>();
  try {
    doc.secrets.forEach((raw: unknown, i: number) => {
      const at = `secret #${i + 1}`;
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw bad(`has ${at} that is not an object`);
      const e = raw as Record<string, unknown>;
      if (typeof e.scope !== "string" || typeof e.key !== "string") throw bad(`has ${at} without a scope and key`);
      let scope: string;
      let key: string;
      try {
        scope = formatScope(parseScope(e.scope));
        key = validateKey(e.key);
      } catch (cause) {
        throw bad(`has ${at} with an invalid scope or key (${String((cause as Error).message)})`, cause);
      }
      const name = `${at} (${scope}/${key})`;
      if (seen.has(`${scope}\n${key}`)) throw bad(`names ${scope}/${key} twice`);
      seen.add(`${scope}\n${key}`);
      if (!isTime(e.created_at_unix_ms) || !isTime(e.updated_at_unix_ms)) {
        throw bad(`has ${name} without valid created_at_unix_ms and updated_at_unix_ms`);
      }
      const value = typeof e.value_b64 === "string" ? fromPaddedBase64(e.value_b64) : undefined;
      if (value === undefined) throw bad(`has ${name} whose value_b64 is not canonical padded base64`);
      out.push({ scope, key, value, createdAtUnixMs: e.created_at_unix_ms, updatedAtUnixMs: e.updated_at_unix_ms });
      if (value.length > maxSecretBytes) {
        throw new VaultError(
          "value_too_large",
          `import vault failed: ${name} is ${value.length} bytes; the vault's limit is ${maxSecretBytes}`,
          { hint: "open the vault with a larger maxSecretBytes (CLI: --max-bytes); nothing was imported" },
        );
      }
    });
  } catch (e) {
    for (const s of out) s.value.fill(0);
    throw e;
  }
  return out;
}

/** What an incoming secret meets in the vault. */
type Found =
  | { kind: "new" }
  | { kind: "same" }
  | { kind: "different"; previous: SensitiveBytes; meta: SecretMetadata };

/**
 * Reads secrets from an age file that `exportVault` or `age -e` made. The
 * whole file is decrypted and checked first, and with `onConflict: "fail"`
 * every key is compared before anything is written. Writing is all or
 * nothing per scope: a failure in a scope puts that scope's keys back as
 * they were, and the error names the scopes already imported. Each secret
 * keeps the times it had when it was exported.
 *
 * @throws {VaultError} `crypto` when the passphrase or identities do not open the file; `corrupt` when
 * it is not an age file or not an export document; `conflict` (with `onConflict: "fail"`) naming the
 * keys that hold a different value; nothing is written in all three cases.
 * @example
 * ```ts
 * import { importVault, Vault } from "@palyra/vault";
 * using vault = await Vault.open();
 * const file = await Deno.readFile("backup.age");
 * const done = await importVault(vault, file, { identities: [await Deno.readTextFile("key.txt")] });
 * console.log(done.imported, done.unchanged);
 * ```
 */
export async function importVault(vault: Vault, file: Uint8Array, options: ImportOptions): Promise<ImportResult> {
  const action = "import vault";
  const onConflict = options.onConflict ?? "fail";
  if (onConflict !== "fail" && onConflict !== "skip" && onConflict !== "overwrite") {
    throw badOption(action, `onConflict must be "fail", "skip" or "overwrite", got ${JSON.stringify(onConflict)}`);
  }
  const { passphrase, identities } = options;
  if (passphrase === undefined && identities === undefined) {
    throw badOption(action, "give the passphrase or the identities that open the file");
  }
  if (passphrase !== undefined && (typeof passphrase !== "string" || passphrase.length === 0)) {
    throw badOption(action, "the passphrase must be a non-empty string");
  }
  if (!(file instanceof Uint8Array)) throw badOption(action, "the file must be a Uint8Array");
  const bin = await binaryAge(file);
  const age = await loadAge();
  const decrypter = new age.Decrypter();
  if (passphrase !== undefined) decrypter.addPassphrase(passphrase);
  if (identities !== undefined) {
    for (const id of identityLines(identities)) {
      try {
        decrypter.addIdentity(id);
      } catch (e) {
        throw badOption(action, `an identity is not a valid age identity (${String((e as Error).message)})`);
      }
    }
  }
  let plain: Uint8Array;
  try {
    plain = await decrypter.decrypt(bin);
  } catch (e) {
    throw new VaultError(
      "crypto",
      `import vault failed: the file does not open with the ${
        passphrase !== undefined ? "passphrase" : "identities"
      } given, or it was changed`,
      {
        hint: passphrase !== undefined
          ? "check the passphrase (a file made with --recipient needs --identity)"
          : "pass the identity file whose public key (age-keygen -y) the file was encrypted to",
        cause: e,
      },
    );
  }
  let incoming: Incoming[];
  const parts = await Vault._parts(vault, "import vault");
  try {
    incoming = readDocument(plain, parts.maxSecretBytes);
  } finally {
    plain.fill(0);
  }
  const found = new Map<Incoming, Found>();
  try {
    // A scope this vault's layout cannot hold (Palyra's layout has no ws: or pr:) refuses the file before any write.
    for (const s of new Set(incoming.map((i) => i.scope))) parts.layout.checkScope(parseScope(s));
    // Compare everything first: with "fail", one different value anywhere writes nothing.
    const metaOf = new Map<string, Map<string, SecretMetadata>>();
    for (const s of new Set(incoming.map((i) => i.scope))) {
      const list = await vault.listSecrets(s).catch((e) => {
        if (VaultError.is(e, "not_found")) return []; // no vault yet: the first import creates it
        throw e;
      });
      metaOf.set(s, new Map(list.map((m) => [m.key, m])));
    }
    const conflicts: string[] = [];
    for (const item of incoming) {
      const meta = metaOf.get(item.scope)?.get(item.key);
      if (meta === undefined) {
        found.set(item, { kind: "new" });
        continue;
      }
      const current = await vault.getSecret(item.scope, item.key);
      if (sameBytes(current.bytes, item.value)) {
        current[Symbol.dispose]();
        found.set(item, { kind: "same" });
      } else {
        found.set(item, { kind: "different", previous: current, meta });
        conflicts.push(`${item.scope}/${item.key}`);
      }
    }
    if (onConflict === "fail" && conflicts.length > 0) {
      const shown = conflicts.slice(0, 5).join(", ") +
        (conflicts.length > 5 ? `, and ${conflicts.length - 5} more` : "");
      throw new VaultError(
        "conflict",
        `import vault failed: ${conflicts.length} key${conflicts.length === 1 ? "" : "s"} already hold${
          conflicts.length === 1 ? "s" : ""
        } a different value: ${shown}`,
        { hint: "keep or replace them (CLI: --on-conflict skip|overwrite; library: onConflict); nothing was imported" },
      );
    }
    const result: ImportResult = {
      secrets: incoming.length,
      imported: 0,
      overwritten: 0,
      unchanged: 0,
      skipped: 0,
      scopes: [...metaOf.keys()].sort(),
    };
    const finished: string[] = [];
    for (const scope of result.scopes) {
      const items = incoming.filter((i) => i.scope === scope);
      await importScope(vault, scope, items, found, onConflict, finished, result);
      finished.push(scope);
    }
    return result;
  } finally {
    for (const item of incoming) item.value.fill(0);
    for (const f of found.values()) if (f.kind === "different") f.previous[Symbol.dispose]();
  }
}

/** Writes one scope's secrets; on a failure, puts back what it wrote and reports which scopes are whole. */
async function importScope(
  vault: Vault,
  scope: string,
  items: Incoming[],
  found: Map<Incoming, Found>,
  onConflict: ImportConflict,
  finished: readonly string[],
  result: ImportResult,
): Promise<void> {
  const written: Incoming[] = [];
  const counts = { imported: 0, overwritten: 0, unchanged: 0, skipped: 0 };
  try {
    for (const item of items) {
      const f = found.get(item)!;
      if (f.kind === "same") {
        counts.unchanged++;
        continue;
      }
      if (f.kind === "different" && onConflict === "skip") {
        counts.skipped++;
        continue;
      }
      const times = { createdAtUnixMs: item.createdAtUnixMs, updatedAtUnixMs: item.updatedAtUnixMs };
      // A new key is written only if it is still not set, so a value another writer stored meanwhile is kept.
      await Vault._putAt(vault, scope, item.key, item.value, { overwrite: f.kind === "different" }, times);
      written.push(item);
      if (f.kind === "new") counts.imported++;
      else counts.overwritten++;
    }
  } catch (e) {
    const undoFailures: string[] = [];
    for (const item of written.reverse()) {
      const f = found.get(item)!;
      try {
        if (f.kind === "different") {
          await Vault._putAt(vault, scope, item.key, f.previous.bytes, { overwrite: true }, f.meta);
        } else {
          await vault.deleteSecret(scope, item.key);
        }
      } catch (undo) {
        undoFailures.push(`${scope}/${item.key} (${String((undo as Error).message)})`);
      }
    }
    const done = finished.length === 0
      ? "no scope was imported before it"
      : `scopes ${finished.join(", ")} were imported`;
    const cause = e instanceof VaultError ? e : undefined;
    throw new VaultError(
      cause?.code ?? "io",
      `import vault failed in scope ${JSON.stringify(scope)}: ${(e as Error).message}; ` +
        (undoFailures.length === 0
          ? `its keys were put back as they were (${done})`
          : `putting back ${undoFailures.join(", ")} failed too (${done})`),
      { hint: "fix the problem and import again: keys already holding the same value are left alone", cause: e },
    );
  }
  result.imported += counts.imported;
  result.overwritten += counts.overwritten;
  result.unchanged += counts.unchanged;
  result.skipped += counts.skipped;
}
