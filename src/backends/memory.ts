/** An in-memory `BlobBackend`, for tests and short-lived processes. */
import { CheckedBackend } from "./contract.ts";

/**
 * Keeps envelopes in a `Map`. Nothing survives the process.
 *
 * @example
 * ```ts
 * import { MemoryBackend, Vault } from "@palyra/vault";
 * const vault = await Vault.open({
 *   root: "/tmp/vault-test", // a custom backend needs a folder for the indexes and locks
 *   kek: crypto.getRandomValues(new Uint8Array(32)),
 *   backend: new MemoryBackend(),
 * });
 * ```
 */
export class MemoryBackend extends CheckedBackend {
  /** Always `"memory"`. */
  readonly kind: string = "memory";
  /** Names the store in error messages. */
  protected readonly where = "memory";
  readonly #objects = new Map<string, Uint8Array>();

  /** Keeps a copy of `bytes`, so the caller may reuse its buffer. */
  protected store(objectId: string, bytes: Uint8Array): Promise<void> {
    this.#objects.set(objectId, new Uint8Array(bytes));
    return Promise.resolve();
  }

  /** A copy of the stored bytes (the stored ones stay intact), or `undefined`. */
  protected load(objectId: string): Promise<Uint8Array | undefined> {
    const found = this.#objects.get(objectId);
    return Promise.resolve(found === undefined ? undefined : new Uint8Array(found));
  }

  /** Forgets the object; absent is fine. */
  protected remove(objectId: string): Promise<void> {
    this.#objects.delete(objectId);
    return Promise.resolve();
  }

  /** Number of stored objects. */
  get size(): number {
    return this.#objects.size;
  }
}
