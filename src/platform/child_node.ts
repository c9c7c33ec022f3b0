/** Starting a user's program on Node and Bun, with `node:child_process`. */
import { spawn } from "node:child_process";
import { constants } from "node:os";
import process from "node:process";
import type { Readable } from "node:stream";
import { type ChildHost, type ForwardedSignal, type RunningChild, StartError } from "./child.ts";

/** Node's and Bun's implementation of `child.ts`. */
export const nodeChildHost: ChildHost = {
  start(spec) {
    return new Promise<RunningChild>((resolve, reject) => {
      const child = spawn(spec.command, [...spec.args], {
        stdio: ["inherit", spec.pipe.stdout ? "pipe" : "inherit", spec.pipe.stderr ? "pipe" : "inherit"],
        env: { ...process.env, ...spec.env },
        shell: false,
        windowsHide: false,
      });
      const exit = new Promise<number>((done) => {
        // "exit", not "close": a background process of the program may keep its output pipes open long after.
        child.on("exit", (code, signal) => {
          done(code ?? 128 + (signal === null ? 0 : constants.signals[signal] ?? 0));
        });
      });
      child.once("error", (e) => {
        const code = (e as { code?: string }).code;
        reject(
          new StartError(
            code === "ENOENT" ? "not_found" : "not_permitted",
            `start "${spec.command}" failed: ${code === "ENOENT" ? "it is not installed or not on PATH" : e.message}`,
            { cause: e },
          ),
        );
      });
      child.once("spawn", () => {
        const streams: Record<"stdout" | "stderr", Readable | null> = { stdout: child.stdout, stderr: child.stderr };
        resolve({
          pid: child.pid!,
          exit,
          kill(signal: ForwardedSignal) {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          },
          async read(stream, sink) {
            const s = streams[stream];
            if (s === null) return;
            for await (const chunk of s) await sink(chunk as Uint8Array);
          },
        });
      });
    });
  },

  isTerminal: (stream) => process[stream].isTTY === true,

  onSignals(signals, handler) {
    const listeners = signals.map((s) => [s, () => handler(s)] as const);
    for (const [s, l] of listeners) process.on(s, l);
    return () => {
      for (const [s, l] of listeners) process.off(s, l);
    };
  },
};
