/**
 * Shared test helpers. Tests run unchanged on Deno, Bun and Node, so they use
 * only `node:` built-ins here too.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import process from "node:process";
import { VaultError, type VaultErrorCode } from "../src/errors.ts";

/** The project root. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));

const BIN = join(ROOT, "node_modules", ".bin");

/**
 * The flags the `cli` task of deno.json gives `deno run`, in order: the
 * README's permissions, and how Deno loads the CLI's modules.
 */
export const DENO_TASK_FLAGS: readonly string[] = (() => {
  const task = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")).tasks.cli as string;
  const flags = /\bdeno run (.*) cli\.ts$/.exec(task)?.[1];
  if (flags === undefined) throw new Error(`deno.json's cli task does not run cli.ts: ${task}`);
  return flags.split(" ");
})();

/** The Deno permissions the README documents, from the `cli` task (a package test checks that the README shows them). */
export const DENO_DOCUMENTED: readonly string[] = DENO_TASK_FLAGS.filter((w) => w.startsWith("--allow-"));

/**
 * The PATH that puts the emulators of tests/fakes/ first. They need only
 * Python's standard library, so the system's python3 runs them when there is
 * one: a version manager's shim (pyenv) costs several hundred milliseconds per
 * call, and the emulated backends start one per operation.
 */
export function emulatorPath(): string {
  const fast = existsSync("/usr/bin/python3") ? "/usr/bin:" : "";
  return `${join(ROOT, "tests", "fakes")}:${fast}${process.env.PATH ?? ""}`;
}

/** The three runtimes, as commands that run a TypeScript file. */
export const RUNTIMES = {
  deno: (script: string) => [join(BIN, "deno"), "run", "-A", "--quiet", "--config", join(ROOT, "deno.json"), script],
  bun: (script: string) => [join(BIN, "bun"), script],
  // tsx by absolute path, so the command works from any folder.
  node: (
    script: string,
  ) => ["node", "--import", pathToFileURL(join(ROOT, "node_modules/tsx/dist/loader.mjs")).href, script],
} as const;

/** A runtime's name. */
export type RuntimeName = keyof typeof RUNTIMES;
/** The runtimes in a fixed order, for mixing. */
export const RUNTIME_NAMES: readonly RuntimeName[] = ["deno", "bun", "node"];

const made: string[] = [];

/** A new empty temporary folder (0700), removed when the process exits. */
export function tempDir(label = "t"): string {
  const dir = mkdtempSync(join(tmpdir(), `palyra-vault-${label}-`));
  made.push(dir);
  return dir;
}

process.on("exit", () => {
  for (const d of made) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
});

/** Asserts that `fn` rejects (or throws) a `VaultError` with `code`; returns it. */
export async function rejectsWith(fn: () => unknown, code: VaultErrorCode, message?: RegExp): Promise<VaultError> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected a VaultError with code "${code}", but nothing was thrown`);
  assert.ok(caught instanceof VaultError, `expected a VaultError, got ${String(caught)}`);
  assert.equal(caught.code, code, `expected code "${code}", got "${caught.code}": ${caught.message}`);
  if (message) assert.match(caught.message, message);
  return caught;
}

/**
 * The environment of a CLI process confined to `dir`: its own vault, identity,
 * home and config folders, and the file backend. `home` puts the home folder
 * elsewhere (a runtime's caches there must not fill a small test file system).
 */
export function cliEnv(dir: string, home: string = join(dir, "home")) {
  return {
    PALYRA_VAULT_DIR: join(dir, "vault"),
    PALYRA_IDENTITY_DIR: join(dir, "identity"),
    HOME: home,
    XDG_CONFIG_HOME: join(dir, "config"),
    XDG_STATE_HOME: join(dir, "state"),
    PALYRA_VAULT_BACKEND: "encrypted_file",
  };
}

let template: Promise<string> | undefined;

/**
 * Puts a copy of one device identity (made once per test process) at `dir`.
 * Making an identity costs a P-256 key and a CA certificate; tests that are
 * not about making one start from this copy instead. identity.test.ts and the
 * interop tests check the making itself.
 */
export async function seedIdentity(dir: string): Promise<void> {
  template ??= (async () => {
    const { loadOrCreateIdentity } = await import("../src/store/identity_store.ts");
    const { defaultFileSystem } = await import("../src/platform/fs.ts");
    const made = join(tempDir("identity-template"), "identity");
    await loadOrCreateIdentity({ fs: defaultFileSystem }, made);
    return made;
  })();
  cpSync(await template, dir, { recursive: true });
  chmodSync(dir, 0o700);
}

/** Random bytes. */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let o = 0; o < n; o += 65536) crypto.getRandomValues(out.subarray(o, Math.min(n, o + 65536)));
  return out;
}

/** A fixed test KEK. */
export function testKek(fill = 7): Uint8Array {
  return new Uint8Array(32).fill(fill);
}

/** Result of a child process. */
export interface RunResult {
  code: number | null;
  signal: string | null;
  stdout: Uint8Array;
  stderr: string;
}

/** Runs a command to completion, feeding `input` on stdin. */
export function run(
  argv: readonly string[],
  options: { input?: Uint8Array | string; env?: Record<string, string>; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Uint8Array[] = [];
    let err = "";
    child.stdout.on("data", (c: Uint8Array) => out.push(c));
    child.stderr.on("data", (c: Uint8Array) => (err += new TextDecoder().decode(c)));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const total = out.reduce((n, c) => n + c.length, 0);
      const stdout = new Uint8Array(total);
      let o = 0;
      for (const c of out) {
        stdout.set(c, o);
        o += c.length;
      }
      resolve({ code, signal, stdout, stderr: err });
    });
    child.stdin.on("error", () => {}); // a child that exits early closes its stdin
    child.stdin.end(options.input ?? "");
  });
}

/** Deno running a TypeScript file with the given permission flags instead of `-A`. */
export function denoWith(flags: readonly string[], script: string): string[] {
  return [join(BIN, "deno"), "run", ...flags, "--quiet", "--config", join(ROOT, "deno.json"), script];
}

/**
 * Runs a TypeScript file of this project with one of the runtimes. With
 * `deno`, Deno gets those permission flags instead of `-A` (and the test's
 * temporary folder stays reachable through them).
 */
export function runScript(
  runtime: RuntimeName,
  script: string,
  args: readonly string[] = [],
  options: {
    input?: Uint8Array | string;
    env?: Record<string, string>;
    timeoutMs?: number;
    deno?: readonly string[];
  } = {},
): Promise<RunResult> {
  const argv = runtime === "deno" && options.deno !== undefined
    ? denoWith(options.deno, join(ROOT, script))
    : RUNTIMES[runtime](join(ROOT, script));
  return run([...argv, ...args], options);
}

/** Lowercase hex. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Bytes from lowercase hex. */
export function unhex(text: string): Uint8Array {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}
