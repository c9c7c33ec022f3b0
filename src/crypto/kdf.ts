/**
 * The device key-encryption key (docs/FORMAT.md §2): derived from the identity's CA
 * private key, as Palyra's Rust vault derives it.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { expand, extract } from "@noble/hashes/hkdf.js";
import { pinnedCopy } from "./sensitive.ts";
import { concatBytes, toHex, utf8 } from "./encoding.ts";

const KEK_SALT = utf8("palyra.vault.kek.v1");
const KEK_INFO = utf8("envelope:kek");
const KEK_ID_DOMAIN = utf8("palyra.vault.kek-id.v1");

/** Length in bytes of every key in the format (KEK and DEK). */
export const KEY_BYTES = 32;

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

/**
 * `deriveKek` by WebCrypto: the same key, computed natively. The compiled
 * CLI's `get` spent 2–4 ms deriving the KEK in JavaScript that had not yet
 * been compiled. WebCrypto keeps copies of the key material that are not
 * wiped when freed (README, "Threat model"), so only a vault on the
 * `webcrypto` engine derives its KEK this way.
 */
export async function deriveKekWebCrypto(seed: Uint8Array): Promise<Uint8Array> {
  const subtle = globalThis.crypto.subtle;
  const ikm = new Uint8Array(await subtle.digest("SHA-256", seed as Uint8Array<ArrayBuffer>));
  try {
    const base = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
    const params = { name: "HKDF", hash: "SHA-256", salt: KEK_SALT, info: KEK_INFO } as HkdfParams;
    return kept(new Uint8Array(await subtle.deriveBits(params, base, KEY_BYTES * 8)));
  } finally {
    ikm.fill(0);
  }
}

/** A copy of a derived key where the garbage collector does not move it; `okm` itself is wiped. */
function kept(okm: Uint8Array): Uint8Array {
  try {
    return pinnedCopy(okm);
  } finally {
    okm.fill(0);
  }
}

/** kek_id = lowercase hex of the first 8 bytes of SHA-256("palyra.vault.kek-id.v1" || KEK). */
export function kekId(kek: Uint8Array): string {
  const input = concatBytes(KEK_ID_DOMAIN, kek);
  const digest = sha256(input);
  input.fill(0);
  return toHex(digest.subarray(0, 8));
}
