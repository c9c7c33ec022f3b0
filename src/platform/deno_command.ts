/**
 * The part of `Deno.Command` the two Deno process modules use (`runner_deno.ts`
 * for keychain tools, `child_deno.ts` for `run`), typed here once so the rest
 * of the code compiles without Deno's own types.
 */

/** A started `Deno.Command`; `stdin` is there when it was piped. */
export interface DenoChild {
  pid: number;
  stdin: WritableStream<Uint8Array>;
  stdout: ReadableStream<Uint8Array>;
  stderr: ReadableStream<Uint8Array>;
  status: Promise<{ code: number; signal: string | null }>;
  kill(signal: string): void;
}

/** `new Deno.Command(cmd, opts).spawn()`. */
export type DenoCommand = new (cmd: string, opts: Record<string, unknown>) => { spawn(): DenoChild };
