/**
 * The objects of a vault in Palyra's layout (docs/FORMAT.md §6.3):
 * `objects/objects.store.json`, one compact JSON object with sorted keys that
 * maps each object id to the byte values of its envelope, at most 32 MiB.
 * Legacy per-object files `objects/obj_<hex>` are merged in on read (the
 * store wins). The vault calls it only while it holds `metadata.lock`.
 */
import { FILES } from "./layout.ts";
import { PALYRA_OBJECTS_STORE } from "./layout.ts";
import { join } from "../platform/path.ts";
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { parseJsonObject, utf8 } from "../crypto/encoding.ts";
import { isObjectId } from "../crypto/ids.ts";
import type { FileSystem } from "../platform/fs.ts";
import { secureDir } from "./folders.ts";
import { CheckedBackend } from "../backends/contract.ts";
import { ObjectFiles } from "../backends/object_files.ts";

/** The largest objects store read or written. */
export const MAX_OBJECTS_STORE_BYTES = 32 * 1024 * 1024;

function corrupt(path: string, why: string, cause?: unknown): VaultError {
  return new VaultError("corrupt", `read objects store "${path}" failed: it is corrupt (${why})`, {
    hint: "restore objects/objects.store.json from a backup",
    cause,
  });
}

/** Parses the store into a map of object id to envelope bytes. */
export function parseObjectsStore(path: string, bytes: Uint8Array): Map<string, Uint8Array> {
  const doc = parseJsonObject(bytes, (why, cause) => corrupt(path, why, cause));
  const out = new Map<string, Uint8Array>();
  for (const [id, value] of Object.entries(doc)) {
    if (!isObjectId(id)) throw corrupt(path, `${JSON.stringify(id)} is not an object id`);
    if (!Array.isArray(value) || !value.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) {
      throw corrupt(path, `the value of ${id} is not an array of byte values`);
    }
    out.set(id, Uint8Array.from(value as number[]));
  }
  return out;
}

/** Encodes the store: compact, keys sorted. */
export function encodeObjectsStore(objects: ReadonlyMap<string, Uint8Array>): Uint8Array {
  const ids = [...objects.keys()].sort();
  const parts = ids.map((id) => `${JSON.stringify(id)}:[${Array.from(objects.get(id)!).join(",")}]`);
  return utf8(`{${parts.join(",")}}`);
}

/** The objects of a palyra-layout vault, as a backend. */
export class PalyraObjects extends CheckedBackend {
  readonly kind = "encrypted_file";
  protected readonly where = "the objects store";
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #path: string;
  readonly #legacy: ObjectFiles;

  constructor(fs: FileSystem, root: string, maxObjectBytes: number | undefined) {
    super();
    this.#fs = fs;
    this.#dir = join(root, FILES.objectsDir);
    this.#path = join(root, PALYRA_OBJECTS_STORE);
    this.#legacy = new ObjectFiles(fs, this.#dir, "objects folder", maxObjectBytes);
  }

  /** The store's objects; an absent store is empty. */
  async read(): Promise<Map<string, Uint8Array>> {
    let bytes: Uint8Array;
    try {
      bytes = await this.#fs.readFile(this.#path, MAX_OBJECTS_STORE_BYTES);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return new Map();
      if (errnoCode(e) === "EFBIG") throw corrupt(this.#path, `it is larger than ${MAX_OBJECTS_STORE_BYTES} bytes`, e);
      throw fsError("read objects store", this.#path, e);
    }
    return parseObjectsStore(this.#path, bytes);
  }

  async #write(objects: Map<string, Uint8Array>): Promise<void> {
    const bytes = encodeObjectsStore(objects);
    if (bytes.length > MAX_OBJECTS_STORE_BYTES) {
      throw new VaultError(
        "value_too_large",
        `write objects store "${this.#path}" failed: it would be ${bytes.length} bytes; Palyra's layout keeps at most ` +
          `${MAX_OBJECTS_STORE_BYTES}`,
        {
          hint:
            "delete secrets you no longer need, or migrate the vault to the scoped layout (palyra-secrets migrate --to scoped)",
        },
      );
    }
    await secureDir(this.#fs, this.#dir, "objects folder");
    try {
      await this.#fs.writeFileAtomic(this.#path, bytes);
    } catch (e) {
      throw fsError("write objects store", this.#path, e);
    }
  }

  /** Whether the folder holds any object, in the store or as a legacy file. */
  async holdsObjects(): Promise<boolean> {
    if ((await this.#fs.lstat(this.#path).catch(() => undefined)) !== undefined) return true;
    const names = await this.#fs.readDir(this.#dir).catch(() => [] as string[]);
    return names.some((n) => isObjectId(n));
  }

  protected async load(objectId: string): Promise<Uint8Array | undefined> {
    const stored = (await this.read()).get(objectId);
    return stored ?? await this.#legacy.read(objectId);
  }

  protected async store(objectId: string, bytes: Uint8Array): Promise<void> {
    const objects = await this.read();
    objects.set(objectId, bytes);
    await this.#write(objects);
  }

  protected async remove(objectId: string): Promise<void> {
    const objects = await this.read();
    if (objects.delete(objectId)) await this.#write(objects);
    // A legacy file would otherwise bring the object back on the next read.
    await this.#legacy.remove(objectId);
  }
}
