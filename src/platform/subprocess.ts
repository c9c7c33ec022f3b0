/**
 * The one way the library starts a process: `Deno.Command` on Deno,
 * `Bun.spawn` on Bun, `node:child_process` on Node. Bytes go in on stdin and
 * come out on stdout; no shell; a timeout settles the call at once (it never
 * waits for pipes a grandchild may hold open) and kills the child with its
 * process group (on Unix, where the runtime may); the child's environment is
 * a short allow-list, so nothing secret in ours reaches it.
 * Errors name the command and carry its stderr, never the payload.
 */
import { spawn as nodeSpawn } from "node:child_process";
import { constants as osConstants } from "node:os";
import process from "node:process";
import { VaultError } from "../errors.ts";
import { runtimeName } from "./runtime.ts";

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
    hint: `install "${command}", or choose the encrypted_file backend (--backend encrypted_file)`,
  });
}

function timedOut(command: string, ms: number): VaultError {
  return new VaultError(
    "io",
    `run "${command}" failed: timed out after ${ms} ms with no answer, so it was killed`,
    { hint: "the machine may be overloaded, or the program waits for something (a locked keychain, a prompt); retry" },
  );
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

/** Reads a stream to its end; a cancelled reader ends it early. */
async function readAll(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return concat(chunks);
    chunks.push(value);
  }
}

/**
 * Waits for `work`, or rejects with the timeout error when `ms` pass first:
 * then `onTimeout` kills the child and lets go of its pipes. The result never
 * waits for the pipes to close, which a grandchild may hold open for long
 * after the child is gone.
 */
function withTimeout<T>(command: string, ms: number, work: Promise<T>, onTimeout: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      try {
        onTimeout();
      } catch {
        // best effort: the caller gets the timeout either way
      }
      reject(timedOut(command, ms));
    }, ms);
    work.then(
      (v) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/** A child gets its own process group where that is possible, so a timeout kills what it started too. */
const ownGroup = () => process.platform !== "win32";

/** SIGKILL to the process group `pid` leads (Node and Bun may signal any process of the user). */
function killGroup(pid: number | undefined): boolean {
  if (pid === undefined || !ownGroup()) return false;
  try {
    process.kill(-pid, "SIGKILL");
    return true;
  } catch {
    return false;
  }
}

interface DenoChild {
  pid: number;
  stdin: WritableStream<Uint8Array>;
  stdout: ReadableStream<Uint8Array>;
  stderr: ReadableStream<Uint8Array>;
  status: Promise<{ code: number; signal: string | null }>;
  kill(signal: string): void;
}
interface DenoNs {
  Command: new (cmd: string, opts: Record<string, unknown>) => { spawn(): DenoChild };
  errors: { NotFound: new () => Error };
  build: { os: string };
  kill(pid: number, signal: string): void;
  permissions: { querySync(d: { name: "run"; command?: string }): { state: string } };
}
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

const runBun: CommandRunner = async (command, args, options = {}) => {
  const B = (globalThis as unknown as { Bun: BunNs }).Bun;
  const ms = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
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

const runNode: CommandRunner = async (command, args, options = {}) => {
  const ms = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
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
