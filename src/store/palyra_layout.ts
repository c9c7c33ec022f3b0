/**
 * Palyra's layout (docs/FORMAT.md §6), as the daemon keeps its vault: one
 * `metadata.json` at the root for every scope, objects in
 * `objects/objects.store.json` (or a keychain), and one `metadata.lock` that
 * every operation takes, reads included. Envelopes are ChaCha20-Poly1305
 * without `kek_id`, exactly what the daemon writes.
 */
import { FILES, PALYRA_OBJECTS_STORE } from "./layout.ts";
import { join } from "../platform/path.ts";
import { errnoCode, fsError, VaultError } from "../errors.ts";
import type { FileSystem } from "../platform/fs.ts";
import { secureDir } from "./folders.ts";
import { processLockHost } from "./scope_lock.ts";
import { type EntryMaker, MAX_INDEX_BYTES } from "./scope_index.ts";
import { sameBytes } from "../crypto/encoding.ts";
import { toTaggedScope, type VaultScope } from "../scope.ts";
import type { BlobBackend } from "../backends/backend.ts";
import { type IndexView, inTurn, type VaultLayout, whileHolding } from "./layout.ts";
import { encodePalyraIndex, type PalyraEntry, parsePalyraIndex } from "./palyra_index.ts";
import { acquirePalyraLock } from "./palyra_lock.ts";
import { MAX_OBJECTS_STORE_BYTES, parseObjectsStore } from "./palyra_objects.ts";
import type { LockLimits } from "./scoped_layout.ts";

/** A vault folder in Palyra's layout. */
export class PalyraLayout implements VaultLayout {
  readonly name = "palyra";
  readonly algorithm = "chacha20_poly1305";
  readonly writesKekId = false;
  readonly #indexPath: string;

  constructor(
    readonly fs: FileSystem,
    readonly root: string,
    readonly objects: BlobBackend,
    readonly limits: LockLimits,
  ) {
    this.#indexPath = join(root, FILES.palyraIndex);
  }

  checkScope(scope: VaultScope): void {
    toTaggedScope(scope);
  }

  async create(): Promise<void> {
    await secureDir(this.fs, join(this.root, FILES.objectsDir), "objects folder");
  }

  locked<T>(
    _scope: string,
    mode: "read" | "write",
    action: () => Promise<T>,
    recheck?: () => Promise<void>,
  ): Promise<T> {
    const take = () =>
      acquirePalyraLock(processLockHost(this.fs), this.root, {
        timeoutMs: this.limits.lockTimeoutMs,
        staleAfterMs: this.limits.staleAfterMs,
      });
    // A read-only file system (a container's read-only mount of the daemon's folder) cannot hold the lock, and no
    // writer through it can change a file: a read goes ahead without the lock (docs/FORMAT.md §6.4). Each file is
    // replaced whole (§6.5), so it reads an index and objects store that are each whole.
    const acquire = mode === "write" ? take : () =>
      take().catch((e: unknown) => {
        if (errnoCode((e as { cause?: unknown }).cause) !== "EROFS") throw e;
        return { path: join(this.root, FILES.palyraLock), release: () => Promise.resolve() };
      });
    // A migration holds this lock while it runs: a writer that waited it out in vain is told so (recheck).
    return inTurn(join(this.root, FILES.palyraLock), () => whileHolding(acquire, action, recheck));
  }

  async #entries(): Promise<PalyraEntry[]> {
    let bytes: Uint8Array;
    try {
      bytes = await this.fs.readFile(this.#indexPath, MAX_INDEX_BYTES);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return [];
      throw fsError("read index", this.#indexPath, e);
    }
    return parsePalyraIndex(this.#indexPath, bytes);
  }

  async readIndex(): Promise<IndexView> {
    const entries = await this.#entries();
    const at = (scope: string, key: string) => entries.findIndex((e) => e.scope === scope && e.key === key);
    let before: Uint8Array | undefined;
    let after: Uint8Array | undefined;
    // The daemon's index is one file: every change rewrites it whole.
    const commit = async (change: () => void) => {
      before = encodePalyraIndex(entries);
      change();
      after = encodePalyraIndex(entries);
      await this.#write(after);
    };
    return {
      find: (scope, key) => entries[at(scope, key)],
      put: (scope, entry) =>
        commit(() => {
          const i = at(scope, entry.key);
          // An overwrite keeps the entry's place, as the daemon does.
          if (i >= 0) entries[i] = { ...entry, scope };
          else entries.push({ ...entry, scope });
        }),
      delete: (scope, key) =>
        commit(() => {
          const i = at(scope, key);
          if (i >= 0) entries.splice(i, 1);
        }),
      undo: () => this.#write(before!),
      outcome: async () => {
        let onDisk: Uint8Array;
        try {
          onDisk = await this.fs.readFile(this.#indexPath, MAX_INDEX_BYTES);
        } catch (e) {
          return errnoCode(e) === "ENOENT" ? "not_done" : "unknown";
        }
        return sameBytes(onDisk, after!) ? "done" : sameBytes(onDisk, before!) ? "not_done" : "unknown";
      },
    };
  }

  async #write(bytes: Uint8Array): Promise<void> {
    try {
      await this.fs.writeFileAtomic(this.#indexPath, bytes);
    } catch (e) {
      throw fsError("write index", this.#indexPath, e);
    }
  }

  readObject(scope: string, key: string): Promise<Uint8Array> {
    return this.locked(scope, "read", async () => {
      const entry = (await this.#entries()).find((e) => e.scope === scope && e.key === key);
      if (entry === undefined) {
        throw new VaultError(
          "not_found",
          `read secret "${key}" in scope ${JSON.stringify(scope)} failed: not in the index`,
        );
      }
      return await this.objects.get(entry.object_id);
    });
  }

  list<E extends { scope: string; key: string }>(make: EntryMaker<E>, scope?: string): Promise<E[]> {
    return this.locked(scope ?? "global", "read", async () => {
      const entries = await this.#entries();
      return (scope === undefined ? entries : entries.filter((e) => e.scope === scope))
        .map((e) => make(e.scope, e.key, e.created_at_unix_ms, e.updated_at_unix_ms, e.value_bytes, e.object_id));
    });
  }

  async holdsSecrets(): Promise<boolean> {
    try {
      if ((await this.#entries()).length > 0) return true;
    } catch {
      return true; // an index that cannot be read counts as holding secrets: never guess in favour of a new key
    }
    const storePath = join(this.root, PALYRA_OBJECTS_STORE);
    const bytes = await this.fs.readFile(storePath, MAX_OBJECTS_STORE_BYTES).catch(() => undefined);
    if (bytes !== undefined) {
      try {
        if (parseObjectsStore(storePath, bytes).size > 0) return true;
      } catch {
        return true;
      }
    }
    const names = await this.fs.readDir(join(this.root, FILES.objectsDir)).catch(() => [] as string[]);
    return names.some((n) => /^obj_[0-9a-f]{64}$/.test(n));
  }
}
