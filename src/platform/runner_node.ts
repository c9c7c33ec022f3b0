/** Starting a process on Node, with `node:child_process`; Bun's runner shares its process-group kill. */
import { spawn as nodeSpawn } from "node:child_process";
import { constants as osConstants } from "node:os";
import process from "node:process";
import { childEnv, type CommandResult, type CommandRunner } from "./subprocess.ts";
import { concat, decoder, notFound, timeoutOf, withTimeout } from "./runner_common.ts";

/** A child gets its own process group where that is possible, so a timeout kills what it started too. */
export const ownGroup = (): boolean => process.platform !== "win32";

/** SIGKILL to the process group `pid` leads (Node and Bun may signal any process of the user). */
export function killGroup(pid: number | undefined): boolean {
  if (pid === undefined || !ownGroup()) return false;
  try {
    process.kill(-pid, "SIGKILL");
    return true;
  } catch {
    return false;
  }
}

/** Runs a command with `node:child_process`. */
export const runNode: CommandRunner = async (command, args, options = {}) => {
  const ms = timeoutOf(options);
  const child = nodeSpawn(command, [...args], {
    stdio: ["pipe", "pipe", "pipe"],
    env: childEnv(options.env),
    shell: false,
    // A new session and process group (Unix), so a timeout can kill what the child started.
    detached: ownGroup(),
    windowsHide: true,
  });
  const work = new Promise<CommandResult>((resolve, reject) => {
    const out: Uint8Array[] = [];
    const err: Uint8Array[] = [];
    child.stdout.on("data", (c: Uint8Array) => out.push(c));
    child.stderr.on("data", (c: Uint8Array) => err.push(c));
    child.on("error", (e) => {
      reject((e as { code?: string }).code === "ENOENT" ? notFound(command, e) : e);
    });
    child.on("close", (code, signal) => {
      const signo = signal === null ? 0 : 128 + (osConstants.signals[signal] ?? 9);
      resolve({ code: code ?? signo, stdout: concat(out), stderr: decoder.decode(concat(err)) });
    });
    child.stdin.on("error", () => {}); // the child closed its stdin early
    child.stdin.end(options.stdin ?? new Uint8Array(0));
  });
  return await withTimeout(command, ms, work, () => {
    killGroup(child.pid);
    child.kill("SIGKILL");
    child.stdout.destroy();
    child.stderr.destroy();
  });
};
