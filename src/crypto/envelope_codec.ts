/**
 * The envelope's bytes (docs/FORMAT.md §3), apart from any cipher: the JSON
 * document, the checks made before anything is decrypted, and the one
 * `crypto` error every failure becomes. The two ways of running the cipher,
 * `envelope.ts` (synchronous, `@noble/ciphers`) and `envelope_async.ts`
 * (WebCrypto), both sit on this, so they read and write the same bytes.
 */
import { VaultError } from "../errors.ts";
import type { Base64Codec } from "../platform/base64.ts";
import { BASE64, base64Bytes, base64Length, fromBase64, fromUtf8, fromUtf8Loose, writeUtf8 } from "./encoding.ts";
import { envelopeAad } from "./ids.ts";
import { KEY_BYTES } from "./kdf.ts";

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

/** AEAD nonce length for both algorithms. */
export const NONCE_BYTES = 12;
/** AEAD tag length for both algorithms. */
export const TAG_BYTES = 16;

/** Fresh random bytes. */
export function randomBytes(n: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

/** Refuses a KEK that is not 32 bytes. */
export function checkKek(kek: Uint8Array): void {
  if (!(kek instanceof Uint8Array) || kek.length !== KEY_BYTES) {
    throw new VaultError("crypto", `use key-encryption key failed: it must be ${KEY_BYTES} bytes`, {
      hint: "pass a 32-byte Uint8Array as `kek`, or let the vault derive it from the device identity",
    });
  }
}

/** The random parts of a new envelope: its data key and two nonces. */
export interface SealParts {
  readonly aad: Uint8Array;
  readonly dek: Uint8Array;
  readonly secretNonce: Uint8Array;
  readonly dekNonce: Uint8Array;
}

/** Draws the data key and nonces for sealing `scope`/`key`; the caller wipes `dek`. */
export function sealParts(scope: string, key: string): SealParts {
  // One draw for the three, as views of one buffer: each call to getRandomValues cost Node 20 about 5 µs.
  const drawn = randomBytes(KEY_BYTES + 2 * NONCE_BYTES);
  return {
    aad: envelopeAad(scope, key),
    dek: drawn.subarray(0, KEY_BYTES),
    secretNonce: drawn.subarray(KEY_BYTES, KEY_BYTES + NONCE_BYTES),
    dekNonce: drawn.subarray(KEY_BYTES + NONCE_BYTES),
  };
}

/**
 * What an AEAD gives when it seals: the ciphertext with the tag after it, or
 * the two apart (as the runtime's own AES-GCM gives them, since joining them
 * costs a new buffer).
 */
export type Sealed = Uint8Array | readonly [ciphertext: Uint8Array, tag: Uint8Array];

/** `sealed` as its ciphertext and its tag. */
function apart(sealed: Sealed): readonly [Uint8Array, Uint8Array] {
  return sealed instanceof Uint8Array
    ? [sealed.subarray(0, sealed.length - TAG_BYTES), sealed.subarray(sealed.length - TAG_BYTES)]
    : sealed;
}

/**
 * The envelope's JSON bytes, from the parts and the two sealed outputs, their
 * base64 written by `base64`.
 */
export function encodeEnvelope(
  algorithm: EnvelopeAlgorithm,
  id: string | null,
  parts: SealParts,
  secret: Sealed,
  wrapped: Sealed,
  base64: Base64Codec = BASE64,
): Uint8Array {
  // The bytes JSON.stringify gives for an `Envelope` with its fields in this order. Written out, and straight
  // into one buffer, because base64 needs no escaping: JSON.stringify scanning an 87 KB string for escapes cost
  // Node 100 µs, and making the string, then its UTF-8, a third of a 64 KiB seal on Node 20.
  const head = `{"version":1,"algorithm":${JSON.stringify(algorithm)}` +
    (id === null ? "" : `,"kek_id":${JSON.stringify(id)}`);
  const values = [parts.aad, parts.secretNonce, ...apart(secret), parts.dekNonce, ...apart(wrapped)];
  // Each field is `,"<name>":"<base64>"`: six bytes besides its name and value; then the closing brace.
  let length = head.length + 1;
  BASE64_FIELDS.forEach((name, i) => (length += name.length + 6 + base64Length(values[i]!.length)));
  const out = new Uint8Array(length);
  let o = writeUtf8(head, out, 0);
  BASE64_FIELDS.forEach((name, i) => {
    o = base64.write(values[i]!, out, writeUtf8(`,"${name}":"`, out, o));
    out[o++] = 0x22; // "
  });
  out[o] = 0x7d; // }
  return out;
}

/** A parsed envelope, checked against the scope and key it is opened for. */
export interface DecodedEnvelope {
  readonly algorithm: EnvelopeAlgorithm;
  /** The `kek_id` it names, if any. */
  readonly storedKekId: string | undefined;
  readonly aad: Uint8Array;
  readonly secretNonce: Uint8Array;
  /** Ciphertext followed by the tag. */
  readonly secretSealed: Uint8Array;
  readonly dekNonce: Uint8Array;
  /** Wrapped data key followed by the tag. */
  readonly dekSealed: Uint8Array;
  /** The `crypto` error for this envelope, naming its scope and key. */
  fail(why: string, hint?: string): VaultError;
}

/**
 * The step of an open that failed: the envelope's form (it is no envelope
 * any reader could open: malformed JSON, a field missing or not base64, no
 * version), a version or algorithm it names that this vault does not know
 * (a newer writer's, perhaps), its data key (it does not authenticate under
 * the KEK: modified, or another key's), or its value (the data key
 * authenticated, so the KEK is the vault's own, and the value was modified).
 * Every one is the same `crypto` error to a caller; `fsck` tells them apart.
 */
export type OpenStep = "form" | "unsupported" | "data_key" | "value";

const failures = new WeakMap<VaultError, { step: OpenStep; why: string }>();

/** The step of an envelope's open at which `e` was thrown and why, or `undefined` when it is no such error. */
export function openFailureOf(e: unknown): { step: OpenStep; why: string } | undefined {
  return e instanceof VaultError ? failures.get(e) : undefined;
}

/** Builds the `crypto` error for opening `scope`/`key`: a failure of the envelope's form, unless marked otherwise. */
export function openFailure(scope: string, key: string): DecodedEnvelope["fail"] {
  const where = `scope ${JSON.stringify(scope)} key ${JSON.stringify(key)}`;
  return (why, hint) => {
    const e = new VaultError("crypto", `open secret for ${where} failed: ${why}`, hint === undefined ? {} : { hint });
    failures.set(e, { step: "form", why });
    return e;
  };
}

/**
 * Parses and checks an envelope, its fields decoded by `base64`; every defect
 * is a `crypto` error and nothing is decrypted.
 */
export function decodeEnvelope(
  scope: string,
  key: string,
  bytes: Uint8Array,
  base64: Base64Codec = BASE64,
): DecodedEnvelope {
  const fail = openFailure(scope, key);
  // Everything the scan and its checks accept is ASCII, so malformed UTF-8 (read as U+FFFD) never gets through.
  const scanned = scanEnvelope(fromUtf8Loose(bytes));
  if (scanned !== undefined) {
    try {
      return checkEnvelope(scanned, scope, key, fail, base64);
    } catch {
      // The scan is only a shortcut: JSON.parse below reads the text again and says what is wrong with it.
    }
  }
  let doc: unknown;
  try {
    doc = JSON.parse(fromUtf8(bytes));
  } catch {
    throw fail("the stored object is not a valid envelope (malformed JSON)");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw fail("the stored object is not an envelope");
  return checkEnvelope(doc as Record<string, unknown>, scope, key, fail, base64);
}

/** The fields after `kek_id`, in the order `encodeEnvelope` writes them. */
const BASE64_FIELDS = [
  "aad_b64",
  "secret_nonce_b64",
  "secret_ciphertext_b64",
  "secret_mac_b64",
  "dek_nonce_b64",
  "dek_ciphertext_b64",
  "dek_mac_b64",
] as const;
const SCAN_HEAD = '{"version":1,"algorithm":"';
const SCAN_KEK_ID = '","kek_id":"';
const KEK_ID_FORM = /^[0-9a-f]{16}$/;

/**
 * An envelope in exactly the form `encodeEnvelope` writes, read without
 * building a JSON tree: for a 64 KiB value, `JSON.parse` of its 87 KB
 * envelope costs about as much as the AES. `undefined` for any text that
 * strays from that form (another field order, white space, a backslash
 * anywhere), which `JSON.parse` then reads. A string this accepts holds no
 * escape, so JSON.parse gives the same fields, unless a value holds a raw
 * control character, which JSON refuses and base64 decoding refuses too. An
 * envelope whose fields fail any check is read again through JSON.parse, so
 * its error is the one JSON.parse's reading gives.
 */
export function scanEnvelope(text: string): Record<string, unknown> | undefined {
  if (!text.startsWith(SCAN_HEAD) || text.charCodeAt(text.length - 1) !== 125 || text.includes("\\")) return undefined;
  let p = SCAN_HEAD.length;
  /** The string that starts at `p`, up to the next quote. */
  const take = (): string | undefined => {
    const end = text.indexOf('"', p);
    if (end < 0) return undefined;
    const value = text.slice(p, end);
    p = end;
    return value;
  };
  const algorithm = take();
  if (algorithm !== "aes_256_gcm" && algorithm !== "chacha20_poly1305") return undefined;
  const doc: Record<string, unknown> = { version: 1, algorithm };
  if (text.startsWith(SCAN_KEK_ID, p)) {
    p += SCAN_KEK_ID.length;
    const id = take();
    if (id === undefined || !KEK_ID_FORM.test(id)) return undefined;
    doc.kek_id = id;
  }
  for (const name of BASE64_FIELDS) {
    const open = `","${name}":"`;
    if (!text.startsWith(open, p)) return undefined;
    p += open.length;
    const value = take();
    if (value === undefined) return undefined;
    doc[name] = value;
  }
  return p === text.length - 2 ? doc : undefined; // the closing quote and brace
}

/** Checks an envelope's fields against the scope and key it is opened for, and decodes them. */
function checkEnvelope(
  env: Record<string, unknown>,
  scope: string,
  key: string,
  fail: DecodedEnvelope["fail"],
  base64: Base64Codec,
): DecodedEnvelope {
  if (env.version !== 1) {
    throw unsupported(
      fail(`unsupported envelope version ${JSON.stringify(env.version) ?? "undefined"}`),
      typeof env.version === "number",
    );
  }
  const algorithm = env.algorithm;
  if (algorithm !== "aes_256_gcm" && algorithm !== "chacha20_poly1305") {
    throw unsupported(
      fail(`unsupported algorithm ${JSON.stringify(algorithm) ?? "undefined"}`),
      typeof algorithm === "string",
    );
  }
  /**
   * A field's bytes, checked to be `length` long when given, in a buffer with
   * `room` bytes to spare after them: a ciphertext is decoded straight into
   * the buffer that also takes its tag (for a 64 KiB value, no copy of 64 KiB).
   */
  const field = (name: string, length?: number, room = 0): Uint8Array => {
    const v = env[name];
    const n = typeof v === "string" ? base64Bytes(v.length) : undefined;
    const out = new Uint8Array((n ?? 0) + room);
    if (n === undefined || !base64.decodeInto(v as string, out.subarray(0, n))) {
      throw fail(`field "${name}" is missing or not unpadded base64`);
    }
    if (length !== undefined && n !== length) throw fail(`field "${name}" is ${n} bytes; expected ${length}`);
    return out;
  };
  /** A ciphertext then its tag, in one buffer. */
  const sealed = (name: string, tagName: string, length?: number): Uint8Array => {
    const out = field(name, length, TAG_BYTES);
    out.set(field(tagName, TAG_BYTES), out.length - TAG_BYTES);
    return out;
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
  const secretSealed = sealed("secret_ciphertext_b64", "secret_mac_b64");
  const dekNonce = field("dek_nonce_b64", NONCE_BYTES);
  const dekSealed = sealed("dek_ciphertext_b64", "dek_mac_b64", KEY_BYTES);
  return {
    algorithm,
    storedKekId: typeof env.kek_id === "string" ? env.kek_id : undefined,
    aad,
    secretNonce,
    secretSealed,
    dekNonce,
    dekSealed,
    fail,
  };
}

/** Records the step at which the open that threw `e` failed. */
function failedAt(e: VaultError, step: OpenStep): VaultError {
  failures.set(e, { step, why: failures.get(e)?.why ?? e.message });
  return e;
}

/** Marks a form failure as another version's or algorithm's envelope when `named` (it names one, not garbage). */
function unsupported(e: VaultError, named: boolean): VaultError {
  return named ? failedAt(e, "unsupported") : e;
}

/** The error for a data key that did not authenticate: names a `kek_id` mismatch when there is one. */
export function dekFailure(env: DecodedEnvelope, ours: string): VaultError {
  const e = env.storedKekId !== undefined && env.storedKekId !== ours
    ? env.fail(
      `it was sealed with kek_id ${JSON.stringify(env.storedKekId)} but this vault's key is ${JSON.stringify(ours)}`,
      "open the vault with the device identity (or KEK) that wrote it, or the one it was re-keyed to since",
    )
    : env.fail("authentication of the data key failed (the object was modified, or another key sealed it)");
  return failedAt(e, "data_key");
}

/** The error for a value that did not authenticate. */
export function valueFailure(env: DecodedEnvelope): VaultError {
  return failedAt(env.fail("authentication of the value failed (the object was modified)"), "value");
}

const AAD_PREFIX = "palyra.vault.v1|";

/**
 * Where an envelope says it belongs, read from its AAD (docs/FORMAT.md §1)
 * without decrypting anything: `undefined` when it is not an envelope or its
 * AAD is not of that form. Keys hold no `|`, so the key is what follows the
 * last one. Nothing here is authenticated until the envelope is opened.
 */
export function envelopePlace(
  bytes: Uint8Array,
): { scope: string; key: string; kekId: string | undefined } | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(fromUtf8(bytes));
  } catch {
    return undefined;
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return undefined;
  const env = doc as Record<string, unknown>;
  const aad = typeof env.aad_b64 === "string" ? fromBase64(env.aad_b64) : undefined;
  if (aad === undefined) return undefined;
  let text: string;
  try {
    text = fromUtf8(aad);
  } catch {
    return undefined;
  }
  const bar = text.lastIndexOf("|");
  if (!text.startsWith(AAD_PREFIX) || bar < AAD_PREFIX.length) return undefined;
  return {
    scope: text.slice(AAD_PREFIX.length, bar),
    key: text.slice(bar + 1),
    kekId: typeof env.kek_id === "string" ? env.kek_id : undefined,
  };
}
