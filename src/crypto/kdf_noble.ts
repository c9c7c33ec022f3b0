/**
 * The device KEK (docs/FORMAT.md §2) derived in `@noble/hashes`, in memory
 * this library wipes: a vault on the `noble` engine (the library's default)
 * derives it here, and loads this module only then.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { expand, extract } from "@noble/hashes/hkdf.js";
import { KEK_INFO, KEK_SALT, kept, KEY_BYTES } from "./kdf.ts";

/**
 * KEK = HKDF-SHA256(salt = "palyra.vault.kek.v1", ikm = SHA-256(seed),
 * info = "envelope:kek", 32 bytes), where `seed` is the UTF-8 of the CA
 * private-key PEM exactly as stored.
 */
export function deriveKek(seed: Uint8Array): Uint8Array {
  const ikm = sha256(seed);
  // Extract and expand separately, so the pseudo-random key between them can be wiped too.
  const prk = extract(sha256, ikm, KEK_SALT);
  try {
    return kept(expand(sha256, prk, KEK_INFO, KEY_BYTES));
  } finally {
    ikm.fill(0);
    prk.fill(0);
  }
}
