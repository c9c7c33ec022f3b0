/** Starting a process on Bun, with `Bun.spawn`. */
import { childEnv, type CommandRunner } from "./subprocess.ts";
import { decoder, notFound, readAll, timeoutOf, withTimeout } from "./runner_common.ts";
import { killGroup, ownGroup } from "./runner_node.ts";

interface BunChild {
  pid: number;
  stdin: { write(b: Uint8Array): unknown; end(): unknown };
  stdout: ReadableStream<Uint8Array>;
  stderr: ReadableStream<Uint8Array>;
  exited: Promise<number>;
  kill(signal?: number | string): void;
}
interface BunNs {
  spawn(cmd: string[], opts: Record<string, unknown>): BunChild;
}

/** Runs a command with `Bun.spawn`. */
export const runBun: CommandRunner = async (command, args, options = {}) => {
  const B = (globalThis as unknown as { Bun: BunNs }).Bun;
  const ms = timeoutOf(options);
  let child: BunChild;
  try {
    child = B.spawn([command, ...args], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      env: childEnv(options.env),
      detached: ownGroup(),
    });
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT" || /ENOENT|not found/i.test(String(e))) throw notFound(command, e);
    throw e;
  }
  const out = child.stdout.getReader();
  const err = child.stderr.getReader();
  const writeStdin = async () => {
    try {
      if (options.stdin) await child.stdin.write(options.stdin);
      await child.stdin.end();
    } catch {
      // the child closed its stdin early
    }
  };
  const work = Promise.all([readAll(out), readAll(err), child.exited, writeStdin()]).then(
    ([stdout, stderr, code]) => ({ code, stdout, stderr: decoder.decode(stderr) }),
  );
  return await withTimeout(command, ms, work, () => {
    killGroup(child.pid);
    try {
      child.kill(9);
    } catch {
      // already gone
    }
    out.cancel().catch(() => {});
    err.cancel().catch(() => {});
  });
};
