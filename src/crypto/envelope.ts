/**
 * The envelope (docs/FORMAT.md §3): each value is sealed under a fresh data
 * key (DEK), and the DEK under the device KEK, both bound by the AAD to their
 * scope and key. Everything that goes wrong while opening is one `crypto`
 * error and no bytes come out.
 *
 * Two ways to run the cipher, writing and reading the same bytes (a test
 * opens each one's envelopes with the other): `sealEnvelope`/`openEnvelope`
 * run `@noble/ciphers` synchronously; the vault's `sealEnvelopeAsync`/
 * `openEnvelopeAsync` hand a large AES-GCM value to the runtime's WebCrypto,
 * which is many times faster there, and keep small values and the KEK in
 * `@noble/ciphers`: a WebCrypto key object keeps copies of its key in memory
 * this library cannot wipe, which is acceptable for a one-use data key and
 * not for the KEK that opens every secret.
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
  type SealParts,
  sealParts,
  TAG_BYTES,
  valueFailure,
} from "./envelope_codec.ts";

export type { Envelope, EnvelopeAlgorithm } from "./envelope_codec.ts";

type Aead = (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array) => {
  encrypt(plaintext: Uint8Array): Uint8Array;
  decrypt(ciphertext: Uint8Array): Uint8Array;
};

const AEADS: Record<EnvelopeAlgorithm, Aead> = {
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
  return sealWith(kek, scope, key, algorithm, id, (p) => AEADS[algorithm](p.dek, p.secretNonce, p.aad).encrypt(value));
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

/** Draws a data key and nonces, seals the value with `sealValue`, wraps the data key under the KEK. */
function sealWith<T extends Uint8Array | Promise<Uint8Array>>(
  kek: Uint8Array,
  scope: string,
  key: string,
  algorithm: EnvelopeAlgorithm,
  id: string | null,
  sealValue: (parts: SealParts) => T,
): T {
  checkKek(kek);
  const parts = sealParts(scope, key);
  const finish = (secret: Uint8Array): Uint8Array => {
    try {
      // The data key is always wrapped here, in memory this library wipes.
      const wrapped = AEADS[algorithm](kek, parts.dekNonce, parts.aad).encrypt(parts.dek);
      return encodeEnvelope(algorithm, id, parts, secret, wrapped);
    } finally {
      parts.dek.fill(0);
    }
  };
  let sealed: T;
  try {
    sealed = sealValue(parts);
  } catch (e) {
    parts.dek.fill(0);
    throw e;
  }
  if (sealed instanceof Uint8Array) return finish(sealed) as T;
  return (sealed as Promise<Uint8Array>).then(finish, (e) => {
    parts.dek.fill(0);
    throw e;
  }) as T;
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
 * From this many bytes on, an AES-GCM value is sealed and opened by WebCrypto
 * (`npm run bench` measures both sides of it). Below it, the hop to the
 * runtime's crypto costs more than noble's AES takes.
 */
export const WEBCRYPTO_MIN_BYTES = 4096;

async function webAesGcm(
  dek: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  data: Uint8Array,
  op: "encrypt" | "decrypt",
): Promise<Uint8Array> {
  const subtle = globalThis.crypto.subtle;
  // WebCrypto takes ArrayBuffer-backed views only; a copy of the data key it can keep, not the caller's.
  const raw = new Uint8Array(dek);
  let k: CryptoKey;
  try {
    k = await subtle.importKey("raw", raw, "AES-GCM", false, [op]);
  } finally {
    raw.fill(0);
  }
  const params = { name: "AES-GCM", iv: new Uint8Array(nonce), additionalData: new Uint8Array(aad), tagLength: 128 };
  const input = data as Uint8Array<ArrayBuffer>;
  return new Uint8Array(
    op === "encrypt" ? await subtle.encrypt(params, k, input) : await subtle.decrypt(params, k, input),
  );
}

/** Whether the value layer of this envelope goes to WebCrypto. */
function useWebCrypto(algorithm: EnvelopeAlgorithm, valueBytes: number): boolean {
  return algorithm === "aes_256_gcm" && valueBytes >= WEBCRYPTO_MIN_BYTES;
}

/**
 * Seals as `sealEnvelope` does, with a large AES-GCM value sealed by WebCrypto.
 * The bytes written are the same either way.
 */
export function sealEnvelopeAsync(
  kek: Uint8Array,
  scope: string,
  key: string,
  value: Uint8Array,
  algorithm: EnvelopeAlgorithm = "aes_256_gcm",
  id: string | null = kekId(kek),
): Promise<Uint8Array> {
  if (!useWebCrypto(algorithm, value.length)) {
    try {
      return Promise.resolve(sealEnvelope(kek, scope, key, value, algorithm, id));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  return sealWith(kek, scope, key, algorithm, id, (p) => webAesGcm(p.dek, p.secretNonce, p.aad, value, "encrypt"));
}

/**
 * Opens as `openEnvelope` does, with a large AES-GCM value opened by WebCrypto:
 * the value in a new buffer the caller owns, or a `crypto` `VaultError`.
 */
export async function openEnvelopeAsync(
  kek: Uint8Array,
  scope: string,
  key: string,
  bytes: Uint8Array,
  id?: string,
): Promise<Uint8Array> {
  const env = decodeFor(kek, scope, key, bytes);
  const dek = unwrapDek(kek, env, id);
  try {
    return useWebCrypto(env.algorithm, env.secretSealed.length - TAG_BYTES)
      ? await webAesGcm(dek, env.secretNonce, env.aad, env.secretSealed, "decrypt")
      : AEADS[env.algorithm](dek, env.secretNonce, env.aad).decrypt(env.secretSealed);
  } catch {
    throw valueFailure(env);
  } finally {
    dek.fill(0);
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
  const aead = AEADS[env.algorithm];
  try {
    aead(newKek, env.dekNonce, env.aad).decrypt(env.dekSealed).fill(0);
    return undefined;
  } catch {
    // Not yet under the new key: unwrap with the old one below.
  }
  const dek = unwrapDek(oldKek, env, undefined);
  try {
    const dekNonce = randomBytes(NONCE_BYTES);
    const wrapped = aead(newKek, dekNonce, env.aad).encrypt(dek);
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
