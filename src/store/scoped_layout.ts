/**
 * The scoped layout (docs/FORMAT.md §5): one index per scope in
 * `scopes/<scope_dir>/metadata.json`, each guarded by its own lock, so a
 * write's cost does not grow with the secrets of other scopes and writers to
 * different scopes never wait for each other. Reads take no lock.
 */
import { FILES, SCOPE_DIR_RE } from "./layout.ts";
import { join } from "../platform/path.ts";
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { objectId, scopeDirName } from "../crypto/ids.ts";
import type { FileSystem } from "../platform/fs.ts";
import { secureDir, secureFoundDir } from "./folders.ts";
import type { EntryMaker, ScopeState } from "./scope_index.ts";
import type { BlobBackend } from "../backends/backend.ts";
import { type IndexView, inTurn, type VaultLayout, whileHolding } from "./layout.ts";

let indexModule: Promise<typeof import("./scope_writer.ts")> | undefined;

/**
 * The index's code (reading, the log, the lock, the writer), loaded on first
 * use: a `get` reads one object and none of it (README, "Performance"). The
 * promise is kept: an `import()` of a module already loaded still goes to the
 * module loader, and where a loader hook runs on a thread of its own (Node
 * with `tsx`) that cost a put two round trips to it, about 1 ms each.
 */
const indexCode = (): Promise<typeof import("./scope_writer.ts")> => indexModule ??= import("./scope_writer.ts");

/**
 * How long a read waits for an object its scope's index names to be there again. On exFAT through FUSE the longest
 * wait seen was 22 ms (a 2-core machine, a writer replacing three secrets as fast as it could); a machine under
 * load stretches it, and only a read of a secret whose object is really gone waits it out in full.
 */
const OBJECT_REPLACED_WAIT_MS = 3_000;

/** Lock settings of a layout. */
export interface LockLimits {
  lockTimeoutMs: number;
  staleAfterMs: number;
}

/** A vault folder in the scoped layout. */
export class ScopedLayout implements VaultLayout {
  readonly name = "scoped";
  readonly algorithm = "aes_256_gcm";
  readonly writesKekId = true;

  /** Entries of recently written scopes, as this process last wrote them (§5.1 "Reading"). */
  readonly #cache = new Map<string, { stamp: string; state: ScopeState }>();

  constructor(
    readonly fs: FileSystem,
    readonly root: string,
    readonly objects: BlobBackend,
    readonly limits: LockLimits,
  ) {}

  checkScope(): void {}

  async create(): Promise<void> {
    await secureDir(this.fs, join(this.root, FILES.scopesDir), "scopes folder");
  }

  #dir(scope: string): string {
    return join(this.root, FILES.scopesDir, scopeDirName(scope));
  }

  #indexPath(scope: string): string {
    return join(this.#dir(scope), FILES.scopeIndex);
  }

  locked<T>(
    scope: string,
    mode: "read" | "write",
    action: () => Promise<T>,
    recheck?: () => Promise<void>,
  ): Promise<T> {
    if (mode === "read") return action();
    const dir = this.#dir(scope);
    const path = join(dir, FILES.scopeLock);
    return inTurn(path, async () => {
      try {
        // A migration's commit removes scopes/ with the folder this writer is locking in it (recheck).
        return await whileHolding(
          async () => {
            await secureDir(this.fs, dir, `folder of scope ${JSON.stringify(scope)}`);
            const { acquireLock } = await indexCode();
            return await acquireLock(this.fs, path, {
              timeoutMs: this.limits.lockTimeoutMs,
              staleAfterMs: this.limits.staleAfterMs,
              what: `scope ${JSON.stringify(scope)}`,
            });
          },
          action,
          recheck,
        );
      } catch (e) {
        // A write refused because the folder was migrated must not leave scopes/ behind in it.
        if (VaultError.is(e, "conflict")) {
          await this.fs.rmdir(dir).then(() => this.fs.rmdir(join(this.root, FILES.scopesDir))).catch(() => {});
        }
        throw e;
      }
    });
  }

  async readIndex(scope: string): Promise<IndexView> {
    const { emptyState, IndexWriter, loadScopeIndex } = await indexCode();
    const dir = this.#dir(scope);
    const stamp = await this.#stamp(dir);
    const cached = this.#cache.get(scope);
    let state: ScopeState;
    if (cached !== undefined && cached.stamp === stamp) {
      state = cached.state;
    } else {
      this.#cache.delete(scope);
      state = await loadScopeIndex(this.fs, dir, scope) ?? emptyState(scope);
    }
    return new IndexWriter(this.fs, dir, state, async (kept) => {
      this.#cache.delete(scope);
      if (kept === undefined) return;
      const now = await this.#stamp(dir).catch(() => undefined);
      if (now === undefined) return;
      this.#cache.set(scope, { stamp: now, state: kept });
      // Keep a few scopes: a large scope's entries are worth keeping, every scope's are not.
      for (const old of this.#cache.keys()) {
        if (this.#cache.size <= CACHED_SCOPES) break;
        this.#cache.delete(old);
      }
    });
  }

  /**
   * What identifies the index files on disk now. Writers change them only by
   * rename (a new inode) or append (a new size), so an equal stamp means the
   * cached entries are still what the files say.
   */
  async #stamp(dir: string): Promise<string> {
    const part = async (name: string) => {
      const i = await this.fs.lstat(join(dir, name));
      return i === undefined ? "-" : `${i.ino}:${i.size}:${i.mtimeMs}`;
    };
    return `${await part(FILES.scopeIndex)}/${await part(FILES.scopeLog)}`;
  }

  async readObject(scope: string, key: string): Promise<Uint8Array> {
    const id = objectId(scope, key);
    const start = Date.now();
    for (let delay = 1;; delay = Math.min(delay * 2, 50)) {
      try {
        return await this.objects.get(id);
      } catch (e) {
        // A file system whose rename removes the file it replaces before it moves the new one in (exFAT through
        // FUSE) shows an object being replaced as missing for a moment; an index that still names the secret tells
        // that from a secret that is not set (docs/FORMAT.md §5.3, "get").
        if (!VaultError.is(e, "not_found") || Date.now() - start >= OBJECT_REPLACED_WAIT_MS) throw e;
        if (!(await this.list((s, k) => ({ scope: s, key: k }), scope)).some((entry) => entry.key === key)) throw e;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  async list<E extends { scope: string; key: string }>(make: EntryMaker<E>, scope?: string): Promise<E[]> {
    if (scope !== undefined) {
      const dir = this.#dir(scope);
      // Absent, or gone since a migration took scopes/ away: nothing to list here.
      if (!(await secureFoundDir(this.fs, dir, `folder of scope ${JSON.stringify(scope)}`))) return [];
      const { readScopeEntries } = await indexCode();
      return (await readScopeEntries(this.fs, dir, scope, make))?.entries ?? [];
    }
    const scopesDir = join(this.root, FILES.scopesDir);
    let names: string[];
    try {
      names = await this.fs.readDir(scopesDir);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return [];
      throw fsError("list scopes", scopesDir, e);
    }
    const { readScopeEntries } = await indexCode();
    const scopes: { scope: string; entries: E[] }[] = [];
    for (const name of names.filter((n) => SCOPE_DIR_RE.test(n)).sort()) {
      const dir = join(scopesDir, name);
      if (!(await secureFoundDir(this.fs, dir, `scope folder "${name}"`))) continue;
      const state = await readScopeEntries(this.fs, dir, undefined, make);
      if (state === undefined) continue;
      // The folder name is derived from the scope: a mismatch means a moved or forged index.
      if (scopeDirName(state.scope) !== name) {
        throw new VaultError(
          "corrupt",
          `read index "${join(dir, FILES.scopeIndex)}" failed: its scope does not match its folder`,
          {
            hint:
              "restore the scope's metadata.json and metadata.log from a backup; the envelopes in objects/ are untouched",
          },
        );
      }
      scopes.push(state);
    }
    return scopes.sort((a, b) => (a.scope < b.scope ? -1 : 1)).flatMap((s) => s.entries);
  }

  async holdsSecrets(): Promise<boolean> {
    const { fs, root } = this;
    for (const folder of [FILES.objectsDir, FILES.dpapiObjectsDir]) {
      const names = await fs.readDir(join(root, folder)).catch(() => [] as string[]);
      if (names.some((n) => n.startsWith("obj_"))) return true;
    }
    const scopes = await fs.readDir(join(root, FILES.scopesDir)).catch(() => [] as string[]);
    const { loadScopeIndex } = await indexCode();
    for (const name of scopes.filter((n) => SCOPE_DIR_RE.test(n))) {
      try {
        const state = await loadScopeIndex(fs, join(root, FILES.scopesDir, name), undefined);
        if (state !== undefined && state.entries.size > 0) return true;
      } catch {
        // An index that cannot be read counts as holding secrets: never guess in favour of a new key.
        return true;
      }
    }
    return false;
  }
}

/**
 * Waits until each writer holding a scope's lock now has released it, so that
 * every writer that read the vault's state (the migration marker, the key
 * record: docs/FORMAT.md §5.7, §6.6) before the caller changed it has finished.
 */
export async function drainScopeWriters(fs: FileSystem, root: string, limits: LockLimits): Promise<void> {
  const scopes = join(root, FILES.scopesDir);
  const names = await fs.readDir(scopes).catch(() => [] as string[]);
  const { acquireLock } = await indexCode();
  for (const name of names.filter((n) => SCOPE_DIR_RE.test(n))) {
    const lock = await acquireLock(fs, join(scopes, name, FILES.scopeLock), {
      timeoutMs: limits.lockTimeoutMs,
      staleAfterMs: limits.staleAfterMs,
      what: `scope folder "${name}"`,
    });
    await lock.release();
  }
}

/** How many scopes' entries a layout keeps between writes. */
const CACHED_SCOPES = 4;
