/**
 * The encrypted-file backend (docs/FORMAT.md §5): one envelope per file in
 * `objects/`, each replaced atomically and durably, never read through a
 * symbolic link — neither at the file nor at `objects/` itself.
 */
import { FILES } from "../store/layout.ts";
import { join } from "node:path";
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
  readonly kind = "encrypted_file";
  protected readonly where = "the objects folder";
  readonly #files: ObjectFiles;

  constructor(root: string, fs: FileSystem, options: EncryptedFileOptions = {}) {
    super();
    this.#files = new ObjectFiles(fs, join(root, FILES.objectsDir), "objects folder", options.maxObjectBytes);
  }

  protected store(objectId: string, bytes: Uint8Array): Promise<void> {
    return this.#files.write(objectId, bytes);
  }

  protected load(objectId: string): Promise<Uint8Array | undefined> {
    return this.#files.read(objectId);
  }

  protected remove(objectId: string): Promise<void> {
    return this.#files.remove(objectId);
  }
}
