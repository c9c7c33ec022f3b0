/** `palyra-secrets run [--env NAME=<ref>]… [--env-file FILE]… [--mask] -- <command> [args…]`. */
import { VaultError } from "../errors.ts";
import { OutputMasker } from "../mask.ts";
import { type EnvReference, parseEnvAssignment, parseEnvFile, resolveEnv } from "../resolve_env.ts";
import { childHost, type ForwardedSignal, type RunningChild, StartError } from "../platform/child.ts";
import { writeStderr, writeStream } from "../platform/terminal.ts";
import type { ParsedArgs } from "./args.ts";
import { openVault, readUserText } from "./common.ts";
import { PROGRAM, UsageError } from "./output.ts";

const list = (v: unknown): string[] => (Array.isArray(v) ? v : typeof v === "string" ? [v] : []);

/** Resolves every reference, then runs the program with them in its environment; its exit code is ours. */
export async function run(args: ParsedArgs): Promise<number> {
  const [command, ...rest] = args.positionals as [string, ...string[]];
  const refs: EnvReference[] = [];
  for (const file of list(args.values["env-file"])) {
    const text = await readUserText(file, "env file", "pass --env-file with a file of NAME=<scope>/<key> lines");
    refs.push(...usage(() => parseEnvFile(text, `env file "${file}"`)));
  }
  for (const assignment of list(args.values.env)) refs.push(usage(() => parseEnvAssignment(assignment)));
  // Every reference is resolved before anything starts: a missing one starts nothing.
  let env: Awaited<ReturnType<typeof resolveEnv>> | undefined;
  if (refs.length > 0) {
    const vault = await openVault(args);
    try {
      env = await resolveEnv(vault, refs);
    } finally {
      vault.close();
    }
  }
  try {
    return await start(command, rest, env?.toEnv() ?? {}, args.values.mask === true ? env?.values() ?? [] : []);
  } finally {
    env?.[Symbol.dispose]();
  }
}

/** A malformed `--env` or env-file line is a usage error (exit 2). */
function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (VaultError.is(e, "invalid_ref")) throw new UsageError(e.message, "run");
    throw e;
  }
}

async function start(
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  mask: readonly Uint8Array[],
): Promise<number> {
  const host = await childHost();
  // Masking needs the output to pass through here; a terminal gets it untouched, so a program keeps its terminal.
  const pipe = {
    stdout: mask.length > 0 && !host.isTerminal("stdout"),
    stderr: mask.length > 0 && !host.isTerminal("stderr"),
  };
  // Listen before starting: a signal that comes while the child starts is passed on once it runs.
  const started: { child?: RunningChild; early?: ForwardedSignal } = {};
  const stop = host.onSignals(["SIGINT", "SIGTERM", "SIGHUP"], (signal) => {
    if (started.child === undefined) started.early ??= signal;
    else started.child.kill(signal);
  });
  let child: RunningChild;
  try {
    child = await host.start({ command, args, env, pipe });
  } catch (e) {
    stop();
    if (!(e instanceof StartError)) throw e;
    await writeStderr(`${PROGRAM}: ${e.message}\n`);
    return e.failure === "not_found" ? 127 : 126; // what a shell answers
  }
  started.child = child;
  if (started.early !== undefined) child.kill(started.early);
  try {
    let lastData = Date.now();
    const pump = (stream: "stdout" | "stderr") => {
      const masker = new OutputMasker(mask);
      let open = true;
      const done = child.read(stream, async (chunk) => {
        lastData = Date.now();
        // After the end below nothing more is passed on: it could not be masked whole.
        if (open) await writeStream(stream, masker.push(chunk));
      });
      const end = async () => {
        if (!open) return;
        open = false;
        const rest = masker.end();
        if (rest.length > 0) await writeStream(stream, rest);
      };
      return { done: done.then(end), end };
    };
    const pumps = [pump("stdout"), pump("stderr")];
    const code = await child.exit;
    lastData = Math.max(lastData, Date.now());
    // A program's background process may hold the pipe open long after it exits: pass on what comes
    // while output keeps flowing, and stop once it has been quiet for a moment.
    let quiet: ReturnType<typeof setTimeout> | undefined;
    const settled = new Promise<void>((resolve) => {
      // Quiet twice in a row, with the event loop between: a stalled loop (a loaded machine) that wakes up late
      // reads what the pipe holds before the output is judged quiet.
      let once = false;
      const check = () => {
        const idle = Date.now() - lastData;
        if (idle < OUTPUT_GRACE_MS) {
          once = false;
          quiet = setTimeout(check, OUTPUT_GRACE_MS - idle);
        } else if (!once) {
          once = true;
          quiet = setTimeout(check, 20);
        } else {
          resolve();
        }
      };
      check();
    });
    await Promise.race([Promise.all(pumps.map((p) => p.done)), settled]);
    clearTimeout(quiet);
    for (const p of pumps) await p.end();
    return code;
  } finally {
    stop();
  }
}

/** How long piped output may stay quiet after the program exits before `run` stops passing it on. */
const OUTPUT_GRACE_MS = 1000;
