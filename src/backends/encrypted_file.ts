/**
 * The encrypted-file backend (docs/FORMAT.md §5): one envelope per file in
 * `objects/`, each replaced atomically and durably, never read through a
 * symbolic link — neither at the file nor at `objects/` itself.
 */
import { FILES } from "../store/layout.ts";
import { join } from "../platform/path.ts";
import type { FileSystem } from "../platform/fs.ts";
import { CheckedBackend } from "./contract.ts";
import { ObjectFiles } from "./object_files.ts";

/** Options of the file backend. */
export interface EncryptedFileOptions {
  /** The largest object read; a bigger file is refused (`value_too_large`) before it is read. */
  maxObjectBytes?: number;
}

/** Stores envelopes as `objects/obj_<64 hex>` files under the vault root. */
export class EncryptedFileBackend extends CheckedBackend {
  /** Always `"encrypted_file"`. */
  readonly kind = "encrypted_file";
  /** Names the store in error messages. */
  protected readonly where = "the objects folder";
  readonly #files: ObjectFiles;

  /**
   * Keeps envelopes in `<root>/objects/`, through the file layer `fs`. Touches
   * nothing yet: the folder is created (0700) by the first write.
   */
  constructor(root: string, fs: FileSystem, options: EncryptedFileOptions = {}) {
    super();
    this.#files = new ObjectFiles(fs, join(root, FILES.objectsDir), "objects folder", options.maxObjectBytes);
  }

  /** Replaces `objects/<objectId>` atomically and durably (docs/FORMAT.md §5.2), mode 0600. */
  protected store(objectId: string, bytes: Uint8Array): Promise<void> {
    return this.#files.write(objectId, bytes);
  }

  /**
   * Reads `objects/<objectId>`: `undefined` when it (or the folder) is absent;
   * a file larger than `maxObjectBytes` is `value_too_large`, unread.
   */
  protected load(objectId: string): Promise<Uint8Array | undefined> {
    return this.#files.read(objectId);
  }

  /** Removes `objects/<objectId>` and syncs the folder; absent is fine, a symbolic link there is refused. */
  protected remove(objectId: string): Promise<void> {
    return this.#files.remove(objectId);
  }
}
