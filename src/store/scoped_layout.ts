/**
 * The scoped layout (docs/FORMAT.md §5): one index per scope in
 * `scopes/<scope_dir>/metadata.json`, each guarded by its own lock, so a
 * write's cost does not grow with the secrets of other scopes and writers to
 * different scopes never wait for each other. Reads take no lock.
 */
import { FILES } from "./layout.ts";
import { join } from "../platform/path.ts";
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { objectId, scopeDirName } from "../crypto/ids.ts";
import type { FileSystem } from "../platform/fs.ts";
import { secureDir } from "./folders.ts";
import { acquireLock } from "./scope_lock.ts";
import { encodeIndex, findEntry, type IndexEntry, MAX_INDEX_BYTES, parseIndex, readIndex } from "./scope_index.ts";
import type { BlobBackend } from "../backends/backend.ts";
import { type IndexView, inTurn, type ScopedEntry, type VaultLayout } from "./layout.ts";

const SCOPE_DIR_RE = /^s_[0-9a-f]{32}$/;

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

  locked<T>(scope: string, mode: "read" | "write", action: () => Promise<T>): Promise<T> {
    if (mode === "read") return action();
    const dir = this.#dir(scope);
    const path = join(dir, FILES.scopeLock);
    let refused = false;
    return inTurn(path, async () => {
      await secureDir(this.fs, dir, `folder of scope ${JSON.stringify(scope)}`);
      const lock = await acquireLock(this.fs, path, {
        timeoutMs: this.limits.lockTimeoutMs,
        staleAfterMs: this.limits.staleAfterMs,
        what: `scope ${JSON.stringify(scope)}`,
      });
      try {
        return await action();
      } catch (e) {
        refused = VaultError.is(e, "conflict");
        throw e;
      } finally {
        await lock.release();
        // A write refused because the folder was migrated must not leave scopes/ behind in it.
        if (refused) {
          await this.fs.rmdir(dir).then(() => this.fs.rmdir(join(this.root, FILES.scopesDir))).catch(() => {});
        }
      }
    });
  }

  async readIndex(scope: string): Promise<IndexView> {
    const index = await readIndex(this.fs, this.#indexPath(scope), scope);
    return {
      find: (_s, key) => {
        const at = findEntry(index.entries, key);
        return at.found ? index.entries[at.index] : undefined;
      },
      set: (_s, entry: IndexEntry) => {
        const at = findEntry(index.entries, entry.key);
        index.entries.splice(at.index, at.found ? 1 : 0, entry);
      },
      remove: (_s, key) => {
        const at = findEntry(index.entries, key);
        if (at.found) index.entries.splice(at.index, 1);
      },
      encode: () => encodeIndex(index),
    };
  }

  async writeIndex(scope: string, bytes: Uint8Array): Promise<void> {
    const path = this.#indexPath(scope);
    try {
      await this.fs.writeFileAtomic(path, bytes);
    } catch (e) {
      throw fsError(`write index of scope ${JSON.stringify(scope)}`, path, e);
    }
  }

  async indexOnDisk(scope: string): Promise<Uint8Array | "absent" | undefined> {
    try {
      return await this.fs.readFile(this.#indexPath(scope), MAX_INDEX_BYTES);
    } catch (e) {
      return errnoCode(e) === "ENOENT" ? "absent" : undefined;
    }
  }

  readObject(scope: string, key: string): Promise<Uint8Array> {
    return this.objects.get(objectId(scope, key));
  }

  async list(scope?: string): Promise<ScopedEntry[]> {
    if (scope !== undefined) {
      const dir = this.#dir(scope);
      const info = await this.fs.lstat(dir).catch((e) => {
        throw fsError("inspect scope folder", dir, e);
      });
      if (info === undefined) return [];
      await secureDir(this.fs, dir, `folder of scope ${JSON.stringify(scope)}`, { create: false });
      const index = await readIndex(this.fs, join(dir, FILES.scopeIndex), scope);
      return index.entries.map((e) => ({ ...e, scope }));
    }
    const scopesDir = join(this.root, FILES.scopesDir);
    let names: string[];
    try {
      names = await this.fs.readDir(scopesDir);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return [];
      throw fsError("list scopes", scopesDir, e);
    }
    const out: ScopedEntry[] = [];
    for (const name of names.filter((n) => SCOPE_DIR_RE.test(n)).sort()) {
      const dir = join(scopesDir, name);
      await secureDir(this.fs, dir, `scope folder "${name}"`, { create: false });
      const path = join(dir, FILES.scopeIndex);
      let bytes: Uint8Array;
      try {
        bytes = await this.fs.readFile(path, MAX_INDEX_BYTES);
      } catch (e) {
        if (errnoCode(e) === "ENOENT") continue;
        throw fsError("read index", path, e);
      }
      const index = parseIndex(path, undefined, bytes);
      // The folder name is derived from the scope: a mismatch means a moved or forged index.
      if (scopeDirName(index.scope) !== name) {
        throw new VaultError("corrupt", `read index "${path}" failed: its scope does not match its folder`, {
          hint: "restore metadata.json from a backup; the envelopes in objects/ are untouched",
        });
      }
      for (const e of index.entries) out.push({ ...e, scope: index.scope });
    }
    return out;
  }

  async holdsSecrets(): Promise<boolean> {
    const { fs, root } = this;
    for (const folder of [FILES.objectsDir, FILES.dpapiObjectsDir]) {
      const names = await fs.readDir(join(root, folder)).catch(() => [] as string[]);
      if (names.some((n) => n.startsWith("obj_"))) return true;
    }
    const scopes = await fs.readDir(join(root, FILES.scopesDir)).catch(() => [] as string[]);
    for (const name of scopes.filter((n) => SCOPE_DIR_RE.test(n))) {
      const bytes = await fs.readFile(join(root, FILES.scopesDir, name, FILES.scopeIndex), MAX_INDEX_BYTES).catch(() =>
        undefined
      );
      if (bytes === undefined) continue;
      try {
        const doc = JSON.parse(new TextDecoder().decode(bytes)) as { entries?: unknown };
        if (!Array.isArray(doc.entries) || doc.entries.length > 0) return true;
      } catch {
        // An index that cannot be parsed counts as holding secrets: never guess in favour of a new key.
        return true;
      }
    }
    return false;
  }
}
