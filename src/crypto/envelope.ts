/**
 * The envelope (docs/FORMAT.md §3): each value is sealed under a fresh data
 * key (DEK), and the DEK under the device KEK, both bound by the AAD to their
 * scope and key. Everything that goes wrong while opening is one `crypto`
 * error and no bytes come out.
 *
 * This is the synchronous way to run the cipher, on `@noble/ciphers`; the
 * vault's, `envelope_async.ts`, writes and reads the same bytes (a test opens
 * each one's envelopes with the other) and loads this module only when a
 * process does enough work to repay noble's start-up cost.
 */
import { gcm } from "@noble/ciphers/aes.js";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { kekId } from "./kdf.ts";
import {
  checkKek,
  type DecodedEnvelope,
  decodeEnvelope,
  dekFailure,
  encodeEnvelope,
  type EnvelopeAlgorithm,
  NONCE_BYTES,
  randomBytes,
  sealParts,
  valueFailure,
} from "./envelope_codec.ts";

export type { Envelope, EnvelopeAlgorithm } from "./envelope_codec.ts";

type Aead = (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array) => {
  encrypt(plaintext: Uint8Array): Uint8Array;
  decrypt(ciphertext: Uint8Array): Uint8Array;
};

/** Each algorithm an envelope may name, keyed and ready for one message. */
export const AEADS: Record<EnvelopeAlgorithm, Aead> = {
  aes_256_gcm: (k, n, a) => gcm(k, n, a),
  chacha20_poly1305: (k, n, a) => chacha20poly1305(k, n, a),
};

/**
 * Seals `value` for `scope`/`key` and returns the envelope as UTF-8 JSON bytes.
 * `algorithm` exists for tests and interoperability; the default is AES-256-GCM.
 * `id` is the KEK's `kek_id`; a vault computes it once rather than hashing
 * (and so copying) its KEK on every seal. `null` leaves the field out, as
 * Palyra's daemon does.
 */
export function sealEnvelope(
  kek: Uint8Array,
  scope: string,
  key: string,
  value: Uint8Array,
  algorithm: EnvelopeAlgorithm = "aes_256_gcm",
  id: string | null = kekId(kek),
): Uint8Array {
  checkKek(kek);
  const parts = sealParts(scope, key);
  try {
    const secret = AEADS[algorithm](parts.dek, parts.secretNonce, parts.aad).encrypt(value);
    const wrapped = AEADS[algorithm](kek, parts.dekNonce, parts.aad).encrypt(parts.dek);
    return encodeEnvelope(algorithm, id, parts, secret, wrapped);
  } finally {
    parts.dek.fill(0);
  }
}

/**
 * Opens an envelope sealed for `scope`/`key`. Returns the value in a new
 * buffer the caller owns. Any failure — malformed JSON, unknown version or
 * algorithm, wrong lengths, an AAD for another place, a failed tag — throws
 * `VaultError` with code `crypto`.
 */
export function openEnvelope(
  kek: Uint8Array,
  scope: string,
  key: string,
  bytes: Uint8Array,
  id?: string,
): Uint8Array {
  const env = decodeFor(kek, scope, key, bytes);
  const dek = unwrapDek(kek, env, id);
  try {
    return AEADS[env.algorithm](dek, env.secretNonce, env.aad).decrypt(env.secretSealed);
  } catch {
    throw valueFailure(env);
  } finally {
    dek.fill(0);
  }
}

function decodeFor(kek: Uint8Array, scope: string, key: string, bytes: Uint8Array): DecodedEnvelope {
  checkKek(kek);
  return decodeEnvelope(scope, key, bytes);
}

/** The envelope's data key, unwrapped with the KEK; the caller wipes it. */
function unwrapDek(kek: Uint8Array, env: DecodedEnvelope, id: string | undefined): Uint8Array {
  try {
    return AEADS[env.algorithm](kek, env.dekNonce, env.aad).decrypt(env.dekSealed);
  } catch {
    throw dekFailure(env, id ?? kekId(kek));
  }
}

/**
 * Wraps an envelope's data key under `newKek` (docs/FORMAT.md §3) and names
 * it by `newId`, leaving the value's nonce, ciphertext and tag byte for byte
 * as they are: a re-key never decrypts a value. Returns `undefined` when the
 * data key already opens with `newKek` (an envelope a re-key did before), and
 * throws `crypto` when it opens with neither key.
 */
export function rewrapEnvelope(
  oldKek: Uint8Array,
  newKek: Uint8Array,
  newId: string,
  scope: string,
  key: string,
  bytes: Uint8Array,
): Uint8Array | undefined {
  checkKek(newKek);
  const env = decodeFor(oldKek, scope, key, bytes);
  const cipher = AEADS[env.algorithm];
  try {
    cipher(newKek, env.dekNonce, env.aad).decrypt(env.dekSealed).fill(0);
    return undefined;
  } catch {
    // Not yet under the new key: unwrap with the old one below.
  }
  const dek = unwrapDek(oldKek, env, undefined);
  try {
    const dekNonce = randomBytes(NONCE_BYTES);
    const wrapped = cipher(newKek, dekNonce, env.aad).encrypt(dek);
    return encodeEnvelope(
      env.algorithm,
      newId,
      { aad: env.aad, dek, secretNonce: env.secretNonce, dekNonce },
      env.secretSealed,
      wrapped,
    );
  } finally {
    dek.fill(0);
  }
}
