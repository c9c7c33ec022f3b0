/**
 * Reading a value from standard input or a hidden terminal prompt, through
 * `node:process`, which Deno, Bun and Node all provide (raw mode included).
 * Loaded only by the commands that read a value.
 */
import process from "node:process";

/** True when standard input is an interactive terminal. */
export function stdinIsTerminal(): boolean {
  return process.stdin.isTTY === true;
}

/** Whether standard error is a terminal (progress is drawn there, and only there). */
export function stderrIsTerminal(): boolean {
  return process.stderr.isTTY === true;
}

/**
 * Reads standard input to its end, as exact bytes, or up to `maxBytes` + 1
 * bytes: a longer input comes back that long (so the caller can refuse it)
 * and the rest is never read.
 */
export async function readAllStdin(maxBytes = Infinity): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of process.stdin as AsyncIterable<Uint8Array | string>) {
    const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk;
    const take = Math.min(bytes.length, maxBytes + 1 - total);
    // A copy (a Buffer's slice would share the chunk's memory, which is wiped next).
    chunks.push(new Uint8Array(bytes.subarray(0, take)));
    bytes.fill(0);
    total += take;
    if (total > maxBytes) break;
  }
  process.stdin.pause();
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    // Our copies of the input are wiped as soon as they are joined.
    c.fill(0);
    o += c.length;
  }
  return out;
}

/** What the hidden prompt read. */
export type HiddenInput =
  | { readonly kind: "value"; readonly bytes: Uint8Array }
  /** Ctrl-C. */
  | { readonly kind: "cancelled" }
  /** More input followed the end of the line (a multi-line paste without bracketed paste). */
  | { readonly kind: "continued" };

const PASTE_START = [0x1b, 0x5b, 0x32, 0x30, 0x30, 0x7e]; // ESC [ 2 0 0 ~
const PASTE_END = [0x1b, 0x5b, 0x32, 0x30, 0x31, 0x7e]; // ESC [ 2 0 1 ~
// After Enter, input that arrives this soon is the rest of a paste, not a person typing.
const PASTE_GRACE_MS = 60;

/**
 * Prompts on standard error and reads one line from the terminal without
 * echoing it. With bracketed paste (which it turns on), a pasted block may
 * hold line breaks (a PEM key); they are kept as LF. Otherwise input that
 * continues after the end of the line is refused rather than cut, so a
 * multi-line value is never stored as its first line.
 */
export function readHiddenLine(prompt: string): Promise<HiddenInput> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    const typed: number[] = [];
    let pending: number[] = []; // a possible escape sequence split across chunks
    let inPaste = false;
    let done = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = (result: HiddenInput) => {
      if (done) return;
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      typed.fill(0);
      pending.fill(0);
      stdin.off("data", onData);
      try {
        stdin.setRawMode(false);
      } catch {
        // the terminal may already be gone
      }
      stdin.pause();
      process.stderr.write("\x1b[?2004l\n");
      resolve(result);
    };
    const startsWith = (seq: number[], at: number[]) => seq.every((b, i) => i >= at.length || at[i] === b);
    const feed = (b: number): boolean => {
      if (pending.length > 0 || b === 0x1b) {
        pending.push(b);
        const isStart = startsWith(PASTE_START, pending);
        const isEnd = startsWith(PASTE_END, pending);
        if (isStart && pending.length === PASTE_START.length) {
          inPaste = true;
          pending = [];
        } else if (isEnd && pending.length === PASTE_END.length) {
          inPaste = false;
          pending = [];
        } else if (!isStart && !isEnd) {
          // Some other escape sequence (an arrow key): not part of the value.
          pending.fill(0);
          pending = [];
        }
        return false;
      }
      if (inPaste) {
        // Terminals send pasted line breaks as CR: store them as LF.
        if (b === 0x0d) typed.push(0x0a);
        else if (b === 0x0a && typed.at(-1) === 0x0a) return false;
        else typed.push(b);
        return false;
      }
      if (b === 0x03) {
        finish({ kind: "cancelled" });
        return true;
      }
      if (b === 0x0d || b === 0x0a || b === 0x04) return true; // Enter or Ctrl-D
      if (b === 0x7f || b === 0x08) { // Backspace: drop one UTF-8 character
        while (typed.length > 0 && ((typed.pop()! & 0xc0) === 0x80));
        return false;
      }
      typed.push(b);
      return false;
    };
    const onData = (chunk: Uint8Array | string) => {
      const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk;
      try {
        if (timer !== undefined) {
          // Input after the line ended: the line was only the start of it.
          if (bytes.some((b) => b !== 0x0a && b !== 0x0d)) finish({ kind: "continued" });
          return;
        }
        for (let i = 0; i < bytes.length && !done; i++) {
          if (!feed(bytes[i]!)) continue;
          if (done) return;
          const rest = bytes.subarray(i + 1);
          if (rest.some((b) => b !== 0x0a && b !== 0x0d)) return finish({ kind: "continued" });
          timer = setTimeout(() => finish({ kind: "value", bytes: Uint8Array.from(typed) }), PASTE_GRACE_MS);
          return;
        }
      } finally {
        bytes.fill(0);
      }
    };
    try {
      // Echo off before the prompt shows: keys typed as soon as it appears would otherwise be echoed by the
      // terminal (the tmux test, which types at once, failed once on a loaded machine with the old order).
      stdin.setRawMode(true);
      process.stderr.write("\x1b[?2004h" + prompt);
      stdin.on("data", onData);
      stdin.resume();
    } catch (e) {
      reject(e);
    }
  });
}
