/**
 * `SensitiveBytes`: a holder for secret bytes that zero-fills them on dispose
 * and never shows them when printed, logged or serialised.
 */
import { fromUtf8 } from "./encoding.ts";

const REDACTED = "<redacted>";

/**
 * Secret bytes returned by the vault. Dispose it (or use `using`) as soon as
 * the value has been used: the buffer is then overwritten with zeros.
 * `toString`, `toJSON` and console inspection print `<redacted>`.
 *
 * @example
 * ```ts
 * import { Vault } from "@palyra/vault";
 * const vault = await Vault.open();
 * {
 *   using secret = await vault.getSecret("global", "openai_api_key");
 *   await fetch("https://api.example.com", { headers: { authorization: `Bearer ${secret.text()}` } });
 * } // secret.bytes is all zeros from here on
 * ```
 */
export class SensitiveBytes {
  #bytes: Uint8Array;
  #disposed = false;

  /** Takes ownership of `bytes` (no copy): the caller must not keep using them. */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /** The secret bytes themselves (not a copy). All zeros after dispose. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** Number of bytes. */
  get length(): number {
    return this.#bytes.length;
  }

  /** True once `dispose()` has run. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * The bytes decoded as UTF-8 (strings cannot be zero-filled, so keep their
   * lifetime short). Throws `TypeError` when the bytes are not valid UTF-8.
   */
  text(): string {
    if (this.#disposed) throw new TypeError("read secret failed: the SensitiveBytes was already disposed");
    return fromUtf8(this.#bytes);
  }

  /** Overwrites the bytes with zeros. Safe to call more than once. */
  dispose(): void {
    this.#bytes.fill(0);
    this.#disposed = true;
  }

  /** Calls `dispose()` at the end of a `using` block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Always `<redacted>`. */
  toString(): string {
    return REDACTED;
  }

  /** Always `"<redacted>"`, so `JSON.stringify` never leaks the value. */
  toJSON(): string {
    return REDACTED;
  }

  /** What Node's `util.inspect` (and so `console.log`) prints: `<redacted>`. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return REDACTED;
  }

  /** What Deno's `Deno.inspect` (and so `console.log`) prints: `<redacted>`. */
  [Symbol.for("Deno.customInspect")](): string {
    return REDACTED;
  }

  /** `<redacted>`, so `Object.prototype.toString` names no content either. */
  get [Symbol.toStringTag](): string {
    return REDACTED;
  }
}

/**
 * A copy of `bytes` in its own `ArrayBuffer`. A small `new Uint8Array(n)`
 * keeps its bytes inside the garbage-collected heap, which moves them as it
 * compacts and leaves the old copies behind in freed memory; an
 * `ArrayBuffer`'s store stays where it is, so wiping this one copy wipes the
 * key. The caller wipes `bytes`.
 */
export function pinnedCopy(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(bytes.length));
  out.set(bytes);
  return out;
}
