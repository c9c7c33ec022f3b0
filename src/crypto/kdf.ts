/**
 * The device key-encryption key (docs/FORMAT.md §2): derived from the identity's CA
 * private key, as Palyra's Rust vault derives it; here by WebCrypto, and in
 * `kdf_noble.ts` by `@noble/hashes` (a vault on the `noble` engine). Also the
 * KEK's id, which every envelope names.
 */
import { pinnedCopy } from "./sensitive.ts";
import { concatBytes, toHex, utf8 } from "./encoding.ts";
import { sha256 } from "../platform/sha256.ts";

/** HKDF's salt for the KEK. */
export const KEK_SALT = utf8("palyra.vault.kek.v1");
/** HKDF's info for the KEK. */
export const KEK_INFO = utf8("envelope:kek");
const KEK_ID_DOMAIN = utf8("palyra.vault.kek-id.v1");

/** Length in bytes of every key in the format (KEK and DEK). */
export const KEY_BYTES = 32;

/**
 * `deriveKek` (`kdf_noble.ts`) by WebCrypto: the same key, computed
 * natively. The compiled CLI's `get` spent 2–4 ms deriving the KEK in
 * JavaScript that had not yet been compiled. WebCrypto keeps copies of the
 * key material that are not wiped when freed (README, "Threat model"), so
 * only a vault on the `webcrypto` engine derives its KEK this way.
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
export function kept(okm: Uint8Array): Uint8Array {
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
