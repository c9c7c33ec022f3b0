/**
 * The vault's cipher (docs/FORMAT.md §3), asynchronous: the same envelopes as
 * `envelope.ts` writes and reads (a test opens each one's envelopes with the
 * other), with AES-GCM run by one of two engines for the KEK and small values:
 *
 * - `noble` (a library vault's default): `@noble/ciphers`, in memory this
 *   library wipes; loading its AES builds lookup tables (about 20 ms), once
 *   per process.
 * - `webcrypto` (the CLI's): the runtime's WebCrypto, which starts at once.
 *   The KEK then lives in one non-extractable key object per cipher, made on
 *   first use; the runtime keeps its own copy of the key there, out of reach
 *   of JavaScript and not wiped when freed (README, "Threat model"), which a
 *   process that ends with its command can accept.
 *
 * A large AES-GCM value always goes to the runtime, many times faster there
 * than JavaScript, under its one-use data key: to the runtime's own AES-GCM
 * when the caller hands one in (`node:crypto` on Node and Bun, from
 * `src/platform/native_crypto.ts`), else to WebCrypto; its envelope's base64
 * goes to the runtime's own when the caller hands that in too (Node's
 * `Buffer`). ChaCha20-Poly1305 (Palyra's envelopes) is noble's only, loaded
 * on first use.
 */
import type { NativeCrypto } from "../platform/native_crypto.ts";
import { base64Length } from "./encoding.ts";
import { kekId } from "./kdf.ts";
import {
  checkKek,
  type DecodedEnvelope,
  decodeEnvelope,
  dekFailure,
  encodeEnvelope,
  type EnvelopeAlgorithm,
  sealParts,
  TAG_BYTES,
  valueFailure,
} from "./envelope_codec.ts";

type Sync = typeof import("./envelope.ts");

/** From this many bytes on, an AES-GCM value is large: it goes to the runtime whatever the engine (`npm run bench`). */
export const LARGE_VALUE_BYTES = 4096;

/**
 * Where a vault's KEK, and values under 4 KiB, are sealed and opened
 * (`VaultOptions.kekEngine`): `@noble/ciphers`, or the runtime's WebCrypto.
 *
 * @example
 * ```ts
 * import { type CipherEngine, Vault } from "@palyra/vault";
 * const kekEngine: CipherEngine = "webcrypto"; // a short-lived process
 * const vault = await Vault.open({ kekEngine });
 * ```
 */
export type CipherEngine = "noble" | "webcrypto";

let sync: Sync | undefined;
let loading: Promise<Sync> | undefined;

/** The synchronous cipher module, loaded once per process, when first needed. */
async function loadSync(): Promise<Sync> {
  loading ??= import("./envelope.ts");
  return sync ??= await loading;
}

const subtle = (): SubtleCrypto => globalThis.crypto.subtle;

/** An AES-256-GCM key object for `raw`, made from a copy of it that is wiped at once. */
async function aesKey(raw: Uint8Array): Promise<CryptoKey> {
  // WebCrypto takes ArrayBuffer-backed views only, and keeps its own copy: hand it one we can wipe.
  const copy = new Uint8Array(raw);
  try {
    return await subtle().importKey("raw", copy, "AES-GCM", false, ["encrypt", "decrypt"]);
  } finally {
    copy.fill(0);
  }
}

async function webGcm(
  key: CryptoKey,
  nonce: Uint8Array,
  aad: Uint8Array,
  data: Uint8Array,
  op: "encrypt" | "decrypt",
): Promise<Uint8Array> {
  const params = {
    name: "AES-GCM",
    iv: nonce as Uint8Array<ArrayBuffer>,
    additionalData: aad as Uint8Array<ArrayBuffer>,
    tagLength: 128,
  };
  const input = data as Uint8Array<ArrayBuffer>;
  return new Uint8Array(
    op === "encrypt" ? await subtle().encrypt(params, key, input) : await subtle().decrypt(params, key, input),
  );
}

/**
 * Seals and opens envelopes under one KEK, which it holds by reference: the
 * owner wipes it, and drops the cipher with it.
 */
export class EnvelopeCipher {
  readonly #kek: Uint8Array;
  readonly #id: string;
  readonly #engine: CipherEngine;
  readonly #native: (() => Promise<NativeCrypto | undefined>) | undefined;
  #kekKey: Promise<CryptoKey> | undefined;

  /**
   * `id` is the KEK's `kek_id`, computed once here rather than on every failed
   * open. `native` gives the runtime's own AES-GCM for large values, when it
   * has one (WebCrypto otherwise), and perhaps its base64 for their envelopes.
   */
  constructor(
    kek: Uint8Array,
    engine: CipherEngine,
    id: string = kekId(kek),
    native?: () => Promise<NativeCrypto | undefined>,
  ) {
    checkKek(kek);
    this.#kek = kek;
    this.#id = id;
    this.#engine = engine;
    this.#native = native;
  }

  /** The KEK's `kek_id` (docs/FORMAT.md §2). */
  get kekId(): string {
    return this.#id;
  }

  /** The runtime's native helpers, asked for only for a large value (they may load a module). */
  async #nativeFor(large: boolean): Promise<NativeCrypto | undefined> {
    return large ? await this.#native?.() : undefined;
  }

  /** The synchronous module for this envelope; `undefined` when its AES-GCM goes to WebCrypto. */
  async #noble(algorithm: EnvelopeAlgorithm): Promise<Sync | undefined> {
    return this.#engine === "noble" || algorithm === "chacha20_poly1305" ? sync ?? await loadSync() : undefined;
  }

  #kekObject(): Promise<CryptoKey> {
    this.#kekKey ??= aesKey(this.#kek);
    return this.#kekKey;
  }

  /**
   * Seals `value` for `scope`/`key`. `id` is the `kek_id` the envelope names
   * (`null` leaves it out, as Palyra's daemon does).
   */
  async seal(
    scope: string,
    key: string,
    value: Uint8Array,
    algorithm: EnvelopeAlgorithm = "aes_256_gcm",
    id: string | null = this.#id,
  ): Promise<Uint8Array> {
    checkKek(this.#kek);
    const large = algorithm === "aes_256_gcm" && value.length >= LARGE_VALUE_BYTES;
    const noble = await this.#noble(algorithm);
    if (noble !== undefined && !large) return noble.sealEnvelope(this.#kek, scope, key, value, algorithm, id);
    // From here the value is AES-GCM for the runtime; the data key is wrapped by the engine's KEK.
    const parts = sealParts(scope, key);
    try {
      const native = await this.#nativeFor(large);
      const valueKey = native === undefined ? await aesKey(parts.dek) : undefined;
      // With the runtime's own AES-GCM at hand, the `webcrypto` engine's KEK wraps the data key there too, as #unwrap
      // unwraps it.
      const kekKey = noble === undefined && native === undefined ? await this.#kekObject() : undefined;
      // Where there is no runtime AES-GCM (Deno), the WebCrypto calls are started before the work done here, to run on
      // their own thread meanwhile: the value's while noble wraps the data key.
      const secretLater = valueKey && webGcm(valueKey, parts.secretNonce, parts.aad, value, "encrypt");
      const wrappedLater = kekKey && webGcm(kekKey, parts.dekNonce, parts.aad, parts.dek, "encrypt");
      // Awaited below; should the work here throw first, their failures must not go unhandled.
      secretLater?.catch(() => {});
      wrappedLater?.catch(() => {});
      const secret = native?.aesGcm.seal(parts.dek, parts.secretNonce, parts.aad, value);
      const wrapped = noble?.AEADS[algorithm](this.#kek, parts.dekNonce, parts.aad).encrypt(parts.dek) ??
        native?.aesGcm.seal(this.#kek, parts.dekNonce, parts.aad, parts.dek);
      return encodeEnvelope(
        algorithm,
        id,
        parts,
        secret ?? await secretLater!,
        wrapped ?? await wrappedLater!,
        native?.base64,
      );
    } finally {
      parts.dek.fill(0);
    }
  }

  /**
   * Opens an envelope sealed for `scope`/`key`: the value in a new buffer the
   * caller owns, or a `crypto` `VaultError` and no bytes.
   */
  async open(scope: string, key: string, bytes: Uint8Array): Promise<Uint8Array> {
    checkKek(this.#kek);
    // An envelope holds its value's base64, and more: a shorter one cannot hold a large value.
    const native = await this.#nativeFor(bytes.length >= base64Length(LARGE_VALUE_BYTES));
    const env = decodeEnvelope(scope, key, bytes, native?.base64);
    const large = env.algorithm === "aes_256_gcm" && env.secretSealed.length - TAG_BYTES >= LARGE_VALUE_BYTES;
    const noble = await this.#noble(env.algorithm);
    const dek = await this.#unwrap(env, noble, large ? native : undefined);
    try {
      if (noble !== undefined && !large) {
        return noble.AEADS[env.algorithm](dek, env.secretNonce, env.aad).decrypt(env.secretSealed);
      }
      if (large && native !== undefined) return native.aesGcm.open(dek, env.secretNonce, env.aad, env.secretSealed);
      return await webGcm(await aesKey(dek), env.secretNonce, env.aad, env.secretSealed, "decrypt");
    } catch {
      throw valueFailure(env);
    } finally {
      dek.fill(0);
    }
  }

  /**
   * The envelope's data key, unwrapped with the KEK; the caller wipes it. A
   * large AES-GCM value's is unwrapped by the runtime's own AES-GCM when it
   * has one and the engine is `webcrypto`: the runtime already holds that
   * KEK (README, "Threat model"), and a WebCrypto call would wait on a thread
   * pool before the value's decryption can start.
   */
  async #unwrap(env: DecodedEnvelope, noble: Sync | undefined, native: NativeCrypto | undefined): Promise<Uint8Array> {
    try {
      if (noble !== undefined) {
        return noble.AEADS[env.algorithm](this.#kek, env.dekNonce, env.aad).decrypt(env.dekSealed);
      }
      return native !== undefined
        ? native.aesGcm.open(this.#kek, env.dekNonce, env.aad, env.dekSealed)
        : await webGcm(await this.#kekObject(), env.dekNonce, env.aad, env.dekSealed, "decrypt");
    } catch {
      throw dekFailure(env, this.#id);
    }
  }
}
