/**
 * Replaces secret values in a stream of output with `<redacted>`
 * (`palyra-secrets run --mask`). A value may arrive split across two writes,
 * so the end of a chunk that could be the start of a value is held back
 * until the next chunk shows whether it is.
 */
import { concatBytes, utf8 } from "./crypto/encoding.ts";

const REDACTED = utf8("<redacted>");

/** One output stream's masker. */
export class OutputMasker {
  readonly #values: Uint8Array[];
  #pending: Uint8Array = new Uint8Array(0);

  /** Masks `values` (empty ones are ignored; a longer value wins over one that starts it). */
  constructor(values: readonly Uint8Array[]) {
    this.#values = values.filter((v) => v.length > 0).sort((a, b) => b.length - a.length);
  }

  /** Takes a chunk of output; returns what can be written now. */
  push(chunk: Uint8Array): Uint8Array {
    return this.#scan(this.#pending.length === 0 ? chunk : concatBytes(this.#pending, chunk), false);
  }

  /** What is left at the end of the stream, masked. */
  end(): Uint8Array {
    return this.#scan(this.#pending, true);
  }

  #scan(data: Uint8Array, final: boolean): Uint8Array {
    const out: Uint8Array[] = [];
    let from = 0;
    let i = 0;
    scan: while (i < data.length) {
      const left = data.length - i;
      // Longest first: a longer value the rest could still become wins over a shorter one already whole.
      for (const v of this.#values) {
        if (left >= v.length) {
          if (!startsWith(data, i, v, v.length)) continue;
          out.push(data.subarray(from, i), REDACTED);
          i += v.length;
          from = i;
          continue scan;
        }
        // The rest is the start of this value: wait for the next chunk (unless there is none).
        if (!final && startsWith(data, i, v, left)) break scan;
      }
      i++;
    }
    out.push(data.subarray(from, i));
    this.#pending = data.slice(i);
    return concatBytes(...out);
  }
}

function startsWith(data: Uint8Array, at: number, v: Uint8Array, n: number): boolean {
  for (let k = 0; k < n; k++) if (data[at + k] !== v[k]) return false;
  return true;
}
