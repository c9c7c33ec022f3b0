/**
 * Objects kept as files in a folder of the vault (`objects/`, `objects_dpapi/`):
 * the one way both file-based backends read, write and remove them — never
 * through a symbolic link (at the file or at the folder), never reading more
 * than a cap.
 */
import { join } from "../platform/path.ts";
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { checkObjectId } from "./contract.ts";
import type { FileSystem } from "../platform/fs.ts";
import { existingRealFolder, secureDir } from "../store/folders.ts";

/** A folder of object files. */
export class ObjectFiles {
  constructor(
    readonly fs: FileSystem,
    readonly dir: string,
    /** Words for messages, e.g. `objects folder`. */
    readonly what: string,
    /** The largest file read; a bigger one is refused (`value_too_large`) before it is read. */
    readonly maxBytes: number | undefined,
  ) {}

  /** The path of an object; anything but `obj_<64 hex>` could name a path outside the folder. */
  pathOf(objectId: string): string {
    checkObjectId(objectId);
    return join(this.dir, objectId);
  }

  /** Reads an object; `undefined` when it (or the folder) does not exist. */
  async read(objectId: string): Promise<Uint8Array | undefined> {
    const path = this.pathOf(objectId);
    // Checked on every read (one lstat): a folder swapped for a link after opening is never followed.
    if (!(await existingRealFolder(this.fs, this.dir, this.what))) return undefined;
    try {
      return await this.fs.readFile(path, this.maxBytes);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return undefined;
      if (errnoCode(e) === "EFBIG") {
        const size = (e as { size?: number }).size;
        throw new VaultError(
          "value_too_large",
          `read object "${objectId}" failed: it is ${size ?? "more than"} bytes; at most ${this.maxBytes} are read`,
          { cause: e, hint: `a file this big was not written by this vault; restore or remove "${path}"` },
        );
      }
      throw fsError("read object", path, e);
    }
  }

  /** Replaces an object atomically and durably, creating the folder when needed. */
  async write(objectId: string, bytes: Uint8Array): Promise<void> {
    const path = this.pathOf(objectId);
    await secureDir(this.fs, this.dir, this.what);
    try {
      await this.fs.writeFileAtomic(path, bytes);
    } catch (e) {
      throw fsError("write object", path, e);
    }
  }

  /** Removes an object; absent is fine. A planted link is refused rather than removed, so the mistake is seen. */
  async remove(objectId: string): Promise<void> {
    const path = this.pathOf(objectId);
    if (!(await existingRealFolder(this.fs, this.dir, this.what))) return;
    try {
      const info = await this.fs.lstat(path);
      if (info === undefined) return;
      if (info.isSymlink) throw Object.assign(new Error("symbolic link"), { code: "ELOOP" });
      await this.fs.remove(path);
      await this.fs.syncDir(this.dir);
    } catch (e) {
      throw fsError("remove object", path, e);
    }
  }
}
