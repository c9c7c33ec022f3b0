/**
 * Standard streams and the terminal, through `node:process`, which Deno, Bun
 * and Node all provide (raw mode included).
 */
import process from "node:process";
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** True when standard input is an interactive terminal. */
export function stdinIsTerminal(): boolean {
  return process.stdin.isTTY === true;
}

/** Reads standard input to its end, as exact bytes. */
export async function readAllStdin(): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of process.stdin as AsyncIterable<Uint8Array | string>) {
    const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk;
    chunks.push(bytes);
    total += bytes.length;
  }
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

/**
 * Prompts on standard error and reads one line from the terminal without
 * echoing it. Returns `undefined` when the user presses Ctrl-C.
 */
export function readHiddenLine(prompt: string): Promise<Uint8Array | undefined> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    const typed: number[] = [];
    const finish = (result: Uint8Array | undefined) => {
      stdin.off("data", onData);
      try {
        stdin.setRawMode(false);
      } catch {
        // the terminal may already be gone
      }
      stdin.pause();
      process.stderr.write("\n");
      resolve(result);
    };
    const onData = (chunk: Uint8Array | string) => {
      const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk;
      for (const b of bytes) {
        if (b === 0x03) { // Ctrl-C: abort, keep nothing
          typed.fill(0);
          return finish(undefined);
        }
        if (b === 0x0d || b === 0x0a || b === 0x04) { // Enter or Ctrl-D
          const out = Uint8Array.from(typed);
          typed.fill(0);
          return finish(out);
        }
        if (b === 0x7f || b === 0x08) { // Backspace: drop one UTF-8 character
          while (typed.length > 0 && ((typed.pop()! & 0xc0) === 0x80));
          continue;
        }
        typed.push(b);
      }
      if (typeof chunk !== "string") chunk.fill(0);
    };
    try {
      process.stderr.write(prompt);
      stdin.setRawMode(true);
      stdin.on("data", onData);
      stdin.resume();
    } catch (e) {
      reject(e);
    }
  });
}

/** Writes to standard output and resolves once the bytes are handed to the OS. */
export function writeStdout(data: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(data, (e) => (e ? reject(e) : resolve())));
}

/** Writes to standard error and resolves once the bytes are handed to the OS. */
export function writeStderr(data: string): Promise<void> {
  return new Promise((resolve, reject) => process.stderr.write(data, (e) => (e ? reject(e) : resolve())));
}

/** Ends the process with `code`. */
export function exitProcess(code: number): never {
  process.exit(code);
}

/** The command-line arguments after the program name. */
export function programArgs(): string[] {
  return process.argv.slice(2);
}

/**
 * Whether the module with this `import.meta` is the program being run:
 * `import.meta.main` where the runtime has it (Deno, Bun, compiled
 * binaries), else a comparison with the script path (Node 20).
 */
export function isEntryPoint(meta: ImportMeta): boolean {
  const main = (meta as ImportMeta & { main?: boolean }).main;
  if (typeof main === "boolean") return main;
  const script = process.argv[1];
  if (script === undefined || !meta.url.startsWith("file:")) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(meta.url));
  } catch {
    return false;
  }
}
