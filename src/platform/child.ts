/**
 * Starting the program a user asked to run (`palyra-secrets run`): its
 * standard input and, unless piped for masking, its output are the
 * terminal's; its environment is this process's plus the variables given;
 * the signals a user sends to this process are passed on to it. One
 * implementation per runtime (`child_deno.ts`, `child_node.ts` for Node and
 * Bun), loaded the first time a program is started.
 */

/** The signals passed on to a running child. */
export type ForwardedSignal = "SIGINT" | "SIGTERM" | "SIGHUP";

/** What to start. */
export interface ChildSpec {
  readonly command: string;
  readonly args: readonly string[];
  /** Added to (or replacing in) the environment this process has. */
  readonly env: Readonly<Record<string, string>>;
  /** Pipe the child's stdout or stderr to this process instead of giving it the terminal's. */
  readonly pipe: { readonly stdout: boolean; readonly stderr: boolean };
}

/** A started child. */
export interface RunningChild {
  readonly pid: number;
  /** Sends a signal; a child that has already exited is left alone. */
  kill(signal: ForwardedSignal): void;
  /** Calls `sink` with each chunk of a piped stream; resolves at its end (at once for one not piped). */
  read(stream: "stdout" | "stderr", sink: (chunk: Uint8Array) => Promise<void>): Promise<void>;
  /** The exit code, or 128 + the signal's number when a signal ended it. */
  readonly exit: Promise<number>;
}

/** Why a program could not be started. */
export type StartFailure = "not_found" | "not_permitted";

/** A runtime's implementation. */
export interface ChildHost {
  /** Starts the program; rejects with `{ failure }` when it cannot be started. */
  start(spec: ChildSpec): Promise<RunningChild>;
  /** Whether this process's stdout or stderr is a terminal. */
  isTerminal(stream: "stdout" | "stderr"): boolean;
  /** Calls `handler` for each of the signals until the returned function is called. */
  onSignals(signals: readonly ForwardedSignal[], handler: (signal: ForwardedSignal) => void): () => void;
}

/** The error a `start` rejects with when the program cannot be started. */
export class StartError extends Error {
  constructor(readonly failure: StartFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

let host: Promise<ChildHost> | undefined;

/** This runtime's implementation. */
export function childHost(): Promise<ChildHost> {
  return host ??= "Deno" in globalThis
    ? import("./child_deno.ts").then((m) => m.denoChildHost)
    : import("./child_node.ts").then((m) => m.nodeChildHost);
}
