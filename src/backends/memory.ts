/** An in-memory `BlobBackend`, for tests and short-lived processes. */
import { VaultError } from "../errors.ts";
import type { BlobBackend } from "./backend.ts";

/**
 * Keeps envelopes in a `Map`. Nothing survives the process.
 *
 * @example
 * ```ts
 * import { MemoryBackend, Vault } from "@palyra/vault";
 * const vault = await Vault.open({ kek: crypto.getRandomValues(new Uint8Array(32)), backend: new MemoryBackend() });
 * ```
 */
export class MemoryBackend implements BlobBackend {
  readonly kind: string = "memory";
  readonly #objects = new Map<string, Uint8Array>();

  put(objectId: string, bytes: Uint8Array): Promise<void> {
    this.#objects.set(objectId, new Uint8Array(bytes));
    return Promise.resolve();
  }

  get(objectId: string): Promise<Uint8Array> {
    const found = this.#objects.get(objectId);
    if (found === undefined) {
      return Promise.reject(new VaultError("not_found", `read object "${objectId}" failed: it does not exist`));
    }
    return Promise.resolve(new Uint8Array(found));
  }

  delete(objectId: string): Promise<void> {
    this.#objects.delete(objectId);
    return Promise.resolve();
  }

  /** Number of stored objects. */
  get size(): number {
    return this.#objects.size;
  }
}
