/** Starting a process on Deno, with `Deno.Command`. */
import { childEnv, type CommandRunner } from "./subprocess.ts";
import type { DenoChild, DenoCommand } from "./deno_command.ts";
import { decoder, notFound, readAll, timeoutOf, withTimeout } from "./runner_common.ts";

interface DenoNs {
  Command: DenoCommand;
  errors: { NotFound: new () => Error };
  build: { os: string };
  kill(pid: number, signal: string): void;
  permissions: { querySync(d: { name: "run"; command?: string }): { state: string } };
}
/**
 * Deno: `Deno.kill` of the group when all of `--allow-run` is granted, else
 * the `kill` command when `--allow-run=kill` is (the README's flags), else
 * only the child itself (which needs no permission). Never prompts.
 */
function killDenoGroup(D: DenoNs, pid: number): void {
  if (D.build.os === "windows") return;
  try {
    if (D.permissions.querySync({ name: "run" }).state === "granted") {
      D.kill(-pid, "SIGKILL");
    } else if (D.permissions.querySync({ name: "run", command: "kill" }).state === "granted") {
      const k = new D.Command("kill", {
        args: ["-s", "KILL", "--", `-${pid}`],
        stdin: "null",
        stdout: "null",
        stderr: "null",
        env: childEnv(),
        clearEnv: true,
      }).spawn();
      k.status.catch(() => {});
    }
  } catch {
    // the group is gone, or this is not permitted: the child itself is killed below
  }
}

/** Runs a command with `Deno.Command`. */
export const runDeno: CommandRunner = async (command, args, options = {}) => {
  const D = (globalThis as unknown as { Deno: DenoNs }).Deno;
  const ms = timeoutOf(options);
  let child: DenoChild;
  try {
    child = new D.Command(command, {
      args: [...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: childEnv(options.env),
      clearEnv: true,
      // A new session and process group (Unix), so a timeout can kill what the child started.
      detached: D.build.os !== "windows",
    }).spawn();
  } catch (e) {
    if (e instanceof D.errors.NotFound) throw notFound(command, e);
    throw e;
  }
  const out = child.stdout.getReader();
  const err = child.stderr.getReader();
  const writeStdin = async () => {
    const writer = child.stdin.getWriter();
    try {
      if (options.stdin) await writer.write(options.stdin);
      await writer.close();
    } catch {
      // the child closed its stdin early; its exit status tells the rest
    }
  };
  // Read while writing: a child that answers before it has read everything must not block on a full pipe.
  const work = Promise.all([readAll(out), readAll(err), child.status, writeStdin()]).then(
    ([stdout, stderr, status]) => ({ code: status.code, stdout, stderr: decoder.decode(stderr) }),
  );
  return await withTimeout(command, ms, work, () => {
    killDenoGroup(D, child.pid);
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    out.cancel().catch(() => {});
    err.cancel().catch(() => {});
  });
};
