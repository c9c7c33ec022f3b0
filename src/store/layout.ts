/**
 * The seam between the vault and the way a vault folder is laid out: where
 * the index lives, how objects are kept, which lock guards a write. Two
 * layouts implement it: the scoped layout (docs/FORMAT.md §5) and Palyra's
 * layout (§6). Sealing, identity and the put/delete protocol stay in the vault.
 */
import type { EnvelopeAlgorithm } from "../crypto/envelope.ts";
import type { BlobBackend } from "../backends/backend.ts";
import type { EntryMaker, IndexEntry } from "./scope_index.ts";
import type { VaultScope } from "../scope.ts";

/**
 * The two layouts of a vault folder: `"scoped"` (this library's) and
 * `"palyra"` (the layout of Palyra's daemon).
 *
 * @example
 * ```ts
 * import { type LayoutName, migrateVault } from "@palyra/vault";
 * const to: LayoutName = "palyra";
 * await migrateVault({ root: "/srv/palyra/vault", to });
 * ```
 */
export type LayoutName = "scoped" | "palyra";

/**
 * Every name this library gives a file or folder on disk (docs/FORMAT.md §4–§6),
 * relative to the vault folder unless it says otherwise. Nothing else spells them.
 */
export const FILES = {
  /** The backend the vault was created with (§5). */
  backendMarker: "backend.kind",
  /** Scoped layout: the `kek_id` of the key the vault is sealed under (§5.7). */
  kekRecord: "kek.id",
  /** The lock a re-key or a migration holds over the key record from start to end (§5.5, §6.6). */
  kekLock: ".kek.lock",
  /** Scoped layout: one folder per scope, named `s_<hex>` (§5). */
  scopesDir: "scopes",
  /** A scope's index snapshot, inside its scope folder (§5.1). */
  scopeIndex: "metadata.json",
  /** The log of changes since that snapshot, inside its scope folder (§5.1). */
  scopeLog: "metadata.log",
  /** A scope's writer lock folder, inside its scope folder (§5.4). */
  scopeLock: ".metadata.lock",
  /** One file per sealed object (encrypted_file backend, §5). */
  objectsDir: "objects",
  /** DPAPI-protected objects (windows_dpapi backend, §8). */
  dpapiObjectsDir: "objects_dpapi",
  /** Palyra's layout: the one index of every scope, at the root (§6.2). */
  palyraIndex: "metadata.json",
  /** Palyra's layout: the daemon's lock file (§6.4). */
  palyraLock: "metadata.lock",
  /** Palyra's layout: every object in one file, inside `objects/` (§6.3). */
  palyraObjectsStore: "objects.store.json",
  /** Present while a migration between layouts is unfinished (§6.6). */
  migrationMarker: ".migrating",
  /** Identity folder: the store key of the identity store (§4.2). */
  identityStoreKey: ".store-key.v1",
  /** Identity folder: the item holding the daemon's state (§4.3). */
  identityStateItem: "identity/state.v1.json",
  /** Identity folder: the item holding the gateway CA (§4.3). */
  identityCaItem: "identity/ca/state.json",
  /** Identity folder: the item holding this device's age identity for a PostgreSQL store (§10.2). */
  identityAgeItem: "vault/device.age-identity",
  /** Identity folder: the plaintext identity of this library's 0.1 (§4.5). */
  v01Identity: "state.v1.json",
  /** Identity folder: where 0.1 found the daemon's CA state (§4.5). */
  v01LegacyIdentity: "ca/state.json",
} as const;

/** Names of what a process that stopped mid-write leaves behind (§5.2, §5.4): temporary files and lock folders. */
export const LEFTOVER_RE = /\.tmp$|\.removing$|\.reclaim$/;

/** A scope folder's name (§1): `s_` and 32 hex characters. */
export const SCOPE_DIR_RE = /^s_[0-9a-f]{32}$/;

/** Palyra's objects store, relative to the vault folder. */
export const PALYRA_OBJECTS_STORE = `${FILES.objectsDir}/${FILES.palyraObjectsStore}`;

/** An index entry with its scope string. */
export interface ScopedEntry extends IndexEntry {
  scope: string;
}

/** Whether a failed index change reached the disk, as read back after the failure. */
export type ChangeOutcome = "done" | "not_done" | "unknown";

/**
 * The index entries a lock covers, as read while holding it. Each change is
 * written atomically and durably before it returns (`io` on failure); after a
 * failure, `outcome` reads back whether it happened.
 */
export interface IndexView {
  find(scope: string, key: string): IndexEntry | undefined;
  /** Records `entry`, replacing the entry of its key or adding it. */
  put(scope: string, entry: IndexEntry): Promise<void>;
  /** Removes the entry of `key`. */
  delete(scope: string, key: string): Promise<void>;
  /** Writes back what the last change replaced. */
  undo(): Promise<void>;
  /** After the last change failed: whether it is on disk (`"unknown"` when that cannot be read). */
  outcome(): Promise<ChangeOutcome>;
}

/** How one layout keeps a vault folder. */
export interface VaultLayout {
  readonly name: LayoutName;
  /** The AEAD new envelopes use, and whether they carry `kek_id` (the daemon's do not). */
  readonly algorithm: EnvelopeAlgorithm;
  readonly writesKekId: boolean;
  /** Where the envelopes are kept. */
  readonly objects: BlobBackend;
  /** Refuses a scope this layout cannot hold (`invalid_scope`). */
  checkScope(scope: VaultScope): void;
  /** Makes the folders a first write needs. */
  create(): Promise<void>;
  /**
   * Runs `action` holding the lock that guards `scope`; a layout may let reads run without it. When taking the
   * lock fails, `recheck` runs before that failure is thrown, and throws its own error instead when the failure
   * came from the folder changing under this handle (another process migrated it: §6.6).
   */
  locked<T>(scope: string, mode: "read" | "write", action: () => Promise<T>, recheck?: () => Promise<void>): Promise<T>;
  /** The index that covers `scope` (call while holding its lock). */
  readIndex(scope: string): Promise<IndexView>;
  /** The envelope stored for `scope`/`key`; `not_found` when there is none. */
  readObject(scope: string, key: string): Promise<Uint8Array>;
  /**
   * Index entries, of one scope or all (the scoped layout gives them sorted
   * by scope, then key), each made by `make`: `scopeEntry` for the store's own.
   */
  list<E extends { scope: string; key: string }>(make: EntryMaker<E>, scope?: string): Promise<E[]>;
  /** Whether the folder holds any secret (an index entry or a stored object). */
  holdsSecrets(): Promise<boolean>;
}

/** The last caller in line for each lock of this process. */
const turns = new Map<string, Promise<void>>();

/**
 * Runs `action` after every earlier caller in this process that named the
 * same lock: a burst of writers queues here instead of polling the file lock,
 * so the lock timeout measures only waits for other processes.
 */
export async function inTurn<T>(lockPath: string, action: () => Promise<T>): Promise<T> {
  const previous = turns.get(lockPath) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((resolve) => (done = resolve));
  const turn = previous.then(() => mine);
  turns.set(lockPath, turn);
  try {
    await previous;
    return await action();
  } finally {
    done();
    if (turns.get(lockPath) === turn) turns.delete(lockPath);
  }
}

/**
 * Takes a lock with `take` and runs `action` holding it, as `VaultLayout.locked` promises: when taking it fails,
 * `recheck` runs first, so that a folder another process migrated meanwhile is reported as such (§6.6).
 */
export async function whileHolding<T>(
  take: () => Promise<{ release(): Promise<void> }>,
  action: () => Promise<T>,
  recheck: (() => Promise<void>) | undefined,
): Promise<T> {
  let lock;
  try {
    lock = await take();
  } catch (e) {
    await recheck?.();
    throw e;
  }
  try {
    return await action();
  } finally {
    await lock.release();
  }
}
