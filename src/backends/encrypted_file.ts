/**
 * The encrypted-file backend (SPEC §5): one envelope per file in `objects/`,
 * each replaced atomically and durably, never read through a symbolic link.
 */
import { join } from "node:path";
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { isObjectId } from "../crypto/ids.ts";
import type { FileSystem } from "../platform/fs.ts";
import { secureDir } from "../folders.ts";
import type { BlobBackend } from "./backend.ts";

/** Stores envelopes as `objects/obj_<64 hex>` files under the vault root. */
export class EncryptedFileBackend implements BlobBackend {
  readonly kind = "encrypted_file";
  readonly #dir: string;
  readonly #fs: FileSystem;
  #ready: Promise<void> | undefined;

  constructor(root: string, fs: FileSystem) {
    this.#dir = join(root, "objects");
    this.#fs = fs;
  }

  #pathOf(objectId: string): string {
    // Object ids are hashes; anything else could name a path outside objects/.
    if (!isObjectId(objectId)) {
      throw new VaultError("io", `use object id ${JSON.stringify(objectId)} failed: not of the form obj_<64 hex>`);
    }
    return join(this.#dir, objectId);
  }

  #ensureDir(): Promise<void> {
    this.#ready ??= secureDir(this.#fs, this.#dir, "objects folder").then(() => {});
    // A failed check is retried on the next call rather than remembered.
    this.#ready.catch(() => (this.#ready = undefined));
    return this.#ready;
  }

  async put(objectId: string, bytes: Uint8Array): Promise<void> {
    const path = this.#pathOf(objectId);
    await this.#ensureDir();
    try {
      await this.#fs.writeFileAtomic(path, bytes);
    } catch (e) {
      throw fsError("write object", path, e);
    }
  }

  async get(objectId: string): Promise<Uint8Array> {
    const path = this.#pathOf(objectId);
    try {
      return await this.#fs.readFile(path);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") {
        throw new VaultError("not_found", `read object "${objectId}" failed: it does not exist`);
      }
      throw fsError("read object", path, e);
    }
  }

  async delete(objectId: string): Promise<void> {
    const path = this.#pathOf(objectId);
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
