/**
 * The vault (SPEC §5, §11): seals values, keeps the per-scope indexes and
 * hands envelopes to a backend.
 */
import { dirname, join } from "node:path";
import { errnoCode, fsError, VaultError } from "./errors.ts";
import { utf8 } from "./crypto/encoding.ts";
import { openEnvelope, sealEnvelope } from "./crypto/envelope.ts";
import { objectId, scopeDirName } from "./crypto/ids.ts";
import { KEY_BYTES } from "./crypto/kdf.ts";
import { SensitiveBytes } from "./crypto/sensitive.ts";
import { formatScope, parseVaultRef, toScope, validateKey, type VaultScope } from "./scope.ts";
import { type FileSystem, nodeFileSystem } from "./platform/fs.ts";
import { defaultIdentityDir, envVar } from "./platform/env.ts";
import { secureDir } from "./folders.ts";
import { identityKek, loadOrCreateIdentity } from "./identity.ts";
import { acquireLock } from "./lock.ts";
import { encodeIndex, findEntry, type IndexEntry, parseIndex, readIndex, type ScopeIndex } from "./metadata.ts";
import type { BackendKind, BlobBackend } from "./backends/backend.ts";
import { type BackendPreference, parseBackendPreference, selectBackend } from "./backends/select.ts";
import { type CommandRunner, runCommand } from "./platform/subprocess.ts";
import { osPlatform } from "./platform/process.ts";

/** Options of `Vault.open`. */
export interface VaultOptions {
  /** Vault folder. Default: `PALYRA_VAULT_DIR`, else `vault` beside the identity folder. */
  root?: string;
  /** Identity folder. Default: see SPEC §4 (`PALYRA_IDENTITY_DIR`, XDG state folder, …). */
  identityRoot?: string;
  /** A raw 32-byte KEK used instead of the device identity (copied; the caller keeps its own). */
  kek?: Uint8Array;
  /** Backend preference or a custom backend. Default: `PALYRA_VAULT_BACKEND`, else `auto`. */
  backend?: "auto" | "encrypted_file" | BackendKind | BlobBackend;
  /** Largest value accepted, in bytes. Default 65536. */
  maxSecretBytes?: number;
  /** How long a writer waits for a scope's lock. Default 5000 ms. */
  lockTimeoutMs?: number;
  /** Age after which a lock of unknown liveness is reclaimed. Default 30000 ms. */
  staleAfterMs?: number;
}

/** What the vault knows about a stored secret (never its value). */
export interface SecretMetadata {
  scope: string;
  key: string;
  createdAtUnixMs: number;
  updatedAtUnixMs: number;
  valueBytes: number;
}

/** Things tests replace: the file layer, the process runner, the platform name. */
export interface VaultInternals {
  fs?: FileSystem;
  run?: CommandRunner;
  platform?: string;
}

const DEFAULT_MAX_SECRET_BYTES = 64 * 1024;
const DEFAULT_LOCK_TIMEOUT_MS = 5_000;
const DEFAULT_STALE_AFTER_MS = 30_000;
const SCOPE_DIR_RE = /^s_[0-9a-f]{32}$/;

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`open vault failed: ${name} must be a non-negative integer, got ${String(value)}`);
  }
  return value;
}

function toMetadata(scope: string, e: IndexEntry): SecretMetadata {
  return {
    scope,
    key: e.key,
    createdAtUnixMs: e.created_at_unix_ms,
    updatedAtUnixMs: e.updated_at_unix_ms,
    valueBytes: e.value_bytes,
  };
}

async function resolveFolder(fs: FileSystem, path: string, what: string): Promise<string> {
  // The folder the user names may be reached through a link; nothing inside it may.
  await secureDir(fs, path, what, { create: true, allowSymlink: true });
  let real: string;
  try {
    real = await fs.realpath(path);
  } catch (e) {
    throw fsError(`resolve ${what}`, path, e);
  }
  await secureDir(fs, real, what, { create: false });
  return real;
}

/**
 * An open vault. Create one with `Vault.open`.
 *
 * @example
 * ```ts
 * import { Vault } from "@palyra/vault";
 * const vault = await Vault.open();
 * await vault.putSecret("global", "openai_api_key", "sk-...");
 * using key = await vault.getSecret("global", "openai_api_key");
 * console.log(key.text().length);
 * ```
 */
export class Vault {
  /** Absolute path of the vault folder. */
  readonly root: string;
  /** The kind of the backend in use. */
  readonly backendKind: string;
  readonly #kek: Uint8Array;
  readonly #backend: BlobBackend;
  readonly #fs: FileSystem;
  readonly #maxSecretBytes: number;
  readonly #lockTimeoutMs: number;
  readonly #staleAfterMs: number;
  #closed = false;

  private constructor(
    root: string,
    kek: Uint8Array,
    backend: BlobBackend,
    fs: FileSystem,
    limits: { maxSecretBytes: number; lockTimeoutMs: number; staleAfterMs: number },
  ) {
    this.root = root;
    this.#kek = kek;
    this.#backend = backend;
    this.backendKind = backend.kind;
    this.#fs = fs;
    this.#maxSecretBytes = limits.maxSecretBytes;
    this.#lockTimeoutMs = limits.lockTimeoutMs;
    this.#staleAfterMs = limits.staleAfterMs;
  }

  /**
   * Opens (creating when needed) the vault folder and the device identity.
   *
   * @example
   * ```ts
   * import { Vault } from "@palyra/vault";
   * const vault = await Vault.open({ root: "/tmp/my-vault", identityRoot: "/tmp/my-identity" });
   * ```
   */
  static open(options: VaultOptions = {}): Promise<Vault> {
    return openVaultWith(options, {});
  }

  /** @internal used by `openVaultWith`. */
  static _create(
    root: string,
    kek: Uint8Array,
    backend: BlobBackend,
    fs: FileSystem,
    limits: { maxSecretBytes: number; lockTimeoutMs: number; staleAfterMs: number },
  ): Vault {
    return new Vault(root, kek, backend, fs, limits);
  }

  #check(): void {
    if (this.#closed) throw new VaultError("io", "use vault failed: it was closed", { hint: "open it again" });
  }

  #scopeDir(scope: string): string {
    return join(this.root, "scopes", scopeDirName(scope));
  }

  async #withScopeLock<T>(scope: string, action: (dir: string) => Promise<T>): Promise<T> {
    const dir = this.#scopeDir(scope);
    await secureDir(this.#fs, dir, `folder of scope ${JSON.stringify(scope)}`);
    const lock = await acquireLock(this.#fs, join(dir, ".metadata.lock"), {
      timeoutMs: this.#lockTimeoutMs,
      staleAfterMs: this.#staleAfterMs,
      what: `scope ${JSON.stringify(scope)}`,
    });
    try {
      return await action(dir);
    } finally {
      await lock.release();
    }
  }

  async #writeIndex(dir: string, index: ScopeIndex): Promise<void> {
    const path = join(dir, "metadata.json");
    try {
      await this.#fs.writeFileAtomic(path, encodeIndex(index));
    } catch (e) {
      throw fsError(`write index of scope ${JSON.stringify(index.scope)}`, path, e);
    }
  }

  async #readPrevious(id: string): Promise<Uint8Array | undefined> {
    try {
      return await this.#backend.get(id);
    } catch (e) {
      if (VaultError.is(e, "not_found")) return undefined;
      throw e;
    }
  }

  /**
   * Stores `value` under `scope`/`key`, replacing any previous value (its
   * creation time is kept). Strings are stored as UTF-8.
   *
   * @example
   * ```ts
   * const meta = await vault.putSecret("ws:acme", "github_token", "ghp_...");
   * console.log(meta.valueBytes);
   * ```
   */
  async putSecret(scope: VaultScope | string, key: string, value: Uint8Array | string): Promise<SecretMetadata> {
    this.#check();
    const s = formatScope(toScope(scope));
    const k = validateKey(key);
    if (typeof value !== "string" && !(value instanceof Uint8Array)) {
      throw new TypeError("put secret failed: the value must be a Uint8Array or a string");
    }
    const bytes = typeof value === "string" ? utf8(value) : value;
    const valueBytes = bytes.length;
    let envelope: Uint8Array;
    try {
      if (valueBytes > this.#maxSecretBytes) {
        throw new VaultError(
          "value_too_large",
          `put secret "${k}" in scope ${
            JSON.stringify(s)
          } failed: the value is ${valueBytes} bytes; the limit is ${this.#maxSecretBytes}`,
          { hint: "store a smaller value, or open the vault with a larger maxSecretBytes" },
        );
      }
      envelope = sealEnvelope(this.#kek, s, k, bytes);
    } finally {
      if (typeof value === "string") bytes.fill(0);
    }
    const limit = this.#backend.maxPayloadBytes;
    if (limit !== undefined && envelope.length > limit) {
      throw new VaultError(
        "value_too_large",
        `put secret "${k}" in scope ${JSON.stringify(s)} failed: its envelope is ${envelope.length} bytes; ` +
          `the ${this.#backend.kind} backend keeps at most ${limit}`,
        { hint: "store a smaller value, or use the encrypted_file backend, which has no payload limit" },
      );
    }
    const id = objectId(s, k);
    return await this.#withScopeLock(s, async (dir) => {
      const index = await readIndex(this.#fs, join(dir, "metadata.json"), s);
      const previous = await this.#readPrevious(id);
      await this.#backend.put(id, envelope);
      const now = Date.now();
      const at = findEntry(index.entries, k);
      const old = at.found ? index.entries[at.index] : undefined;
      const entry: IndexEntry = {
        key: k,
        object_id: id,
        created_at_unix_ms: old?.created_at_unix_ms ?? now,
        updated_at_unix_ms: now,
        value_bytes: valueBytes,
      };
      index.entries.splice(at.index, at.found ? 1 : 0, entry);
      try {
        await this.#writeIndex(dir, index);
      } catch (e) {
        // The index still describes the previous state: put the previous object back.
        try {
          if (previous === undefined) await this.#backend.delete(id);
          else await this.#backend.put(id, previous);
        } catch (restoreError) {
          throw new VaultError(
            "io",
            `put secret "${k}" in scope ${JSON.stringify(s)} failed: the index write failed ` +
              `(${(e as Error).message}) and restoring the previous object failed too (${
                (restoreError as Error).message
              })`,
            { hint: "set the secret again once the disk problem is fixed", cause: e },
          );
        }
        throw e;
      }
      return toMetadata(s, entry);
    });
  }

  /**
   * Reads a secret. Dispose the result when done with it.
   *
   * @throws {VaultError} `not_found` when it was never set; `crypto` when the
   * stored object was modified or sealed by another identity.
   * @example
   * ```ts
   * using token = await vault.getSecret("ws:acme", "github_token");
   * ```
   */
  async getSecret(scope: VaultScope | string, key: string): Promise<SensitiveBytes> {
    this.#check();
    const s = formatScope(toScope(scope));
    const k = validateKey(key);
    let envelope: Uint8Array;
    try {
      envelope = await this.#backend.get(objectId(s, k));
    } catch (e) {
      if (VaultError.is(e, "not_found")) {
        throw new VaultError("not_found", `get secret "${k}" in scope ${JSON.stringify(s)} failed: it is not set`, {
          hint: `store it with: palyra-secrets set ${s} ${k}`,
          cause: e,
        });
      }
      throw e;
    }
    return new SensitiveBytes(openEnvelope(this.#kek, s, k, envelope));
  }

  /**
   * Deletes a secret. Returns `false` when it did not exist.
   *
   * @example
   * ```ts
   * const existed = await vault.deleteSecret("global", "old_token");
   * ```
   */
  async deleteSecret(scope: VaultScope | string, key: string): Promise<boolean> {
    this.#check();
    const s = formatScope(toScope(scope));
    const k = validateKey(key);
    const id = objectId(s, k);
    return await this.#withScopeLock(s, async (dir) => {
      const index = await readIndex(this.#fs, join(dir, "metadata.json"), s);
      const at = findEntry(index.entries, k);
      if (!at.found) {
        // An object without an entry is left over from a put that crashed: clear it too.
        const orphan = await this.#readPrevious(id);
        if (orphan !== undefined) await this.#backend.delete(id);
        return orphan !== undefined;
      }
      const before: ScopeIndex = { ...index, entries: index.entries.slice() };
      index.entries.splice(at.index, 1);
      await this.#writeIndex(dir, index);
      try {
        await this.#backend.delete(id);
      } catch (e) {
        try {
          await this.#writeIndex(dir, before);
        } catch (restoreError) {
          throw new VaultError(
            "io",
            `delete secret "${k}" in scope ${JSON.stringify(s)} failed: removing the object failed ` +
              `(${(e as Error).message}) and restoring the index failed too (${(restoreError as Error).message})`,
            { hint: "delete the secret again once the problem is fixed", cause: e },
          );
        }
        throw e;
      }
      return true;
    });
  }

  /**
   * Lists secrets (never their values), sorted by scope then key; all scopes
   * when `scope` is omitted.
   *
   * @example
   * ```ts
   * for (const s of await vault.listSecrets()) console.log(s.scope, s.key, s.updatedAtUnixMs);
   * ```
   */
  async listSecrets(scope?: VaultScope | string): Promise<SecretMetadata[]> {
    this.#check();
    if (scope !== undefined) {
      const s = formatScope(toScope(scope));
      const dir = this.#scopeDir(s);
      const info = await this.#fs.lstat(dir).catch((e) => {
        throw fsError("inspect scope folder", dir, e);
      });
      if (info === undefined) return [];
      await secureDir(this.#fs, dir, `folder of scope ${JSON.stringify(s)}`, { create: false });
      const index = await readIndex(this.#fs, join(dir, "metadata.json"), s);
      return index.entries.map((e) => toMetadata(s, e));
    }
    const scopesDir = join(this.root, "scopes");
    let names: string[];
    try {
      names = await this.#fs.readDir(scopesDir);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return [];
      throw fsError("list scopes", scopesDir, e);
    }
    const out: SecretMetadata[] = [];
    for (const name of names.filter((n) => SCOPE_DIR_RE.test(n)).sort()) {
      const dir = join(scopesDir, name);
      await secureDir(this.#fs, dir, `scope folder "${name}"`, { create: false });
      const path = join(dir, "metadata.json");
      let bytes: Uint8Array;
      try {
        bytes = await this.#fs.readFile(path);
      } catch (e) {
        if (errnoCode(e) === "ENOENT") continue;
        throw fsError("read index", path, e);
      }
      const scopeName = peekScope(bytes);
      // The folder name is derived from the scope: a mismatch means a moved or forged index.
      if (scopeName === undefined || scopeDirName(scopeName) !== name) {
        throw new VaultError("io", `read index "${path}" failed: it is corrupt (its scope does not match its folder)`, {
          hint: "restore metadata.json from a backup; the envelopes in objects/ are untouched",
        });
      }
      const index = parseIndex(path, scopeName, bytes);
      for (const e of index.entries) out.push(toMetadata(scopeName, e));
    }
    return out.sort((
      a,
      b,
    ) => (a.scope < b.scope ? -1 : a.scope > b.scope ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * Reads the secret a reference names (`global/openai_api_key`,
   * `vault://ws:acme/github_token`).
   *
   * @example
   * ```ts
   * using key = await vault.resolve("global/openai_api_key");
   * ```
   */
  resolve(ref: string): Promise<SensitiveBytes> {
    const parsed = parseVaultRef(ref);
    return this.getSecret(parsed.scope, parsed.key);
  }

  /** Zero-fills the key-encryption key; the vault cannot be used afterwards. */
  close(): void {
    this.#kek.fill(0);
    this.#closed = true;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function peekScope(bytes: Uint8Array): string | undefined {
  try {
    const doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as { scope?: unknown };
    return typeof doc?.scope === "string" ? doc.scope : undefined;
  } catch {
    return undefined;
  }
}

/** Opens a vault with replaced internals (tests inject a failing file layer). */
export async function openVaultWith(options: VaultOptions, internals: VaultInternals): Promise<Vault> {
  const fs = internals.fs ?? nodeFileSystem;
  const limits = {
    maxSecretBytes: positive("maxSecretBytes", options.maxSecretBytes, DEFAULT_MAX_SECRET_BYTES),
    lockTimeoutMs: positive("lockTimeoutMs", options.lockTimeoutMs, DEFAULT_LOCK_TIMEOUT_MS),
    staleAfterMs: positive("staleAfterMs", options.staleAfterMs, DEFAULT_STALE_AFTER_MS),
  };
  const identityDir = options.identityRoot ?? defaultIdentityDir();
  const rootOption = options.root ?? envVar("PALYRA_VAULT_DIR") ??
    (identityDir === undefined ? undefined : join(dirname(identityDir), "vault"));
  if (rootOption === undefined) {
    throw new VaultError("io", "open vault failed: no vault folder was given and no home folder is known", {
      hint: "pass `root`, or set PALYRA_VAULT_DIR",
    });
  }
  let kek: Uint8Array;
  if (options.kek !== undefined) {
    if (!(options.kek instanceof Uint8Array) || options.kek.length !== KEY_BYTES) {
      throw new VaultError("crypto", `open vault failed: the kek option must be ${KEY_BYTES} bytes`, {
        hint: "pass a 32-byte Uint8Array, or omit kek to use the device identity",
      });
    }
    kek = options.kek.slice();
  } else {
    if (identityDir === undefined) {
      throw new VaultError("identity", "open vault failed: no identity folder was given and no home folder is known", {
        hint: "pass `identityRoot`, or set PALYRA_IDENTITY_DIR",
      });
    }
    kek = identityKek(await loadOrCreateIdentity(fs, identityDir));
  }
  try {
    const root = await resolveFolder(fs, rootOption, "vault folder");
    await secureDir(fs, join(root, "scopes"), "scopes folder");
    let backend: BlobBackend;
    if (typeof options.backend === "object" && options.backend !== null) {
      backend = options.backend;
    } else {
      const env = envVar("PALYRA_VAULT_BACKEND");
      const preference: BackendPreference = options.backend !== undefined
        ? parseBackendPreference(options.backend, "the backend option")
        : env !== undefined
        ? parseBackendPreference(env, "PALYRA_VAULT_BACKEND")
        : "auto";
      backend = await selectBackend(root, preference, {
        fs,
        run: internals.run ?? runCommand,
        platform: internals.platform ?? osPlatform(),
      });
    }
    return Vault._create(root, kek, backend, fs, limits);
  } catch (e) {
    kek.fill(0);
    throw e;
  }
}
