/**
 * The one way the library starts a process: `Deno.Command` on Deno,
 * `Bun.spawn` on Bun, `node:child_process` on Node. Bytes go in on stdin and
 * come out on stdout; no shell; a timeout kills the child; the child's
 * environment is a short allow-list, so nothing secret in ours reaches it.
 * Errors name the command and carry its stderr, never the payload.
 */
import { spawn as nodeSpawn } from "node:child_process";
import process from "node:process";
import { VaultError } from "../errors.ts";
import { runtimeName } from "./runtime.ts";

/** What a finished command returned. */
export interface CommandResult {
  /** Exit code (128 + signal number when killed by a signal). */
  code: number;
  stdout: Uint8Array;
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
      const v = process.env[name];
      if (v !== undefined) env[name] = v;
    } catch {
      // not permitted (Deno): the child does without
    }
  }
  return { ...env, ...extra };
}

const DEFAULT_TIMEOUT_MS = 10_000;
const decoder = new TextDecoder();

function notFound(command: string, cause: unknown): VaultError {
  return new VaultError("backend_unavailable", `run "${command}" failed: it is not installed or not on PATH`, {
    cause,
  });
}

function timedOut(command: string, ms: number): VaultError {
  return new VaultError("io", `run "${command}" failed: no answer within ${ms} ms, so it was killed`);
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

interface DenoChild {
  stdin: WritableStream<Uint8Array>;
  kill(signal: string): void;
  output(): Promise<{ code: number; stdout: Uint8Array; stderr: Uint8Array }>;
}
interface DenoNs {
  Command: new (cmd: string, opts: Record<string, unknown>) => { spawn(): DenoChild };
  errors: { NotFound: new () => Error };
}
interface BunChild {
  stdin: { write(b: Uint8Array): void; end(): void };
  stdout: ReadableStream<Uint8Array>;
  stderr: ReadableStream<Uint8Array>;
  exited: Promise<number>;
  kill(signal?: number | string): void;
}
interface BunNs {
  spawn(cmd: string[], opts: Record<string, unknown>): BunChild;
}

const runDeno: CommandRunner = async (command, args, options = {}) => {
  const D = (globalThis as unknown as { Deno: DenoNs }).Deno;
  const ms = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let child: DenoChild;
  try {
    child = new D.Command(command, {
      args: [...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: childEnv(options.env),
      clearEnv: true,
    }).spawn();
  } catch (e) {
    if (e instanceof D.errors.NotFound) throw notFound(command, e);
    throw e;
  }
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, ms);
  try {
    const writer = child.stdin.getWriter();
    try {
      if (options.stdin) await writer.write(options.stdin);
      await writer.close();
    } catch {
      // the child closed its stdin early; its exit status tells the rest
    }
    const out = await child.output();
    if (killed) throw timedOut(command, ms);
    return { code: out.code, stdout: out.stdout, stderr: decoder.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
};

const runBun: CommandRunner = async (command, args, options = {}) => {
  const B = (globalThis as unknown as { Bun: BunNs }).Bun;
  const ms = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let child: BunChild;
  try {
    child = B.spawn([command, ...args], { stdin: "pipe", stdout: "pipe", stderr: "pipe", env: childEnv(options.env) });
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT" || /ENOENT|not found/i.test(String(e))) throw notFound(command, e);
    throw e;
  }
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill(9);
  }, ms);
  try {
    try {
      if (options.stdin) child.stdin.write(options.stdin);
      child.stdin.end();
    } catch {
      // the child closed its stdin early
    }
    const [stdout, stderr, code] = await Promise.all([
      new Response(child.stdout).arrayBuffer(),
      new Response(child.stderr).arrayBuffer(),
      child.exited,
    ]);
    if (killed) throw timedOut(command, ms);
    return { code, stdout: new Uint8Array(stdout), stderr: decoder.decode(stderr) };
  } finally {
    clearTimeout(timer);
  }
};

const runNode: CommandRunner = (command, args, options = {}) => {
  const ms = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = nodeSpawn(command, [...args], {
      stdio: ["pipe", "pipe", "pipe"],
      env: childEnv(options.env),
      shell: false,
    });
    const out: Uint8Array[] = [];
    const err: Uint8Array[] = [];
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill("SIGKILL");
    }, ms);
    child.stdout.on("data", (c: Uint8Array) => out.push(c));
    child.stderr.on("data", (c: Uint8Array) => err.push(c));
    child.on("error", (e) => {
      clearTimeout(timer);
      reject((e as { code?: string }).code === "ENOENT" ? notFound(command, e) : e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (killed) return reject(timedOut(command, ms));
      const signo = signal === null ? 0 : 128 + 9;
      resolve({ code: code ?? signo, stdout: concat(out), stderr: decoder.decode(concat(err)) });
    });
    child.stdin.on("error", () => {}); // the child closed its stdin early
    child.stdin.end(options.stdin ?? new Uint8Array(0));
  });
};

/** Runs a command with the current runtime's own process API. */
export const runCommand: CommandRunner = (command, args, options) => {
  switch (runtimeName()) {
    case "deno":
      return runDeno(command, args, options);
    case "bun":
      return runBun(command, args, options);
    default:
      return runNode(command, args, options);
  }
};

/** A runner that adds `env` to every child's environment. */
export function runnerWithEnv(env: Record<string, string>, base: CommandRunner = runCommand): CommandRunner {
  return (command, args, options = {}) => base(command, args, { ...options, env: { ...options.env, ...env } });
}
