/**
 * What the runtime does natively that the vault's cipher uses for large
 * values, loaded on the first large value rather than at start-up: its own
 * AES-256-GCM (`aes_gcm.ts`), and its base64 where `Uint8Array` has none
 * (`base64.ts`). Deno gets neither: its WebCrypto is the faster AES-GCM
 * there, it has `Uint8Array` base64, and loading its Node layer costs
 * start-up time.
 */
import type { Base64Codec } from "../crypto/encoding.ts";
import { type AesGcm, fromNodeCrypto } from "./aes_gcm.ts";
import { fromNodeBuffer } from "./base64.ts";
import { runtimeName } from "./runtime.ts";

/** The runtime's own AES-GCM, and its base64 when the crypto layer's would be JavaScript. */
export interface NativeCrypto {
  readonly aesGcm: AesGcm;
  readonly base64?: Base64Codec;
}

let loaded: Promise<NativeCrypto | undefined> | undefined;

async function load(): Promise<NativeCrypto> {
  const aesGcm = fromNodeCrypto(await import("node:crypto"));
  if (typeof (Uint8Array.prototype as { toBase64?: unknown }).toBase64 === "function") return { aesGcm };
  return { aesGcm, base64: fromNodeBuffer((await import("node:buffer")).Buffer) };
}

/** The runtime's native helpers, or `undefined` on Deno; loaded once, on the first call. */
export function nativeCrypto(): Promise<NativeCrypto | undefined> {
  loaded ??= runtimeName() === "deno" ? Promise.resolve(undefined) : load();
  return loaded;
}
