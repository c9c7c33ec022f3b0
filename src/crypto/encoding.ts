/**
 * Byte encodings used by the on-disk format: UTF-8, lowercase hex and standard
 * base64 without padding. Decoding is strict: a non-canonical base64 string
 * (padding, stray characters, non-zero unused trailing bits) is rejected, so
 * that two different strings never decode to the same bytes; the envelope
 * relies on that to reject every single-bit change.
 */

import type { Base64Codec } from "../platform/base64.ts";

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const looseDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** UTF-8 bytes of a string. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Decodes UTF-8, throwing `TypeError` on malformed input. */
export function fromUtf8(bytes: Uint8Array): string {
  return strictDecoder.decode(bytes);
}

/**
 * Decodes UTF-8, a malformed sequence becoming U+FFFD. For a fast first
 * reading of text in which a check then accepts only ASCII (so never U+FFFD),
 * with `fromUtf8` for anything it refuses: Deno's strict decoder costs 5–9
 * times the lenient one (50 µs for a 64 KiB value's envelope).
 */
export function fromUtf8Loose(bytes: Uint8Array): string {
  return looseDecoder.decode(bytes);
}

/**
 * Parses UTF-8 JSON that must be an object; `fail` makes the error for text
 * that is not UTF-8 JSON, or JSON that is not an object.
 */
export function parseJsonObject(
  bytes: Uint8Array,
  fail: (why: string, cause?: unknown) => Error,
): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(fromUtf8(bytes));
  } catch (e) {
    throw fail("not valid UTF-8 JSON", e);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw fail("not a JSON object");
  return doc as Record<string, unknown>;
}

/** Whether two byte arrays hold the same bytes; the time taken does not depend on where they differ. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Concatenates byte arrays into a new one. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const HEX = "0123456789abcdef";

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]! >> 4]! + HEX[bytes[i]! & 15]!;
  return s;
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < B64.length; i++) B64_INDEX[B64.charCodeAt(i)] = i;

/** Standard base64 without `=` padding, in portable code (the fallback, and the reference in tests). */
export function toBase64Portable(bytes: Uint8Array): string {
  let s = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    s += B64[n >> 18]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + B64[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    s += B64[n >> 18]! + B64[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    s += B64[n >> 18]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]!;
  }
  return s;
}

const B64_CODES = utf8(B64);

/** The length of the unpadded base64 of `n` bytes. */
export function base64Length(n: number): number {
  return Math.floor(n / 3) * 4 + [0, 2, 3][n % 3]!;
}

/**
 * Writes the standard unpadded base64 of `bytes` into `out` at `at`, as
 * ASCII, in JavaScript that makes no string; returns where it ends. `out`
 * must have `base64Length(bytes.length)` bytes of room there.
 */
export function writeBase64Bytes(bytes: Uint8Array, out: Uint8Array, at: number): number {
  const n = bytes.length;
  const full = n - (n % 3);
  let o = at;
  for (let i = 0; i < full; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[o] = B64_CODES[v >>> 18]!;
    out[o + 1] = B64_CODES[(v >>> 12) & 63]!;
    out[o + 2] = B64_CODES[(v >>> 6) & 63]!;
    out[o + 3] = B64_CODES[v & 63]!;
    o += 4;
  }
  if (n > full) {
    const v = (bytes[full]! << 16) | (n - full === 2 ? bytes[full + 1]! << 8 : 0);
    out[o++] = B64_CODES[v >>> 18]!;
    out[o++] = B64_CODES[(v >>> 12) & 63]!;
    if (n - full === 2) out[o++] = B64_CODES[(v >>> 6) & 63]!;
  }
  return o;
}

/**
 * Standard base64 with `=` padding, as ASCII bytes rather than a string: the
 * caller can zero-fill the result, which it cannot do to a string, so a value
 * encoded this way (an export document) leaves no copy in the heap.
 */
export function toBase64PaddedBytes(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(bytes.length / 3) * 4);
  out.fill(0x3d, writeBase64Bytes(bytes, out, 0));
  return out;
}

/** Writes the UTF-8 of `text` into `out` at `at`; returns where it ends. `out` must have room. */
export function writeUtf8(text: string, out: Uint8Array, at: number): number {
  return at + encoder.encodeInto(text, out.subarray(at)).written;
}

/** Decodes canonical unpadded base64 in portable code (the fallback, and the reference in tests). */
export function fromBase64Portable(text: string): Uint8Array | undefined {
  const len = text.length;
  if (len % 4 === 1) return undefined;
  const out = new Uint8Array(Math.floor((len * 3) / 4));
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? B64_INDEX[c]! : -1;
    if (v < 0) return undefined;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  // Leftover bits must be zero, or two strings would map to the same bytes.
  if (bits > 0 && (acc & ((1 << bits) - 1)) !== 0) return undefined;
  return out;
}

// The runtime's own base64 (`Uint8Array.prototype.toBase64` and `setFromBase64`: Deno and Bun have them, Node 20
// does not), many times faster on a 64 KiB envelope than a loop in JavaScript.
type NativeBase64 = {
  toBase64?: (this: Uint8Array, o: { omitPadding: boolean }) => string;
  setFromBase64?: (this: Uint8Array, text: string) => { read: number; written: number };
};
const nativeTo = (Uint8Array.prototype as NativeBase64).toBase64;
const nativeSet = (Uint8Array.prototype as NativeBase64).setFromBase64;

// Where the runtime has no base64 of its own (Node 20 and 22), the encoder writes ASCII bytes in place and lets
// TextDecoder make the string (a loop building the string character by character costs 15 times more on 64 KiB),
// and the decoder reads four characters at a time.
const ASCII = new TextDecoder();

/** Standard base64 without `=` padding, without the runtime's own base64 (Node 20). */
export function toBase64Fallback(bytes: Uint8Array): string {
  const out = new Uint8Array(base64Length(bytes.length));
  writeBase64Bytes(bytes, out, 0);
  return ASCII.decode(out);
}

/** A base64 character's six bits; -1 for anything else. */
const sextet = (c: number): number => (c < 128 ? B64_INDEX[c]! : -1);

/**
 * Decodes canonical unpadded standard base64, without the runtime's own base64
 * (Node 20).
 */
export function fromBase64Fallback(text: string): Uint8Array | undefined {
  return decodedBy(fallbackInto, text);
}

/**
 * `fromBase64Into` in JavaScript, a group of four characters at a time: on
 * Node 20, 64 KiB took 145 µs, against 190 for atob, copying its string out
 * and encoding the bytes back to compare (atob skips white space and ignores
 * unused bits). `out` has the length the text's length gives.
 */
function fallbackInto(text: string, out: Uint8Array): boolean {
  const len = text.length;
  const rest = len % 4;
  const full = len - rest;
  let o = 0;
  for (let i = 0; i < full; i += 4) {
    const a = sextet(text.charCodeAt(i));
    const b = sextet(text.charCodeAt(i + 1));
    const c = sextet(text.charCodeAt(i + 2));
    const d = sextet(text.charCodeAt(i + 3));
    if ((a | b | c | d) < 0) return false;
    const v = (a << 18) | (b << 12) | (c << 6) | d;
    out[o] = v >>> 16;
    out[o + 1] = (v >>> 8) & 255;
    out[o + 2] = v & 255;
    o += 3;
  }
  if (rest > 0) {
    const a = sextet(text.charCodeAt(full));
    const b = sextet(text.charCodeAt(full + 1));
    const c = rest === 3 ? sextet(text.charCodeAt(full + 2)) : 0;
    if ((a | b | c) < 0) return false;
    // The last character's unused low bits must be zero, or two strings would give the same bytes.
    if ((rest === 2 ? b & 15 : c & 3) !== 0) return false;
    const v = (a << 18) | (b << 12) | (c << 6);
    out[o] = v >>> 16;
    if (rest === 3) out[o + 1] = (v >>> 8) & 255;
  }
  return true;
}

/**
 * Writes the standard unpadded base64 of `bytes` into `out` at `at`, as
 * ASCII; returns where it ends. Through the runtime's base64 where it has one
 * (so a string is made on the way: not for secret bytes), else as
 * `writeBase64Bytes`. Writing an 87 KB envelope in place saved Node 20 about
 * a third of encoding it to a string and then to UTF-8.
 */
export function writeBase64(bytes: Uint8Array, out: Uint8Array, at: number): number {
  return nativeTo === undefined
    ? writeBase64Bytes(bytes, out, at)
    : writeUtf8(nativeTo.call(bytes, { omitPadding: true }), out, at);
}

/** Standard base64 without `=` padding. */
export function toBase64(bytes: Uint8Array): string {
  return nativeTo === undefined ? toBase64Fallback(bytes) : nativeTo.call(bytes, { omitPadding: true });
}

/** How many bytes unpadded base64 of `length` characters decodes to; `undefined` for a length it never has (4n+1). */
export function base64Bytes(length: number): number | undefined {
  return length % 4 === 1 ? undefined : Math.floor((length * 3) / 4);
}

/**
 * Decodes canonical unpadded standard base64 into `out`, which must be
 * exactly `base64Bytes(text.length)` long: so a value can be decoded straight
 * into the buffer it goes in. False for anything else (padding, other
 * alphabets, white space, a length of 4n+1, unused trailing bits that are not
 * zero, another length of `out`), with `out` then partly written.
 */
export function fromBase64Into(text: string, out: Uint8Array): boolean {
  const len = text.length;
  if (out.length !== base64Bytes(len)) return false;
  if (nativeSet === undefined) return fallbackInto(text, out);
  let done;
  try {
    done = nativeSet.call(out, text);
  } catch {
    return false;
  }
  // The built-in skips white space, accepts padding and ignores unused trailing bits, so that two strings could
  // give the same bytes. Without any of them a string of length L fills floor(3L/4) bytes, and with one it fills
  // fewer (L is not 4n+1, checked above); the unused bits are the low bits of the last character.
  if (done.read !== len || done.written !== out.length) return false;
  const unused = len % 4 === 2 ? 15 : len % 4 === 3 ? 3 : 0;
  return unused === 0 || (B64_INDEX[text.charCodeAt(len - 1)]! & unused) === 0;
}

/**
 * The base64 of this module as a `Base64Codec` (what `encodeEnvelope` and
 * `decodeEnvelope` take): the runtime's `Uint8Array` base64 where it has one,
 * else JavaScript.
 */
export const BASE64: Base64Codec = { write: writeBase64, decodeInto: fromBase64Into };

/**
 * Decodes canonical unpadded standard base64. Returns `undefined` for anything
 * else (padding, other alphabets, white space, a length of 4n+1, or unused
 * trailing bits that are not zero).
 */
export function fromBase64(text: string): Uint8Array | undefined {
  return decodedBy(fromBase64Into, text);
}

/** `text` decoded by `into` into a new buffer of its length; `undefined` when `into` refuses it. */
function decodedBy(into: (text: string, out: Uint8Array) => boolean, text: string): Uint8Array | undefined {
  const n = base64Bytes(text.length);
  if (n === undefined) return undefined;
  const out = new Uint8Array(n);
  return into(text, out) ? out : undefined;
}

/** Decodes canonical padded base64 (what `exportVault` and Python's `b64encode` write). */
export function fromPaddedBase64(text: string): Uint8Array | undefined {
  let end = text.length;
  while (end > 0 && text.length - end < 2 && text.charCodeAt(end - 1) === 0x3d) end--;
  const core = text.slice(0, end);
  if ((text.length - end) !== (4 - (core.length % 4)) % 4) return undefined;
  return fromBase64(core);
}
