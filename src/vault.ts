/**
 * The vault (docs/FORMAT.md §5): seals values, keeps the per-scope indexes
 * and hands envelopes to a backend.
 *
 * Opening a vault creates nothing: the identity, the vault folder and its
 * `backend.kind` are created by the first write, so a read-only command
 * pointed at a mistyped folder reports it instead of creating an empty vault.
 */
import { FILES } from "./store/layout.ts";
import { dirname, join, resolve } from "./platform/path.ts";
import { fsError, VaultError } from "./errors.ts";
import { sameBytes, utf8 } from "./crypto/encoding.ts";
import type { CipherEngine, EnvelopeCipher } from "./crypto/envelope_async.ts";
import { vaultCipher } from "./store/cipher.ts";
import { objectId } from "./crypto/ids.ts";
import { KEY_BYTES } from "./crypto/kdf.ts";
import { pinnedCopy, SensitiveBytes } from "./crypto/sensitive.ts";
import { formatScope, parseVaultRef, toScope, validateKey, type VaultScope } from "./scope.ts";
import { defaultFileSystem, type FileSystem } from "./platform/fs.ts";
import { defaultIdentityDir, envVar } from "./platform/env.ts";
import { secureDir, secureFoundDir } from "./store/folders.ts";
import {
  type DeviceIdentity,
  type IdentityHost,
  identityKek,
  loadIdentity,
  loadOrCreateIdentity,
  type StoreKeyProtection,
} from "./store/identity_store.ts";
import type { EntryMaker, IndexEntry } from "./store/scope_index.ts";
import type { LayoutName, VaultLayout } from "./store/layout.ts";
import type { PalyraLayout } from "./store/palyra_layout.ts";
import type { PalyraObjects } from "./store/palyra_objects.ts";
import { ScopedLayout } from "./store/scoped_layout.ts";
import { checkKekRecord, createKekRecord } from "./store/kek_record.ts";
import { detectLayout, detectSettled } from "./store/detect.ts";
import type { MigrateResult, MigrationParts } from "./store/migrate.ts";
import type { BackendKind, BlobBackend } from "./backends/backend.ts";
import {
  type BackendHost,
  type BackendPreference,
  parseBackendPreference,
  readBackendMarker,
  recordBackend,
  selectBackend,
} from "./backends/select.ts";
import { type CommandRunner, runCommand } from "./platform/subprocess.ts";
import { osPlatform } from "./platform/process.ts";
import type { DeviceInfo, RewrapProgress, SharedVault, VaultChange } from "./store/postgres/shared_vault.ts";

export type { DeviceInfo, RewrapProgress, VaultChange };

/** Options of `Vault.open`. */
export interface VaultOptions {
  /** Vault folder. Default: `PALYRA_VAULT_DIR`, else `vault` beside the identity folder. Required with a custom backend. */
  root?: string;
  /** Identity folder. Default: `PALYRA_IDENTITY_DIR`, else `$XDG_STATE_HOME/palyra/identity`, else `~/.local/state/palyra/identity`. */
  identityRoot?: string;
  /** A raw 32-byte KEK used instead of the device identity (copied; the caller keeps its own). */
  kek?: Uint8Array;
  /** Backend preference or a custom backend. Default: `PALYRA_VAULT_BACKEND`, else `auto`. */
  backend?: "auto" | "encrypted_file" | BackendKind | BlobBackend;
  /** Largest value accepted, in bytes. Default 65536. */
  maxSecretBytes?: number;
  /** How long a writer waits for a scope's lock. Default 5000 ms. */
  lockTimeoutMs?: number;
  /** Age after which a lock of another host (or an unreadable one) is reclaimed. Default 30000 ms. */
  staleAfterMs?: number;
  /**
   * The layout a new vault is created in: `"scoped"` (the default) or `"palyra"`, the layout of Palyra's
   * daemon. An existing vault is opened in the layout it has; asking for another is an error.
   */
  layout?: LayoutName;
  /**
   * Where the KEK does its work, with values under 4 KiB. `"noble"` (the
   * default): in `@noble/ciphers`, in memory the vault wipes on `close()`;
   * loading it costs a process about 20 ms once. `"webcrypto"`: in one
   * non-extractable WebCrypto key object, with no such load; the runtime
   * keeps a copy of the key there that is not wiped when freed (README,
   * "Threat model"). The CLI, whose process ends with the command, uses
   * `"webcrypto"`. Either way the envelopes are the same bytes.
   */
  kekEngine?: CipherEngine;
  /**
   * What the vault uses of the machine, each part replaceable: the file layer,
   * the process runner (keychain tools) and the platform name. Default: this
   * runtime's own. Tests hand in a file layer that fails on purpose, or a fake
   * `secret-tool`; an embedder may hand in its own.
   */
  host?: VaultHost;
  /**
   * Where the vault is kept: omitted, a vault folder (`root`); or a PostgreSQL
   * connection URL (`postgres://…`, as `psql` takes it, `?host=/socket/folder`
   * and `sslmode` included) for one vault shared by several devices (README,
   * "PostgreSQL store"). Default: `PALYRA_VAULT_STORE`.
   */
  store?: string;
  /** With a PostgreSQL store: how many versions of each secret are kept, the live one included. Default 10. */
  keepVersions?: number;
}

/**
 * The parts of the machine a vault uses (see `VaultOptions.host`).
 *
 * @example
 * ```ts
 * import { Vault, type VaultHost } from "@palyra/vault";
 * const host: VaultHost = { platform: "linux" };
 * const vault = await Vault.open({ root: "/tmp/v", kek: crypto.getRandomValues(new Uint8Array(32)), host });
 * ```
 */
export interface VaultHost {
  /** The file layer (every file operation the vault performs). */
  fs?: FileSystem;
  /** Starts the keychain tools (`secret-tool`, `security`, `powershell`). */
  run?: CommandRunner;
  /** The OS family in Node's spelling (`linux`, `darwin`, `win32`): decides which keychain `auto` probes. */
  platform?: string;
}

/** Options of `putSecret`. */
export interface PutOptions {
  /**
   * Whether a different value already stored under the key may be replaced.
   * Default `true`. With `false`, a different value is a `conflict` error and
   * the same value is left as it is (nothing is written).
   */
  overwrite?: boolean;
  /**
   * PostgreSQL store only: check-and-set. The version the caller last read
   * (`0`: the key must not be set); when another writer changed it since, the
   * put is a `conflict` error and writes nothing.
   */
  ifVersion?: number;
}

/**
 * Options of `getSecret`.
 *
 * @example
 * ```ts
 * import { type GetOptions, Vault } from "@palyra/vault";
 * const vault = await Vault.open({ store: "postgres://vault@db.example.com/vault" });
 * const options: GetOptions = { version: 2 };
 * using previous = await vault.getSecret("global", "openai_api_key", options);
 * ```
 */
export interface GetOptions {
  /** PostgreSQL store only: read this earlier version instead of the live one. */
  version?: number;
}

/** What the vault knows about a stored secret (never its value). */
export interface SecretMetadata {
  /** The canonical scope string: `global`, `ws:<id>`, `pr:<id>`, … (docs/FORMAT.md §1). */
  scope: string;
  /** The key within the scope. */
  key: string;
  /** When the key was first set, in milliseconds since the Unix epoch; replacing the value keeps it. */
  createdAtUnixMs: number;
  /** When the value was last written, in milliseconds since the Unix epoch. */
  updatedAtUnixMs: number;
  /** Length of the plaintext value in bytes (of its UTF-8 when it was given as a string). */
  valueBytes: number;
  /** PostgreSQL store only: the version, counted from 1 for each key. */
  version?: number;
}

/** What `putSecret` did. */
export interface PutResult extends SecretMetadata {
  /** True when a different value was stored under the key before and was replaced. */
  replaced: boolean;
}

const DEFAULT_MAX_SECRET_BYTES = 64 * 1024;
const DEFAULT_LOCK_TIMEOUT_MS = 5_000;
const DEFAULT_STALE_AFTER_MS = 30_000;

/** What `Vault.open` fixes from its options: the limits, and where the KEK works. */
interface Settings {
  maxSecretBytes: number;
  lockTimeoutMs: number;
  staleAfterMs: number;
  /** `VaultOptions.kekEngine`. */
  kekEngine: CipherEngine;
}

/** The largest envelope a value of `maxSecretBytes` can give: base64 of the value plus the fixed fields. */
export function maxEnvelopeBytes(maxSecretBytes: number): number {
  return Math.ceil(maxSecretBytes / 3) * 4 + 1024;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`open vault failed: ${name} must be a non-negative integer, got ${String(value)}`);
  }
  return value;
}

function engine(value: CipherEngine | undefined): CipherEngine {
  if (value === undefined || value === "noble" || value === "webcrypto") return value ?? "noble";
  throw new RangeError(`open vault failed: kekEngine must be "noble" or "webcrypto", got ${JSON.stringify(value)}`);
}

/** An index entry as `listSecrets` hands it out. */
const metadataOf: EntryMaker<SecretMetadata> = (scope, key, createdAtUnixMs, updatedAtUnixMs, valueBytes) => ({
  scope,
  key,
  createdAtUnixMs,
  updatedAtUnixMs,
  valueBytes,
});

function toMetadata(scope: string, e: IndexEntry): SecretMetadata {
  return metadataOf(scope, e.key, e.created_at_unix_ms, e.updated_at_unix_ms, e.value_bytes);
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Where the vault folder is: its canonical path when it exists (a link given
 * by the user is followed, after checking it leads to a folder, so nothing is
 * changed through a link to a file), else the absolute path it will have.
 */
async function locateRoot(fs: FileSystem, path: string): Promise<{ root: string; exists: boolean }> {
  const what = "vault folder";
  let info;
  try {
    info = await fs.lstat(path);
  } catch (e) {
    throw fsError(`inspect ${what}`, path, e);
  }
  if (info === undefined) {
    // The nearest existing ancestor, canonical, so vault.root never changes once created.
    let base = resolve(path);
    const rest: string[] = [];
    for (;;) {
      const parent = dirname(base);
      const here = await fs.lstat(base).catch(() => undefined);
      if (here !== undefined || parent === base) break;
      rest.unshift(base.slice(parent.length).replace(/^[\\/]/, ""));
      base = parent;
    }
    const real = await fs.realpath(base).catch(() => base);
    return { root: join(real, ...rest), exists: false };
  }
  let real: string;
  try {
    real = await fs.realpath(path);
  } catch (e) {
    throw fsError(`resolve ${what}`, path, e);
  }
  // Checked at the real path: a link to a file is refused before anything is changed.
  await secureDir(fs, real, what, { create: false });
  // Tighten what exists inside too; nothing is created.
  for (const sub of [FILES.scopesDir, FILES.objectsDir]) {
    const path = join(real, sub);
    if ((await fs.lstat(path).catch(() => undefined)) !== undefined) {
      await secureFoundDir(fs, path, `${sub} folder`);
    }
  }
  return { root: real, exists: true };
}

function missingIdentity(identityDir: string, root: string): VaultError {
  return new VaultError(
    "identity",
    `open vault failed: the device identity is missing from "${identityDir}", but the vault "${root}" holds secrets ` +
      "sealed with it",
    {
      hint: "restore the identity folder from a backup (or point PALYRA_IDENTITY_DIR / --identity-dir at it); " +
        "a new identity would not open these secrets, so none is created",
    },
  );
}

/** What a vault needs to create itself on its first write. */
interface Pending {
  /** The identity folder to create an identity in, when there is no KEK yet. */
  identityDir: string | undefined;
  /** The backend kind to record in `backend.kind` when the vault is created. */
  recordKind: BackendKind | undefined;
  host: BackendHost;
  identityHost: IdentityHost;
  /** Builds the layout around a backend (again, when another process recorded another backend first). */
  layoutFor: (backend: BlobBackend) => VaultLayout;
  /** Looks at the folder again as an open would; absent for a PostgreSQL store. */
  attach?: (action: string, existingOnly: true) => Promise<Attached | undefined>;
}

/** What an open found in the vault folder, and what it would build there. */
interface Attached {
  root: string;
  exists: boolean;
  layout: VaultLayout;
  recordKind: BackendKind | undefined;
  layoutFor: (backend: BlobBackend) => VaultLayout;
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
  #kek: Uint8Array | undefined;
  /** Seals and opens under `#kek`; made with it, dropped with it. */
  #cipher: EnvelopeCipher | undefined;
  #layout!: VaultLayout;
  /** Set for a PostgreSQL store; every public method hands its work to it. */
  readonly #shared: SharedVault | undefined;
  readonly #fs: FileSystem;
  readonly #settings: Settings;
  #exists: boolean;
  #pending: Pending;
  #creating: Promise<void> | undefined;
  #closed = false;

  private constructor(
    root: string,
    exists: boolean,
    kek: Uint8Array | undefined,
    layout: VaultLayout | undefined,
    fs: FileSystem,
    settings: Settings,
    pending: Pending,
    shared?: SharedVault,
  ) {
    this.#shared = shared;
    if (shared !== undefined) {
      this.root = shared.root;
      this.#exists = true;
      this.#fs = fs;
      this.#settings = settings;
      this.#pending = pending;
      return;
    }
    this.root = root;
    this.#exists = exists;
    this.#kek = kek;
    this.#cipher = kek === undefined ? undefined : vaultCipher(kek, settings.kekEngine);
    this.#layout = layout!;
    this.#fs = fs;
    this.#settings = settings;
    this.#pending = pending;
  }

  /** The kind of the backend in use. */
  get backendKind(): string {
    return this.#shared !== undefined ? "postgres" : this.#layout.objects.kind;
  }

  /**
   * The layout of the vault folder: `"scoped"`, or `"palyra"` (the layout of
   * Palyra's daemon); `"postgres"` for a vault kept in PostgreSQL.
   */
  get layout(): LayoutName | "postgres" {
    return this.#shared !== undefined ? "postgres" : this.#layout.name;
  }

  /**
   * PostgreSQL store only: this device's id and age recipient (what another
   * member passes to `addDevice`); `undefined` for a vault folder.
   *
   * @example
   * ```ts
   * import { Vault } from "@palyra/vault";
   * const vault = await Vault.open({ store: "postgres://vault@db.example.com/vault" });
   * console.log(vault.device?.recipient);
   * ```
   */
  get device(): { id: string; recipient: string } | undefined {
    return this.#shared?.device;
  }

  /**
   * Opens the vault folder and the device identity. Nothing is created until
   * the first write: then the identity (if there is none and no `kek` was
   * given), the vault folder and its `backend.kind`.
   *
   * @example
   * ```ts
   * import { Vault } from "@palyra/vault";
   * const vault = await Vault.open({ root: "/tmp/my-vault", identityRoot: "/tmp/my-identity" });
   * ```
   */
  static open(options: VaultOptions = {}): Promise<Vault> {
    return openVault(options);
  }

  /**
   * @internal the parts `migrateVault`, `checkVault`, `rekeyVault` and
   * `importVault` work with: the vault as it is now, refused with `conflict`
   * when another process migrated it since this handle was opened (and, for
   * an action that `writes`, while a migration is unfinished).
   */
  static async _parts(
    v: Vault,
    action: string,
    writes = false,
  ): Promise<
    MigrationParts & { exists: boolean; maxSecretBytes: number; identityHost: IdentityHost; kekEngine: CipherEngine }
  > {
    v.#check();
    if (v.#shared !== undefined) throw v.#folderOnly("this command");
    if (await v.#attach(action)) await v.#checkLayoutNow(action, "run it again", writes);
    return {
      fs: v.#fs,
      root: v.root,
      layout: v.#layout,
      backendKind: v.backendKind,
      exists: v.#exists,
      kek: () => v.#kekForRead(),
      limits: { lockTimeoutMs: v.#settings.lockTimeoutMs, staleAfterMs: v.#settings.staleAfterMs },
      maxObjectBytes: maxEnvelopeBytes(v.#settings.maxSecretBytes),
      maxSecretBytes: v.#settings.maxSecretBytes,
      identityHost: v.#pending.identityHost,
      kekEngine: v.#settings.kekEngine,
    };
  }

  /** @internal used by `openVault`. */
  static _create(
    root: string,
    exists: boolean,
    kek: Uint8Array | undefined,
    layout: VaultLayout,
    fs: FileSystem,
    settings: Settings,
    pending: Pending,
  ): Vault {
    return new Vault(root, exists, kek, layout, fs, settings, pending);
  }

  /** What a PostgreSQL store does not do, or only it does. */
  #folderOnly(what: string): VaultError {
    return new VaultError("invalid_config", `${what} failed: it works on a vault folder, not on a PostgreSQL store`, {
      hint: "run it on a vault folder (omit --store / PALYRA_VAULT_STORE)",
    });
  }

  #sharedOnly(what: string): SharedVault {
    this.#check();
    if (this.#shared === undefined) {
      throw new VaultError(
        "invalid_config",
        `${what} failed: versions and devices are kept only by a PostgreSQL store`,
        {
          hint: 'open the vault with store: "postgres://…" (CLI: --store or PALYRA_VAULT_STORE)',
        },
      );
    }
    return this.#shared;
  }

  #check(): void {
    if (this.#closed) throw new VaultError("io", "use vault failed: it was closed", { hint: "open it again" });
  }

  /**
   * Whether the vault exists, looking again when it did not at open: another
   * process (`palyra-secrets set`, a daemon) may have created it since, in the
   * layout and with the backend it chose, which this handle then takes as
   * `Vault.open` would now.
   */
  async #attach(action: string): Promise<boolean> {
    if (this.#exists || this.#pending.attach === undefined) return this.#exists;
    // This handle's own first write may be creating it.
    if (this.#creating !== undefined) await this.#creating.catch(() => {});
    if (this.#exists) return true;
    const now = await this.#pending.attach(action, true);
    if (now === undefined || !now.exists || this.#exists) return this.#exists;
    if (now.root !== this.root) {
      throw new VaultError("conflict", `${action} failed: the vault folder "${this.root}" now leads to "${now.root}"`, {
        hint: "open the vault again",
      });
    }
    this.#layout = now.layout;
    this.#pending = { ...this.#pending, recordKind: now.recordKind, layoutFor: now.layoutFor };
    this.#exists = true;
    return true;
  }

  /**
   * Refuses a write into a folder whose layout changed since it was opened
   * (a migration started or finished meanwhile), under the layout's lock.
   */
  #checkLayout(): Promise<void> {
    return this.#checkLayoutNow(`write to vault "${this.root}"`, "repeat the write", true);
  }

  /**
   * Refuses with `conflict` when the folder's layout is no longer the one this
   * handle reads and writes: another process migrated the vault since it was
   * opened (docs/FORMAT.md §6.6), and what this handle would read is the old
   * layout, gone or going. A read that finds nothing asks too, so that it never
   * answers "not set" for a secret the migrated vault holds. A write is refused
   * while a migration is unfinished as well; a read is not, since the layout it
   * reads holds the vault until the migration's commit.
   */
  async #checkLayoutNow(action: string, then: string, refuseMigrating: boolean): Promise<void> {
    // Both layouts at once: a scope folder beside Palyra's files. A handle in Palyra's layout waits out a stale
    // scoped writer's lock folder (detectSettled); a scoped handle that sees both is that writer itself, or the
    // folder really holds both.
    const detect = this.#layout.name === "palyra" ? detectSettled : detectLayout;
    const now = await detect(this.#fs, this.root).catch((e) => {
      if (VaultError.is(e, "corrupt")) return undefined;
      throw e;
    });
    if (now === undefined) {
      throw new VaultError("conflict", `${action} failed: its layout changed after it was opened`, {
        hint: `open the vault again and ${then}`,
      });
    }
    if (refuseMigrating && now.migratingTo !== undefined) {
      throw new VaultError(
        "conflict",
        `${action} failed: a migration to the ${now.migratingTo} layout is in progress`,
        {
          hint: `let it finish, or finish it: palyra-secrets migrate --to ${now.migratingTo}; then write again`,
        },
      );
    }
    if (now.layout === undefined || now.layout === this.#layout.name) return;
    throw new VaultError(
      "conflict",
      `${action} failed: it was migrated to the ${now.layout} layout after it was opened`,
      {
        hint: `open the vault again and ${then}`,
      },
    );
  }

  /** The error for a read of a vault that was never created. */
  #absent(action: string): VaultError {
    return new VaultError("not_found", `${action} failed: there is no vault at "${this.root}"`, {
      hint: "check the vault folder (--vault-dir, PALYRA_VAULT_DIR); a vault is created by its first write " +
        "(palyra-secrets set …)",
    });
  }

  /** Creates what the first write needs: the identity, then the vault folder and its backend.kind. */
  #create(): Promise<void> {
    this.#creating ??= (async () => {
      const { identityDir, recordKind, host } = this.#pending;
      if (this.#kek === undefined) {
        if (identityDir === undefined) {
          throw new VaultError("identity", "create device identity failed: no identity folder is known", {
            hint: "pass `identityRoot`, or set PALYRA_IDENTITY_DIR",
          });
        }
        // Created before the vault folder, so a failure here leaves no half-made vault.
        await this.#useIdentity(await loadOrCreateIdentity(this.#pending.identityHost, identityDir));
      }
      if (!this.#exists) {
        await secureDir(this.#fs, this.root, "vault folder");
        this.#exists = true;
      }
      try {
        await this.#layout.create();
      } catch (e) {
        // Another process's migration may have taken the layout's folders from under this handle (§6.6).
        await this.#checkLayout();
        throw e;
      }
      if (recordKind !== undefined) {
        // A new vault records its key; one another process created first keeps that process's record.
        if (this.#layout.writesKekId) await createKekRecord(this.#fs, this.root, this.#cipher!.kekId);
        const winner = await recordBackend(this.root, recordKind, host);
        if (winner !== undefined) this.#layout = this.#pending.layoutFor(winner);
        this.#pending = { ...this.#pending, recordKind: undefined };
      }
    })();
    // A failed creation is retried by the next write rather than remembered.
    this.#creating.catch(() => (this.#creating = undefined));
    return this.#creating;
  }

  async #useIdentity(identity: DeviceIdentity): Promise<void> {
    const kek = await identityKek(identity, this.#settings.kekEngine);
    // The derivation may be asynchronous: another call may have set the KEK meanwhile, or close() run.
    if (this.#kek !== undefined || this.#closed) {
      kek.fill(0);
      this.#check();
      return;
    }
    this.#kek = kek;
    this.#cipher = vaultCipher(kek, this.#settings.kekEngine);
  }

  /**
   * The KEK for opening a stored object. Without one yet (no identity existed
   * at open), the identity may have been created since by another process.
   */
  async #kekForRead(): Promise<Uint8Array> {
    if (this.#kek === undefined) {
      const dir = this.#pending.identityDir;
      const identity = dir === undefined ? undefined : await loadIdentity(this.#pending.identityHost, dir);
      if (identity === undefined) throw missingIdentity(dir ?? "(unknown)", this.root);
      await this.#useIdentity(identity);
    }
    return this.#kek!;
  }

  /** The cipher for opening a stored object (see `#kekForRead`). */
  async #cipherForRead(): Promise<EnvelopeCipher> {
    await this.#kekForRead();
    return this.#cipher!;
  }

  async #readPrevious(id: string): Promise<Uint8Array | undefined> {
    try {
      return await this.#layout.objects.get(id);
    } catch (e) {
      if (VaultError.is(e, "not_found")) return undefined;
      throw e;
    }
  }

  /** Puts the object back as it was (`undefined`: absent); the error says both failures if that fails too. */
  async #restoreObject(id: string, previous: Uint8Array | undefined, what: string, cause: unknown): Promise<void> {
    if (previous === undefined) {
      // A new key's object that no index names is an orphan, never read: remove it if possible, and let
      // the write's own error be the one reported.
      await this.#layout.objects.delete(id).catch(() => {});
      return;
    }
    // A file is replaced whole or not at all: when the write failed before its rename (a full disk), the previous
    // value is still there, and writing it again would fail as well and report a loss that did not happen.
    const now = await this.#layout.objects.get(id).catch(() => undefined);
    if (now !== undefined && sameBytes(now, previous)) return;
    try {
      await this.#layout.objects.put(id, previous);
    } catch (restoreError) {
      throw new VaultError(
        "io",
        `${what} failed (${message(cause)}) and putting the previous value back failed too (${message(restoreError)})`,
        { hint: "set the secret again once the problem is fixed", cause },
      );
    }
  }

  #tooLarge(k: string, s: string, valueBytes: number): VaultError {
    return new VaultError(
      "value_too_large",
      `put secret "${k}" in scope ${
        JSON.stringify(s)
      } failed: the value is ${valueBytes} bytes; the limit is ${this.#settings.maxSecretBytes}`,
      { hint: "store a smaller value, or raise the limit (maxSecretBytes; CLI: --max-bytes)" },
    );
  }

  /**
   * Stores `value` under `scope`/`key`, replacing any previous value (its
   * creation time is kept) unless `options.overwrite` is `false`. Strings are
   * stored as UTF-8. The caller's bytes are neither kept nor changed.
   *
   * @throws {VaultError} `conflict` when `overwrite` is `false` and a different value is stored.
   * @example
   * ```ts
   * import { Vault } from "@palyra/vault";
   * const vault = await Vault.open();
   * const meta = await vault.putSecret("ws:acme", "github_token", "ghp_...");
   * console.log(meta.valueBytes, meta.replaced);
   * ```
   */
  putSecret(
    scope: VaultScope | string,
    key: string,
    value: Uint8Array | string,
    options: PutOptions = {},
  ): Promise<PutResult> {
    return this.#put(scope, key, value, options, undefined);
  }

  /** @internal `importVault`: a put that keeps the times the secret had where it was exported. */
  static _putAt(
    v: Vault,
    scope: string,
    key: string,
    value: Uint8Array,
    options: PutOptions,
    times: { createdAtUnixMs: number; updatedAtUnixMs: number },
  ): Promise<PutResult> {
    return v.#put(scope, key, value, options, times);
  }

  /** @internal used by `openVault` for a PostgreSQL store. */
  static _shared(shared: SharedVault, fs: FileSystem, settings: Settings, pending: Pending): Vault {
    return new Vault(shared.root, true, undefined, undefined, fs, settings, pending, shared);
  }

  async #put(
    scope: VaultScope | string,
    key: string,
    value: Uint8Array | string,
    options: PutOptions,
    times: { createdAtUnixMs: number; updatedAtUnixMs: number } | undefined,
  ): Promise<PutResult> {
    this.#check();
    const parsed = toScope(scope);
    const s = formatScope(parsed);
    const k = validateKey(key);
    if (typeof value !== "string" && !(value instanceof Uint8Array)) {
      throw new TypeError("put secret failed: the value must be a Uint8Array or a string");
    }
    // Checked in the layout of the vault as it is now, which another process may have created since the open.
    if (this.#shared === undefined) {
      const action = `put secret "${k}" in scope ${JSON.stringify(s)}`;
      await this.#attach(action);
      try {
        this.#layout.checkScope(parsed);
      } catch (e) {
        // A scope that the other layout would hold: this handle's layout may be out of date.
        await this.#checkLayoutNow(action, "repeat the write", false);
        throw e;
      }
    }
    const overwrite = options.overwrite ?? true;
    const bytes = typeof value === "string" ? utf8(value) : value;
    const valueBytes = bytes.length;
    try {
      if (this.#shared !== undefined) return await this.#shared.put(s, k, bytes, options, times);
      if (options.ifVersion !== undefined) throw this.#sharedOnly("put secret with ifVersion") as never;
      if (valueBytes > this.#settings.maxSecretBytes) throw this.#tooLarge(k, s, valueBytes);
      await this.#create();
      const cipher = this.#cipher!;
      const layout = this.#layout;
      const envelope = await cipher.seal(s, k, bytes, layout.algorithm, layout.writesKekId ? undefined : null);
      const backend = layout.objects;
      const limit = backend.maxPayloadBytes;
      if (limit !== undefined && envelope.length > limit) {
        throw new VaultError(
          "value_too_large",
          `put secret "${k}" in scope ${JSON.stringify(s)} failed: its envelope is ${envelope.length} bytes; ` +
            `the ${backend.kind} backend keeps at most ${limit}`,
          { hint: "store a smaller value, or use the encrypted_file backend, which has no payload limit" },
        );
      }
      const id = objectId(s, k);
      const what = `put secret "${k}" in scope ${JSON.stringify(s)}`;
      return await layout.locked(s, "write", async () => {
        await this.#checkLayout();
        // Under the lock, so that a rekey, which writes the record before it takes each scope's lock, is seen.
        if (layout.writesKekId) await checkKekRecord(this.#fs, this.root, cipher.kekId, what);
        const index = await layout.readIndex(s);
        const old = index.find(s, k);
        // A new key has no previous object to compare with or to put back on a failure.
        const previous = old === undefined ? undefined : await this.#readPrevious(id);
        let replaced = false;
        if (old !== undefined) {
          let same = false;
          if (previous !== undefined) {
            try {
              const current = await cipher.open(s, k, previous);
              same = sameBytes(current, bytes);
              current.fill(0);
            } catch {
              same = false; // an unreadable value is never "the same"
            }
          }
          if (!overwrite && same) return { ...toMetadata(s, old), replaced: false };
          if (!overwrite) {
            throw new VaultError(
              "conflict",
              `put secret "${k}" in scope ${JSON.stringify(s)} failed: it already holds a different value`,
              { hint: "replace it on purpose (CLI: --force; library: { overwrite: true }), or choose another key" },
            );
          }
          replaced = !same;
        }
        try {
          await backend.put(id, envelope);
        } catch (e) {
          // A backend may have changed the old object before failing (a keychain truncating on update).
          await this.#restoreObject(id, previous, what, e);
          throw e;
        }
        const now = Date.now();
        const entry: IndexEntry = {
          key: k,
          object_id: id,
          created_at_unix_ms: times?.createdAtUnixMs ?? old?.created_at_unix_ms ?? now,
          updated_at_unix_ms: times?.updatedAtUnixMs ?? now,
          value_bytes: valueBytes,
        };
        try {
          await index.put(s, entry);
        } catch (e) {
          // Roll back from what is on disk: the change may have landed before a later step failed.
          const outcome = await index.outcome();
          if (outcome === "done") {
            throw new VaultError(
              "io",
              `${what} failed: the new value is in place, but writing it durably failed (${message(e)})`,
              { hint: "it may not survive a power loss: check the disk, then set the secret again", cause: e },
            );
          }
          // Still the old index: the old object belongs back. Unreadable: touch nothing.
          if (outcome === "not_done") await this.#restoreObject(id, previous, what, e);
          throw e;
        }
        return { ...toMetadata(s, entry), replaced };
      }, () => this.#checkLayout());
    } finally {
      if (typeof value === "string") bytes.fill(0);
    }
  }

  /**
   * Reads a secret. Dispose the result when done with it.
   *
   * @throws {VaultError} `not_found` when it was never set; `crypto` when the
   * stored object was modified or sealed by another identity; `conflict` when
   * another process migrated the vault to the other layout since this handle
   * opened it (open it again).
   * @example
   * ```ts
   * import { Vault } from "@palyra/vault";
   * const vault = await Vault.open();
   * using token = await vault.getSecret("ws:acme", "github_token");
   * ```
   */
  async getSecret(scope: VaultScope | string, key: string, options: GetOptions = {}): Promise<SensitiveBytes> {
    this.#check();
    const s = formatScope(toScope(scope));
    const k = validateKey(key);
    if (this.#shared !== undefined) return new SensitiveBytes(await this.#shared.get(s, k, options.version));
    if (options.version !== undefined) this.#sharedOnly("get secret with a version");
    const action = `get secret "${k}" in scope ${JSON.stringify(s)}`;
    if (!(await this.#attach(action))) throw this.#absent(action);
    let envelope: Uint8Array;
    try {
      envelope = await this.#layout.readObject(s, k);
    } catch (e) {
      if (VaultError.is(e, "not_found")) {
        await this.#checkLayoutNow(action, "read again", false);
        throw new VaultError("not_found", `${action} failed: it is not set`, {
          hint: `store it with: palyra-secrets set ${s} ${k}`,
          cause: e,
        });
      }
      if (VaultError.is(e, "value_too_large")) {
        throw new VaultError(
          "value_too_large",
          `get secret "${k}" in scope ${JSON.stringify(s)} failed: ${e.message}`,
          {
            hint: `its stored object is larger than a value of maxSecretBytes (${this.#settings.maxSecretBytes}) ` +
              "can be: open the vault with a larger maxSecretBytes (CLI: --max-bytes), or the object is corrupt",
            cause: e,
          },
        );
      }
      throw e;
    }
    const cipher = await this.#cipherForRead();
    return new SensitiveBytes(await cipher.open(s, k, envelope));
  }

  /**
   * Deletes a secret. Returns `false` when it did not exist.
   *
   * @example
   * ```ts
   * import { Vault } from "@palyra/vault";
   * const vault = await Vault.open();
   * const existed = await vault.deleteSecret("global", "old_token");
   * ```
   */
  async deleteSecret(scope: VaultScope | string, key: string): Promise<boolean> {
    this.#check();
    const s = formatScope(toScope(scope));
    const k = validateKey(key);
    if (this.#shared !== undefined) return await this.#shared.delete(s, k);
    if (!(await this.#attach(`delete secret "${k}" in scope ${JSON.stringify(s)}`))) {
      throw this.#absent(`delete secret "${k}" in scope ${JSON.stringify(s)}`);
    }
    await this.#create();
    const id = objectId(s, k);
    const what = `delete secret "${k}" in scope ${JSON.stringify(s)}`;
    const layout = this.#layout;
    return await layout.locked(s, "write", async () => {
      await this.#checkLayout();
      const index = await layout.readIndex(s);
      const entry = index.find(s, k);
      if (entry === undefined) {
        // An object without an entry is left over from a put that crashed: clear it too.
        const orphan = await this.#readPrevious(id);
        if (orphan !== undefined) await layout.objects.delete(id);
        return orphan !== undefined;
      }
      let durable: unknown;
      try {
        await index.delete(s, k);
      } catch (e) {
        if ((await index.outcome()) !== "done") throw e;
        durable = e; // the entry is gone from the index on disk: finish by removing the object
      }
      try {
        await layout.objects.delete(entry.object_id);
      } catch (e) {
        try {
          await index.undo();
        } catch (restoreError) {
          throw new VaultError(
            "io",
            `${what} failed: removing the object failed (${message(e)}) and restoring the index failed too (${
              message(restoreError)
            })`,
            { hint: "delete the secret again once the problem is fixed", cause: e },
          );
        }
        throw e;
      }
      if (durable !== undefined) {
        throw new VaultError(
          "io",
          `${what}: it is deleted, but writing the index durably failed (${message(durable)})`,
          {
            hint: "check the disk; after a power loss the secret's entry may come back without its value",
            cause: durable,
          },
        );
      }
      return true;
    }, () => this.#checkLayout());
  }

  /**
   * Lists secrets (never their values), sorted by scope then key; all scopes
   * when `scope` is omitted.
   *
   * @throws {VaultError} `not_found` when there is no vault; `conflict` when
   * another process migrated the vault to the other layout since this handle
   * opened it (open it again).
   * @example
   * ```ts
   * import { Vault } from "@palyra/vault";
   * const vault = await Vault.open();
   * for (const s of await vault.listSecrets()) console.log(s.scope, s.key, s.updatedAtUnixMs);
   * ```
   */
  async listSecrets(scope?: VaultScope | string): Promise<SecretMetadata[]> {
    this.#check();
    const wanted = scope === undefined ? undefined : formatScope(toScope(scope));
    if (this.#shared === undefined && !(await this.#attach("list secrets"))) throw this.#absent("list secrets");
    // Each entry is read straight into its SecretMetadata: copying 100 000 entries cost Node a third of the list.
    const out = this.#shared !== undefined
      ? await this.#shared.list(wanted)
      : await this.#layout.list(metadataOf, wanted);
    // After the read: a migration committed before it or during it leaves this layout empty or partly read.
    if (this.#shared === undefined) await this.#checkLayoutNow("list secrets", "list again", false);
    const before = (a: SecretMetadata, b: SecretMetadata) =>
      a.scope < b.scope ? -1 : a.scope > b.scope ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
    // A large scope usually comes sorted from its index; checking costs less than sorting.
    for (let i = 1; i < out.length; i++) if (before(out[i - 1]!, out[i]!) >= 0) return out.sort(before);
    return out;
  }

  /**
   * Reads the secret a reference names (`global/openai_api_key`,
   * `vault://ws:acme/github_token`).
   *
   * @example
   * ```ts
   * import { Vault } from "@palyra/vault";
   * const vault = await Vault.open();
   * using key = await vault.resolve("global/openai_api_key");
   * ```
   */
  resolve(ref: string): Promise<SensitiveBytes> {
    const parsed = parseVaultRef(ref);
    return this.getSecret(parsed.scope, parsed.key);
  }

  /**
   * PostgreSQL store only: the versions kept of a secret, newest first; a
   * deleted one has `deletedAtUnixMs`.
   *
   * @example
   * ```ts
   * import { Vault } from "@palyra/vault";
   * const vault = await Vault.open({ store: "postgres://vault@db.example.com/vault" });
   * for (const v of await vault.versions("global", "openai_api_key")) console.log(v.version, v.updatedAtUnixMs);
   * ```
   */
  versions(scope: VaultScope | string, key: string): Promise<(SecretMetadata & { deletedAtUnixMs?: number })[]> {
    const shared = this.#sharedOnly("list versions");
    return shared.versions(formatScope(toScope(scope)), validateKey(key));
  }

  /**
   * PostgreSQL store only: makes the value of an earlier version live again,
   * as a new version.
   *
   * @example
   * ```ts
   * import { Vault } from "@palyra/vault";
   * const vault = await Vault.open({ store: "postgres://vault@db.example.com/vault" });
   * await vault.rollback("global", "openai_api_key", 3);
   * ```
   */
  rollback(scope: VaultScope | string, key: string, version: number): Promise<SecretMetadata> {
    const shared = this.#sharedOnly("roll back secret");
    return shared.rollback(formatScope(toScope(scope)), validateKey(key), version);
  }

  /**
   * PostgreSQL store only: every device that is or was a member.
   *
   * @example
   * ```ts
   * import { Vault } from "@palyra/vault";
   * const vault = await Vault.open({ store: "postgres://vault@db.example.com/vault" });
   * for (const d of await vault.listDevices()) console.log(d.id, d.recipient, d.label);
   * ```
   */
  listDevices(): Promise<DeviceInfo[]> {
    return this.#sharedOnly("list devices").devices();
  }

  /**
   * PostgreSQL store only: makes the device whose age recipient is
   * `recipient` a member. The vault key is wrapped to it; no secret is touched.
   *
   * @example
   * ```ts
   * import { Vault } from "@palyra/vault";
   * const vault = await Vault.open({ store: "postgres://vault@db.example.com/vault" });
   * await vault.addDevice("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p", { label: "ci-runner-2" });
   * ```
   */
  addDevice(recipient: string, options: { label?: string } = {}): Promise<DeviceInfo> {
    return this.#sharedOnly("add device").addDevice(recipient, options.label ?? "");
  }

  /**
   * PostgreSQL store only: removes a device. A new vault key is wrapped to
   * the remaining members and every stored data key is rewrapped under it
   * (values are not re-encrypted). Run again, it finishes an interrupted
   * rewrap. The removed device may have kept what it could already read:
   * rotate those secrets. Returns how many envelopes were rewrapped.
   *
   * @example
   * ```ts
   * import { Vault } from "@palyra/vault";
   * const vault = await Vault.open({ store: "postgres://vault@db.example.com/vault" });
   * await vault.removeDevice("d_0123456789abcdef", { onProgress: (p) => console.log(p.done, p.total) });
   * ```
   */
  removeDevice(id: string, options: { onProgress?: (p: RewrapProgress) => void } = {}): Promise<number> {
    return this.#sharedOnly("remove device").removeDevice(id, options.onProgress);
  }

  /**
   * PostgreSQL store only: calls `listener` for every change committed by any
   * device (`LISTEN palyra_vault`), so a long-running process can drop what
   * it cached. Returns the function that stops it.
   *
   * @example
   * ```ts
   * import { Vault } from "@palyra/vault";
   * const vault = await Vault.open({ store: "postgres://vault@db.example.com/vault" });
   * const stop = await vault.watch((change) => console.log(change.op, change.scope, change.key));
   * await stop();
   * ```
   */
  watch(listener: (change: VaultChange) => void): Promise<() => Promise<void>> {
    return this.#sharedOnly("watch vault").watch(listener);
  }

  /** Zero-fills the key-encryption key; the vault cannot be used afterwards. */
  close(): void {
    void this.#shared?.close();
    this.#kek?.fill(0);
    this.#kek = undefined;
    this.#cipher = undefined;
    this.#closed = true;
  }

  /** Closes the vault at the end of its block: `using vault = await Vault.open()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Options of `migrateVault`: where the vault is, and the layout to convert it to.
 *
 * @example
 * ```ts
 * import { type MigrateOptions, migrateVault } from "@palyra/vault";
 * const options: MigrateOptions = { root: "/srv/palyra/vault", to: "palyra" };
 * await migrateVault(options);
 * ```
 */
export interface MigrateOptions extends Omit<VaultOptions, "layout" | "backend"> {
  /** The layout to convert the vault to. */
  to: LayoutName;
}

/**
 * Converts a vault folder in place between the scoped layout and the layout
 * of Palyra's daemon, or finishes a conversion a crash interrupted. The new
 * layout is written beside the old one and every secret is read back from it
 * before one rename makes it the vault, so a crash at any point leaves a
 * vault that opens with every secret; run it again to finish.
 *
 * @throws {VaultError} `not_found` when there is no vault; `conflict` when a
 * migration to the other layout is unfinished; `backend_unavailable` for a
 * keychain vault (only the encrypted_file backend's objects are converted).
 * @example
 * ```ts
 * import { migrateVault } from "@palyra/vault";
 * const done = await migrateVault({ root: "/srv/palyra/vault", to: "palyra" });
 * console.log(done.secrets, done.alreadyDone);
 * ```
 */
export async function migrateVault(options: MigrateOptions): Promise<MigrateResult> {
  const { to, ...rest } = options;
  if (to !== "scoped" && to !== "palyra") {
    throw new TypeError(`migrate vault failed: to must be "scoped" or "palyra", got ${JSON.stringify(to)}`);
  }
  const vault = await Vault.open(rest);
  try {
    const parts = await Vault._parts(vault, "migrate vault");
    if (!parts.exists) {
      throw new VaultError("not_found", `migrate vault failed: there is no vault at "${vault.root}"`, {
        hint: "check the vault folder (--vault-dir, PALYRA_VAULT_DIR)",
      });
    }
    // Loaded only by the one command that needs it.
    const { migrate } = await import("./store/migrate.ts");
    return await migrate(parts, to);
  } finally {
    vault.close();
  }
}

/** DPAPI protection of the identity store key, its module loaded only on Windows when first used. */
function lazyDpapiProtection(run: CommandRunner): StoreKeyProtection {
  const load = async () => (await import("./backends/windows_dpapi.ts")).dpapiStoreKeyProtection(run);
  return {
    protect: async (key) => (await load()).protect(key),
    unprotect: async (stored) => (await load()).unprotect(stored),
  };
}

/** What a vault takes from its host (the given parts, else the runtime's), and its identity store's access. */
function hostParts(
  given: VaultHost,
): { fs: FileSystem; run: CommandRunner; platform: string; identityHost: IdentityHost } {
  const fs = given.fs ?? defaultFileSystem;
  const run = given.run ?? runCommand;
  const platform = given.platform ?? osPlatform();
  return {
    fs,
    run,
    platform,
    identityHost: { fs, keyProtection: platform === "win32" ? lazyDpapiProtection(run) : undefined },
  };
}

/**
 * This device's id and age recipient for a PostgreSQL store, read from its
 * identity folder (the age identity is created there when missing). No store
 * is opened: a new device prints this for a member to pass to `addDevice`.
 *
 * @example
 * ```ts
 * import { deviceRecipient } from "@palyra/vault";
 * const { recipient } = await deviceRecipient({ identityRoot: "/srv/palyra/identity" });
 * console.log(recipient); // age1…
 * ```
 */
export async function deviceRecipient(
  options: { identityRoot?: string; host?: VaultHost } = {},
): Promise<{ id: string; recipient: string }> {
  const identityDir = options.identityRoot ?? defaultIdentityDir();
  if (identityDir === undefined) {
    throw new VaultError("identity", "read device recipient failed: no identity folder is known", {
      hint: "pass `identityRoot`, or set PALYRA_IDENTITY_DIR",
    });
  }
  const { loadDeviceKey } = await import("./store/postgres/device_keys.ts");
  const key = await loadDeviceKey(hostParts(options.host ?? {}).identityHost, identityDir);
  return { id: key.id, recipient: key.recipient };
}

/** Opens a vault kept in PostgreSQL (`VaultOptions.store`). */
async function openShared(store: string, options: VaultOptions, settings: Settings): Promise<Vault> {
  // The URL first: a bad one is told as such before anything else is looked at or created.
  (await import("./store/postgres/connection.ts")).parseConnectionUrl(store);
  for (const name of ["root", "kek", "backend", "layout"] as const) {
    if (options[name] !== undefined) {
      throw new TypeError(`open vault failed: the ${name} option is for a vault folder, not a PostgreSQL store`);
    }
  }
  const identityDir = options.identityRoot ?? defaultIdentityDir();
  if (identityDir === undefined) {
    throw new VaultError("identity", "open vault failed: no identity folder was given and no home folder is known", {
      hint: "pass `identityRoot`, or set PALYRA_IDENTITY_DIR",
    });
  }
  const { fs, run, platform, identityHost } = hostParts(options.host ?? {});
  const { SharedVault } = await import("./store/postgres/shared_vault.ts");
  const shared = await SharedVault.open({
    url: store,
    identityDir,
    identityHost,
    maxSecretBytes: settings.maxSecretBytes,
    kekEngine: settings.kekEngine,
    keepVersions: positive("keepVersions", options.keepVersions, 10),
  });
  const host: BackendHost = { fs, run, platform, maxObjectBytes: maxEnvelopeBytes(settings.maxSecretBytes) };
  return Vault._shared(shared, fs, settings, {
    identityDir,
    recordKind: undefined,
    host,
    identityHost,
    layoutFor: () => {
      throw new Error("a PostgreSQL store has no layout");
    },
  });
}

/** Palyra's layout and its object store, loaded on first use. */
async function loadPalyraLayout(): Promise<
  { PalyraLayout: typeof PalyraLayout; PalyraObjects: typeof PalyraObjects }
> {
  const [{ PalyraLayout }, { PalyraObjects }] = await Promise.all([
    import("./store/palyra_layout.ts"),
    import("./store/palyra_objects.ts"),
  ]);
  return { PalyraLayout, PalyraObjects };
}

/** Opens a vault: `Vault.open`. */
async function openVault(options: VaultOptions): Promise<Vault> {
  const settings: Settings = {
    maxSecretBytes: positive("maxSecretBytes", options.maxSecretBytes, DEFAULT_MAX_SECRET_BYTES),
    lockTimeoutMs: positive("lockTimeoutMs", options.lockTimeoutMs, DEFAULT_LOCK_TIMEOUT_MS),
    staleAfterMs: positive("staleAfterMs", options.staleAfterMs, DEFAULT_STALE_AFTER_MS),
    kekEngine: engine(options.kekEngine),
  };
  // PALYRA_VAULT_STORE gives way to options that name a vault folder; an explicit store does not.
  const folderChosen = options.root !== undefined || options.kek !== undefined || options.backend !== undefined ||
    options.layout !== undefined;
  const store = options.store ?? (folderChosen ? undefined : envVar("PALYRA_VAULT_STORE"));
  if (store !== undefined && store !== "") return await openShared(store, options, settings);
  const custom = typeof options.backend === "object" && options.backend !== null ? options.backend : undefined;
  if (custom !== undefined && options.root === undefined) {
    // Its indexes would otherwise land in the default vault folder, beside the user's real secrets.
    throw new TypeError(
      "open vault failed: a custom backend needs the root option (the folder for its indexes and locks)",
    );
  }
  const identityDir = options.identityRoot ?? defaultIdentityDir();
  const rootOption = options.root ?? envVar("PALYRA_VAULT_DIR") ??
    (identityDir === undefined ? undefined : join(dirname(identityDir), "vault"));
  if (rootOption === undefined) {
    throw new VaultError("io", "open vault failed: no vault folder was given and no home folder is known", {
      hint: "pass `root`, or set PALYRA_VAULT_DIR",
    });
  }
  let kek: Uint8Array | undefined;
  if (options.kek !== undefined) {
    if (!(options.kek instanceof Uint8Array) || options.kek.length !== KEY_BYTES) {
      throw new VaultError("crypto", `open vault failed: the kek option must be ${KEY_BYTES} bytes`, {
        hint: "pass a 32-byte Uint8Array, or omit kek to use the device identity",
      });
    }
    // A copy the vault owns (a Node Buffer's slice() would share the caller's memory), kept where the
    // garbage collector does not move it.
    kek = pinnedCopy(options.kek);
  }
  const { fs, run, platform, identityHost } = hostParts(options.host ?? {});
  const layoutOption = options.layout;
  if (layoutOption !== undefined && layoutOption !== "scoped" && layoutOption !== "palyra") {
    throw new TypeError(`open vault failed: layout must be "scoped" or "palyra", got ${JSON.stringify(layoutOption)}`);
  }
  const host: BackendHost = { fs, run, platform, maxObjectBytes: maxEnvelopeBytes(settings.maxSecretBytes) };
  // What the folder holds now. Run at open, and again by a handle whose vault did not exist then (`Vault#attach`).
  const attach = async (action: string, existingOnly = false): Promise<Attached | undefined> => {
    const { root, exists } = await locateRoot(fs, rootOption);
    // Nothing to attach to yet, and choosing a backend for a new vault may ask the OS's keychain.
    if (existingOnly && !exists) return undefined;
    const detected = exists ? await detectSettled(fs, root) : { layout: undefined, migratingTo: undefined };
    if (
      detected.layout !== undefined && detected.migratingTo === undefined && layoutOption !== undefined &&
      layoutOption !== detected.layout
    ) {
      throw new VaultError(
        "conflict",
        `${action} failed: "${root}" is in the ${detected.layout} layout, not the ${layoutOption} layout`,
        {
          hint:
            `omit the layout choice to open it as it is, or convert it: palyra-secrets migrate --to ${layoutOption}`,
        },
      );
    }
    const layoutName: LayoutName = detected.layout ?? layoutOption ?? "scoped";
    // Palyra's layout is loaded for a vault in it only: a read of a scoped vault has no use for its code.
    const palyra = layoutName === "palyra" ? await loadPalyraLayout() : undefined;
    let backend: BlobBackend;
    let recordKind: BackendKind | undefined;
    if (custom !== undefined) {
      backend = custom;
    } else {
      const explicit = options.backend === undefined
        ? undefined
        : parseBackendPreference(options.backend as string, "the backend option");
      const env = envVar("PALYRA_VAULT_BACKEND");
      const preference: BackendPreference = explicit ??
        (env !== undefined ? parseBackendPreference(env, "PALYRA_VAULT_BACKEND") : "auto");
      // A daemon's vault may have no backend.kind: objects in its store mean the file backend, whatever
      // `auto` would choose for a new vault, and nothing is added to the folder.
      const marked = exists
        ? (await readBackendMarker(fs, root)) ??
          (detected.layout === "palyra" && palyra !== undefined &&
              (await new palyra.PalyraObjects(fs, root, undefined).holdsObjects())
            ? "encrypted_file"
            : undefined)
        : undefined;
      if (marked !== undefined && explicit !== undefined && explicit !== "auto" && explicit !== marked) {
        throw new VaultError(
          "backend_unavailable",
          `${action} failed: "${root}" was created with the "${marked}" backend, not "${explicit}"`,
          { hint: `omit the backend choice to use "${marked}", or choose another vault folder for "${explicit}"` },
        );
      }
      const chosen = await selectBackend(root, marked, preference, host);
      backend = chosen.backend;
      recordKind = marked === undefined ? chosen.kind : undefined;
    }
    const lockLimits = { lockTimeoutMs: settings.lockTimeoutMs, staleAfterMs: settings.staleAfterMs };
    const layoutFor = (b: BlobBackend): VaultLayout =>
      palyra !== undefined
        ? new palyra.PalyraLayout(
          fs,
          root,
          // The built-in file backend keeps objects as Palyra's layout does: in objects.store.json.
          b !== custom && b.kind === "encrypted_file" ? new palyra.PalyraObjects(fs, root, host.maxObjectBytes) : b,
          lockLimits,
        )
        : new ScopedLayout(fs, root, b, lockLimits);
    return { root, exists, layout: layoutFor(backend), recordKind, layoutFor };
  };
  try {
    const { root, exists, layout, recordKind, layoutFor } = (await attach("open vault"))!;
    if (kek === undefined) {
      if (identityDir === undefined) {
        throw new VaultError(
          "identity",
          "open vault failed: no identity folder was given and no home folder is known",
          {
            hint: "pass `identityRoot`, or set PALYRA_IDENTITY_DIR",
          },
        );
      }
      const identity = await loadIdentity(identityHost, identityDir);
      if (identity !== undefined) kek = await identityKek(identity, settings.kekEngine);
      else if (exists && (await layout.holdsSecrets())) throw missingIdentity(identityDir, root);
    }
    return Vault._create(root, exists, kek, layout, fs, settings, {
      identityDir,
      recordKind,
      host,
      identityHost,
      layoutFor,
      attach,
    });
  } catch (e) {
    kek?.fill(0);
    throw e;
  }
}
