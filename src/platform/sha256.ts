/**
 * SHA-256, synchronous, for the names the format derives from a scope and
 * key (docs/FORMAT.md §1) and for `kek_id` (§2): Bun's own where the runtime
 * has it, else `@noble/hashes`. Bun hashes natively, with no module to load
 * and no JavaScript to compile first: noble's hash modules and their first
 * calls cost a `get` on Bun 2.3 of its 44 ms, and the compiled binary 1 of
 * 17 (medians of 101 paired runs). Deno has no synchronous SHA-256 of its
 * own, and Node's is in `node:crypto`, which `get` does not load. Both give
 * the same bytes: the known-answer tests run on every runtime.
 */
import { runtimeName } from "./runtime.ts";

/** The SHA-256 digest of `data`, in a new 32-byte array. */
export type Sha256 = (data: Uint8Array) => Uint8Array;

interface BunHasher {
  readonly SHA256: { hash(data: Uint8Array): Uint8Array };
}

/** SHA-256 on this runtime. */
export const sha256: Sha256 = runtimeName() === "bun"
  ? (data) => (globalThis as unknown as { Bun: BunHasher }).Bun.SHA256.hash(data)
  : (await import("@noble/hashes/sha2.js")).sha256;
