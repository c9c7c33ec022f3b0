/**
 * The cipher of Palyra's identity store items (docs/FORMAT.md §4.2): `IDS1`,
 * a 12-byte nonce, then the ChaCha20-Poly1305 ciphertext and tag under the
 * 32-byte store key, with empty AAD.
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { VaultError } from "../errors.ts";
import { concatBytes } from "./encoding.ts";

/** The four bytes that start an encrypted item; an item without them is legacy plaintext. */
export const STORE_ITEM_MAGIC: Uint8Array = new Uint8Array([0x49, 0x44, 0x53, 0x31]); // "IDS1"
/** Length of the store key, in bytes. */
export const STORE_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** Whether `bytes` is an encrypted item (starts with `IDS1`). */
export function isSealedStoreItem(bytes: Uint8Array): boolean {
  return bytes.length >= STORE_ITEM_MAGIC.length && STORE_ITEM_MAGIC.every((b, i) => bytes[i] === b);
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== STORE_KEY_BYTES) {
    throw new RangeError(`the identity store key must be ${STORE_KEY_BYTES} bytes`);
  }
}

/**
 * Seals an item's plaintext. `nonce` exists for known-answer tests; leave it
 * out to use a fresh random one.
 */
export function sealStoreItem(
  key: Uint8Array,
  plaintext: Uint8Array,
  nonce: Uint8Array = globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES)),
): Uint8Array {
  checkKey(key);
  if (nonce.length !== NONCE_BYTES) throw new RangeError(`the nonce must be ${NONCE_BYTES} bytes`);
  const sealed = chacha20poly1305(key, nonce, new Uint8Array(0)).encrypt(plaintext);
  return concatBytes(STORE_ITEM_MAGIC, nonce, sealed);
}

/** Opens an encrypted item; a short file or a failed tag is one `crypto` error. */
export function openStoreItem(key: Uint8Array, bytes: Uint8Array): Uint8Array {
  checkKey(key);
  const head = STORE_ITEM_MAGIC.length + NONCE_BYTES;
  if (!isSealedStoreItem(bytes) || bytes.length < head + TAG_BYTES) {
    throw new VaultError("crypto", "open identity store item failed: it is shorter than an IDS1 header and tag");
  }
  try {
    return chacha20poly1305(key, bytes.subarray(STORE_ITEM_MAGIC.length, head), new Uint8Array(0))
      .decrypt(bytes.subarray(head));
  } catch {
    throw new VaultError("crypto", "open identity store item failed: authentication failed", {
      hint: "the item was modified, or .store-key.v1 is not the key it was written with",
    });
  }
}
