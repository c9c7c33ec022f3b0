/** Starting a user's program on Deno, with `Deno.Command`. */
import { type ChildHost, type ForwardedSignal, type RunningChild, StartError } from "./child.ts";
import type { DenoChild, DenoCommand } from "./deno_command.ts";

interface DenoNs {
  Command: DenoCommand;
  errors: { NotFound: new () => Error; NotCapable?: new () => Error; PermissionDenied: new () => Error };
  build: { os: string };
  addSignalListener(signal: string, handler: () => void): void;
  stdout: { isTerminal(): boolean };
  stderr: { isTerminal(): boolean };
  removeSignalListener(signal: string, handler: () => void): void;
}

const D = (globalThis as unknown as { Deno: DenoNs }).Deno;

/** Deno's implementation of `child.ts`. */
export const denoChildHost: ChildHost = {
  // deno-lint-ignore require-await -- a failure to start is a rejection, not a throw
  async start(spec) {
    let child: DenoChild;
    try {
      child = new D.Command(spec.command, {
        args: [...spec.args],
        // Without clearEnv the child inherits this process's environment, which Deno need not be allowed to read.
        env: { ...spec.env },
        stdin: "inherit",
        stdout: spec.pipe.stdout ? "piped" : "inherit",
        stderr: spec.pipe.stderr ? "piped" : "inherit",
      }).spawn();
    } catch (e) {
      if (e instanceof D.errors.NotFound) {
        throw new StartError("not_found", `start "${spec.command}" failed: it is not installed or not on PATH`, {
          cause: e,
        });
      }
      if (
        (D.errors.NotCapable !== undefined && e instanceof D.errors.NotCapable) ||
        e instanceof D.errors.PermissionDenied
      ) {
        throw new StartError(
          "not_permitted",
          `start "${spec.command}" failed: Deno may not start it (run palyra-secrets with --allow-run)`,
          { cause: e },
        );
      }
      throw e;
    }
    let exited = false;
    // Deno reports a child ended by a signal with code 128 + its number already.
    const exit = child.status.then((s) => ((exited = true), s.code));
    const running: RunningChild = {
      pid: child.pid,
      exit,
      kill(signal: ForwardedSignal) {
        if (exited) return;
        try {
          child.kill(signal);
        } catch {
          // it exited meanwhile
        }
      },
      async read(stream, sink) {
        if (!spec.pipe[stream]) return;
        for await (const chunk of child[stream]) await sink(chunk);
      },
    };
    return running;
  },

  isTerminal: (stream) => D[stream].isTerminal(),

  onSignals(signals, handler) {
    const listeners = signals.filter((s) => D.build.os !== "windows" || s === "SIGINT")
      .map((s) => [s, () => handler(s)] as const);
    for (const [s, l] of listeners) D.addSignalListener(s, l);
    return () => {
      for (const [s, l] of listeners) D.removeSignalListener(s, l);
    };
  },
};
