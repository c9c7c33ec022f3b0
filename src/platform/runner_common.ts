/**
 * What the three process runners share: the errors, reading a pipe to its
 * end, and a timeout that settles at once and kills the child.
 */
import { VaultError } from "../errors.ts";

/** How long a command may take unless the caller says otherwise. */
const DEFAULT_TIMEOUT_MS = 10_000;

/** The timeout of `options`, or the default. */
export function timeoutOf(options: { timeoutMs?: number }): number {
  return options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
}

/** Decodes a child's stderr. */
export const decoder: TextDecoder = new TextDecoder();

/** The error for a command that is not installed. */
export function notFound(command: string, cause: unknown): VaultError {
  return new VaultError("backend_unavailable", `run "${command}" failed: it is not installed or not on PATH`, {
    cause,
    hint: `install "${command}", or choose the encrypted_file backend (--backend encrypted_file)`,
  });
}

/** The error for a command that did not answer in time. */
export function timedOut(command: string, ms: number): VaultError {
  return new VaultError(
    "io",
    `run "${command}" failed: timed out after ${ms} ms with no answer, so it was killed`,
    { hint: "the machine may be overloaded, or the program waits for something (a locked keychain, a prompt); retry" },
  );
}

/** Joins chunks into one buffer. */
export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Reads a stream to its end; a cancelled reader ends it early. */
export async function readAll(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return concat(chunks);
    chunks.push(value);
  }
}

/**
 * Waits for `work`, or rejects with the timeout error when `ms` pass first:
 * then `onTimeout` kills the child and lets go of its pipes. The result never
 * waits for the pipes to close, which a grandchild may hold open for long
 * after the child is gone.
 */
export function withTimeout<T>(command: string, ms: number, work: Promise<T>, onTimeout: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      try {
        onTimeout();
      } catch {
        // best effort: the caller gets the timeout either way
      }
      reject(timedOut(command, ms));
    }, ms);
    work.then(
      (v) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
