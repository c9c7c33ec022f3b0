/**
 * What the runtime does natively that the vault's cipher uses for large
 * values, loaded on the first large value rather than at start-up: its own
 * AES-256-GCM (`aes_gcm.ts`), and its base64 where `Uint8Array` has none
 * (`base64.ts`). Deno gets neither: its WebCrypto is the faster AES-GCM
 * there (its `node:crypto` was no faster on 64 KiB, and took 34 ms to
 * load), and it has `Uint8Array` base64.
 */
import type { AesGcm } from "./aes_gcm.ts";
import type { Base64Codec } from "./base64.ts";
import { runtimeName } from "./runtime.ts";

/** The runtime's own AES-GCM, and its base64 when the crypto layer's would be JavaScript. */
export interface NativeCrypto {
  readonly aesGcm: AesGcm;
  readonly base64?: Base64Codec;
}

let loaded: Promise<NativeCrypto | undefined> | undefined;

// The modules too are loaded with the first large value: a command that never meets one does not load them.
async function load(): Promise<NativeCrypto> {
  const [{ fromNodeCrypto }, nodeCrypto] = await Promise.all([import("./aes_gcm.ts"), import("node:crypto")]);
  const aesGcm = fromNodeCrypto(nodeCrypto);
  if (typeof (Uint8Array.prototype as { toBase64?: unknown }).toBase64 === "function") return { aesGcm };
  const [{ fromNodeBuffer }, { Buffer }] = await Promise.all([import("./base64.ts"), import("node:buffer")]);
  return { aesGcm, base64: fromNodeBuffer(Buffer) };
}

/** The runtime's native helpers, or `undefined` on Deno; loaded once, on the first call. */
export function nativeCrypto(): Promise<NativeCrypto | undefined> {
  loaded ??= runtimeName() === "deno" ? Promise.resolve(undefined) : load();
  return loaded;
}
