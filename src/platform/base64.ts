/**
 * Node's own base64 (`Buffer`) for an envelope's fields, where the runtime
 * has no `Uint8Array.prototype.toBase64` (Node 20 and 22) and the crypto
 * layer's is JavaScript. On Node 20, a 64 KiB value's ciphertext measured
 * 8 µs to encode against 90, and 8 µs to decode and check against 145 (in
 * `npm run bench`, Node's 64 KiB seal went from 1.7–2.3× bare WebCrypto to
 * 1.1×, and its open from 0.9–1.6× to 0.3×).
 *
 * Both make a string of the bytes: the envelope hands this ciphertext, nonces
 * and AAD, never a secret value.
 */

/**
 * Base64 for an envelope's fields, as `encodeEnvelope` and `decodeEnvelope`
 * (`src/crypto/envelope_codec.ts`) take it: the crypto layer's own by
 * default, or the runtime's where that is JavaScript. An implementation may
 * make strings of the bytes, so it is given ciphertext, nonces and AAD only,
 * never a secret value.
 */
export interface Base64Codec {
  /** Writes the unpadded standard base64 of `bytes` into `out` at `at`, as ASCII; returns where it ends. */
  write(bytes: Uint8Array, out: Uint8Array, at: number): number;
  /**
   * Decodes canonical unpadded standard base64 into `out`, which must be
   * exactly as long as the text decodes to; false for anything else.
   */
  decodeInto(text: string, out: Uint8Array): boolean;
}

type BufferClass = typeof import("node:buffer").Buffer;

/** A `Base64Codec` on `Buffer`, as strict as the crypto layer's own. */
export function fromNodeBuffer(Buffer: BufferClass): Base64Codec {
  const view = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length);
  return {
    write(bytes, out, at) {
      const padded = view(bytes).toString("base64");
      let end = padded.length;
      while (end > 0 && padded.charCodeAt(end - 1) === 0x3d) end--; // =
      return at + view(out).write(padded, at, end, "latin1");
    },
    decodeInto(text, out) {
      const target = view(out);
      // Node's decoder skips what is not base64, takes the URL-safe alphabet too and ignores unused trailing bits,
      // so that two strings could give the same bytes: only the text that encoding its bytes gives back is canonical
      // (which also refuses an `out` of another length than the text's). A regular expression checking the alphabet
      // took 500 µs on 87 KB; decoding, encoding again and comparing, 8.
      if (target.write(text, 0, "base64") !== out.length) return false;
      const again = target.toString("base64");
      return again.slice(0, text.length) === text;
    },
  };
}
