/**
 * The envelope (docs/FORMAT.md §3): each value is sealed under a fresh data key (DEK),
 * and the DEK under the device KEK, both bound by the AAD to their scope and
 * key. Everything that goes wrong while opening is one `crypto` error and no
 * bytes come out.
 */
import { gcm } from "@noble/ciphers/aes.js";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { VaultError } from "../errors.ts";
import { concatBytes, fromBase64, fromUtf8, toBase64, utf8 } from "./encoding.ts";
import { envelopeAad } from "./ids.ts";
import { kekId, KEY_BYTES } from "./kdf.ts";

/** AEAD algorithms an envelope may name. New envelopes use `aes_256_gcm`. */
export type EnvelopeAlgorithm = "aes_256_gcm" | "chacha20_poly1305";

/** The JSON object stored for each secret. */
export interface Envelope {
  version: 1;
  algorithm: EnvelopeAlgorithm;
  /** Absent in what Palyra's daemon writes. */
  kek_id?: string;
  aad_b64: string;
  secret_nonce_b64: string;
  secret_ciphertext_b64: string;
  secret_mac_b64: string;
  dek_nonce_b64: string;
  dek_ciphertext_b64: string;
  dek_mac_b64: string;
}

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

type Aead = (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array) => {
  encrypt(plaintext: Uint8Array): Uint8Array;
  decrypt(ciphertext: Uint8Array): Uint8Array;
};

const AEADS: Record<EnvelopeAlgorithm, Aead> = {
  aes_256_gcm: (k, n, a) => gcm(k, n, a),
  chacha20_poly1305: (k, n, a) => chacha20poly1305(k, n, a),
};

function randomBytes(n: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

function checkKek(kek: Uint8Array): void {
  if (!(kek instanceof Uint8Array) || kek.length !== KEY_BYTES) {
    throw new VaultError("crypto", `use key-encryption key failed: it must be ${KEY_BYTES} bytes`, {
      hint: "pass a 32-byte Uint8Array as `kek`, or let the vault derive it from the device identity",
    });
  }
}

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
  const aead = AEADS[algorithm];
  const aad = envelopeAad(scope, key);
  const dek = randomBytes(KEY_BYTES);
  const secretNonce = randomBytes(NONCE_BYTES);
  const dekNonce = randomBytes(NONCE_BYTES);
  try {
    const secret = aead(dek, secretNonce, aad).encrypt(value);
    const wrapped = aead(kek, dekNonce, aad).encrypt(dek);
    const envelope: Envelope = {
      version: 1,
      algorithm,
      ...(id === null ? {} : { kek_id: id }),
      aad_b64: toBase64(aad),
      secret_nonce_b64: toBase64(secretNonce),
      secret_ciphertext_b64: toBase64(secret.subarray(0, secret.length - TAG_BYTES)),
      secret_mac_b64: toBase64(secret.subarray(secret.length - TAG_BYTES)),
      dek_nonce_b64: toBase64(dekNonce),
      dek_ciphertext_b64: toBase64(wrapped.subarray(0, wrapped.length - TAG_BYTES)),
      dek_mac_b64: toBase64(wrapped.subarray(wrapped.length - TAG_BYTES)),
    };
    return utf8(JSON.stringify(envelope));
  } finally {
    dek.fill(0);
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
  checkKek(kek);
  const where = `scope ${JSON.stringify(scope)} key ${JSON.stringify(key)}`;
  const fail = (why: string, hint?: string): VaultError =>
    new VaultError("crypto", `open secret for ${where} failed: ${why}`, hint === undefined ? {} : { hint });

  let doc: unknown;
  try {
    doc = JSON.parse(fromUtf8(bytes));
  } catch {
    throw fail("the stored object is not a valid envelope (malformed JSON)");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw fail("the stored object is not an envelope");
  const env = doc as Record<string, unknown>;
  if (env.version !== 1) throw fail(`unsupported envelope version ${JSON.stringify(env.version) ?? "undefined"}`);
  const algorithm = env.algorithm;
  if (algorithm !== "aes_256_gcm" && algorithm !== "chacha20_poly1305") {
    throw fail(`unsupported algorithm ${JSON.stringify(algorithm) ?? "undefined"}`);
  }
  const field = (name: string, length?: number): Uint8Array => {
    const v = env[name];
    const decoded = typeof v === "string" ? fromBase64(v) : undefined;
    if (decoded === undefined) throw fail(`field "${name}" is missing or not unpadded base64`);
    if (length !== undefined && decoded.length !== length) {
      throw fail(`field "${name}" is ${decoded.length} bytes; expected ${length}`);
    }
    return decoded;
  };
  const aad = field("aad_b64");
  const expectedAad = envelopeAad(scope, key);
  if (aad.length !== expectedAad.length || !aad.every((b, i) => b === expectedAad[i])) {
    throw fail(
      "the object was sealed for another scope or key (AAD mismatch)",
      "an object cannot be moved between keys",
    );
  }
  const secretNonce = field("secret_nonce_b64", NONCE_BYTES);
  const secretCt = field("secret_ciphertext_b64");
  const secretMac = field("secret_mac_b64", TAG_BYTES);
  const dekNonce = field("dek_nonce_b64", NONCE_BYTES);
  const dekCt = field("dek_ciphertext_b64", KEY_BYTES);
  const dekMac = field("dek_mac_b64", TAG_BYTES);

  const aead = AEADS[algorithm];
  let dek: Uint8Array;
  try {
    dek = aead(kek, dekNonce, aad).decrypt(concatBytes(dekCt, dekMac));
  } catch {
    const stored = typeof env.kek_id === "string" ? env.kek_id : undefined;
    const ours = id ?? kekId(kek);
    if (stored !== undefined && stored !== ours) {
      throw fail(
        `it was sealed with kek_id ${JSON.stringify(stored)} but this vault's key is ${JSON.stringify(ours)}`,
        "open the vault with the device identity (or KEK) that wrote it",
      );
    }
    throw fail("authentication of the data key failed (the object was modified, or another key sealed it)");
  }
  try {
    return aead(dek, secretNonce, aad).decrypt(concatBytes(secretCt, secretMac));
  } catch {
    throw fail("authentication of the value failed (the object was modified)");
  } finally {
    dek.fill(0);
  }
}
