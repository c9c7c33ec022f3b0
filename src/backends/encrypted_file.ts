/**
 * The encrypted-file backend (docs/FORMAT.md §5): one envelope per file in
 * `objects/`, each replaced atomically and durably, never read through a
 * symbolic link — neither at the file nor at `objects/` itself.
 */
import { join } from "node:path";
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { isObjectId } from "../crypto/ids.ts";
import type { FileSystem } from "../platform/fs.ts";
import { existingRealFolder, secureDir } from "../folders.ts";
import type { BlobBackend } from "./backend.ts";

/** Options of the file backend. */
export interface EncryptedFileOptions {
  /** The largest object read; a bigger file is refused (`value_too_large`) before it is read. */
  maxObjectBytes?: number;
}

/** Stores envelopes as `objects/obj_<64 hex>` files under the vault root. */
export class EncryptedFileBackend implements BlobBackend {
  readonly kind = "encrypted_file";
  readonly #dir: string;
  readonly #fs: FileSystem;
  readonly #maxObjectBytes: number | undefined;

  constructor(root: string, fs: FileSystem, options: EncryptedFileOptions = {}) {
    this.#dir = join(root, "objects");
    this.#fs = fs;
    this.#maxObjectBytes = options.maxObjectBytes;
  }

  #pathOf(objectId: string): string {
    // Object ids are hashes; anything else could name a path outside objects/.
    if (!isObjectId(objectId)) {
      throw new VaultError("io", `use object id ${JSON.stringify(objectId)} failed: not of the form obj_<64 hex>`);
    }
    return join(this.#dir, objectId);
  }

  /** Checks `objects/` on every operation (one lstat): a folder swapped for a link is never followed. */
  async #checkDir(create: boolean): Promise<boolean> {
    if (!create) return await existingRealFolder(this.#fs, this.#dir, "objects folder");
    await secureDir(this.#fs, this.#dir, "objects folder");
    return true;
  }

  async put(objectId: string, bytes: Uint8Array): Promise<void> {
    const path = this.#pathOf(objectId);
    await this.#checkDir(true);
    try {
      await this.#fs.writeFileAtomic(path, bytes);
    } catch (e) {
      throw fsError("write object", path, e);
    }
  }

  async get(objectId: string): Promise<Uint8Array> {
    const path = this.#pathOf(objectId);
    const missing = () => new VaultError("not_found", `read object "${objectId}" failed: it does not exist`);
    if (!(await this.#checkDir(false))) throw missing();
    try {
      return await this.#fs.readFile(path, this.#maxObjectBytes);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") throw missing();
      if (errnoCode(e) === "EFBIG") {
        const size = (e as { size?: number }).size;
        throw new VaultError(
          "value_too_large",
          `read object "${objectId}" failed: it is ${
            size ?? "more than"
          } bytes; at most ${this.#maxObjectBytes} are read`,
          { cause: e },
        );
      }
      throw fsError("read object", path, e);
    }
  }

  async delete(objectId: string): Promise<void> {
    const path = this.#pathOf(objectId);
    if (!(await this.#checkDir(false))) return;
    try {
      const info = await this.#fs.lstat(path);
      if (info === undefined) return;
      // Refuse rather than remove a planted link, so the mistake is seen.
      if (info.isSymlink) throw Object.assign(new Error("symbolic link"), { code: "ELOOP" });
      await this.#fs.remove(path);
      await this.#fs.syncDir(this.#dir);
    } catch (e) {
      throw fsError("remove object", path, e);
    }
  }
}
