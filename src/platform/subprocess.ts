/**
 * The one way the library starts a process: `Deno.Command` on Deno
 * (`runner_deno.ts`), `Bun.spawn` on Bun (`runner_bun.ts`),
 * `node:child_process` on Node (`runner_node.ts`), the runner of this
 * runtime loaded on first use. Bytes go in on stdin and
 * come out on stdout; no shell; a timeout settles the call at once (it never
 * waits for pipes a grandchild may hold open) and kills the child with its
 * process group (on Unix, where the runtime may); the child's environment is
 * a short allow-list, so nothing secret in ours reaches it.
 * Errors name the command and carry its stderr, never the payload.
 */
import { os } from "./os.ts";

/** What a finished command returned. */
export interface CommandResult {
  /** Exit code (128 + signal number when killed by a signal). */
  code: number;
  /** Everything the child wrote to stdout. */
  stdout: Uint8Array;
  /** Everything the child wrote to stderr, decoded as UTF-8 (invalid bytes become U+FFFD). */
  stderr: string;
}

/** Options of a command run. */
export interface RunOptions {
  /** Bytes written to the child's stdin, which is then closed. */
  stdin?: Uint8Array;
  /** Kill the child after this long. Default 10 000 ms. */
  timeoutMs?: number;
  /** Variables added to the allow-listed environment (tests point a child at their own D-Bus). */
  env?: Record<string, string>;
}

/** Starts `command` with `args` (never through a shell) and waits for it. */
export type CommandRunner = (command: string, args: readonly string[], options?: RunOptions) => Promise<CommandResult>;

/** Environment variables a child may see: what the keychain tools need to find the session, nothing else. */
export const CHILD_ENV_ALLOWLIST: readonly string[] = [
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "LANG",
  "LC_ALL",
  "TMPDIR",
  "DBUS_SESSION_BUS_ADDRESS",
  "XDG_RUNTIME_DIR",
  "DISPLAY",
  "WAYLAND_DISPLAY",
  "SystemRoot",
  "windir",
  "TEMP",
  "TMP",
  "USERPROFILE",
  "APPDATA",
  "LOCALAPPDATA",
  "PSModulePath",
];

/** The environment handed to children: the allow-listed variables of ours, plus `extra`. */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of CHILD_ENV_ALLOWLIST) {
    try {
      const v = os.env(name);
      if (v !== undefined) env[name] = v;
    } catch {
      // not permitted (Deno): the child does without
    }
  }
  return { ...env, ...extra };
}

let runner: Promise<CommandRunner> | undefined;

function load(): Promise<CommandRunner> {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  return runner ??= g.Deno !== undefined
    ? import("./runner_deno.ts").then((m) => m.runDeno)
    : g.Bun !== undefined
    ? import("./runner_bun.ts").then((m) => m.runBun)
    : import("./runner_node.ts").then((m) => m.runNode);
}

/** Runs a command with the current runtime's own process API. */
export const runCommand: CommandRunner = async (command, args, options) => await (await load())(command, args, options);

/** A runner that adds `env` to every child's environment. */
export function runnerWithEnv(env: Record<string, string>, base: CommandRunner = runCommand): CommandRunner {
  return (command, args, options = {}) => base(command, args, { ...options, env: { ...options.env, ...env } });
}
