/**
 * A real, private Linux Secret Service for tests: its own D-Bus session bus
 * and an unlocked gnome-keyring daemon, in temporary folders, stopped when
 * the test process exits. `.ci/run` installs gnome-keyring, libsecret-tools
 * and dbus.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { runnerWithEnv } from "../src/platform/subprocess.ts";
import { ROOT, run, tempDir } from "./helpers.ts";

/** A running Secret Service. */
export interface SecretServiceEnv {
  /** Variables that point a process at this session (D-Bus address, HOME, XDG folders). */
  env: Record<string, string>;
}

let started: Promise<SecretServiceEnv> | undefined;

/** Stores, reads back and clears an item: the keyring answers writes, its login collection exists. */
async function answersWrites(env: Record<string, string>): Promise<string | undefined> {
  const run = runnerWithEnv(env);
  const attrs = ["service", "palyra.vault.v1.test.ready", "key", "probe"];
  const store = await run("secret-tool", ["store", "--label=ready", ...attrs], {
    stdin: new TextEncoder().encode("ok"),
    timeoutMs: 30_000,
  }).catch((e: Error) => ({ code: -1, stdout: new Uint8Array(), stderr: e.message }));
  if (store.code !== 0 || store.stderr.trim() !== "") return `store: ${store.stderr.trim() || store.code}`;
  const back = await run("secret-tool", ["lookup", ...attrs], { timeoutMs: 30_000 });
  if (new TextDecoder().decode(back.stdout).trim() !== "ok") return `lookup: ${back.stderr.trim() || back.code}`;
  await run("secret-tool", ["clear", ...attrs], { timeoutMs: 30_000 });
  return undefined;
}

/**
 * Starts a session and waits until it stores. On a loaded machine
 * gnome-keyring has been seen to answer without ever creating its login
 * collection; such a session is stopped and a fresh one started.
 */
async function start(): Promise<SecretServiceEnv> {
  const deadline = Date.now() + 150_000;
  for (let attempt = 1;; attempt++) {
    const session = await startSession();
    const attemptEnds = Math.min(deadline, Date.now() + 45_000);
    let why: string | undefined;
    for (;;) {
      why = await answersWrites(session.env);
      if (why === undefined) return { env: session.env };
      if (Date.now() >= attemptEnds) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    session.stop();
    assert.ok(Date.now() < deadline, `the test Secret Service did not come up in ${attempt} attempts: ${why}`);
  }
}

async function startSession(): Promise<{ env: Record<string, string>; stop(): void }> {
  const dir = tempDir("secret-service");
  const env: Record<string, string> = {
    HOME: join(dir, "home"),
    XDG_DATA_HOME: join(dir, "data"),
    XDG_RUNTIME_DIR: join(dir, "run"),
    XDG_CONFIG_HOME: join(dir, "config"),
  };
  for (const d of Object.values(env)) mkdirSync(d, { recursive: true, mode: 0o700 });
  const base: Record<string, string | undefined> = { ...process.env, ...env };
  delete base.DBUS_SESSION_BUS_ADDRESS;
  // The session lives as long as this process holds the supervisor's stdin open.
  const session = spawn("sh", [join(ROOT, "tests/workers/keyring_session.sh"), dir], {
    env: base,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const address = await new Promise<string>((resolve, reject) => {
    let out = "";
    session.on("error", (e) => reject(new Error(`start the test Secret Service failed (${e.message})`)));
    session.on(
      "exit",
      (code) =>
        reject(new Error(`the test Secret Service exited (${code}); install: apt-get install dbus gnome-keyring`)),
    );
    session.stdout.on("data", (c: Uint8Array) => {
      out += new TextDecoder().decode(c);
      const m = /^address=(.+)$/m.exec(out);
      if (m) resolve(m[1]!.trim());
    });
  });
  // Neither the session nor its pipes may keep this process alive.
  session.stdout.destroy();
  (session.stdin as unknown as { unref?: () => void }).unref?.();
  session.unref();
  env.DBUS_SESSION_BUS_ADDRESS = address;
  // Closing the supervisor's stdin ends its daemons.
  return { env, stop: () => session.stdin.end() };
}

/** Starts the test Secret Service once per process. */
export function secretService(): Promise<SecretServiceEnv> {
  started ??= start();
  return started;
}

/**
 * Samples every process's argv and environment for `needles` while `body`
 * runs, and returns what it saw. The needles reach the sampler on stdin.
 */
export async function withProcSampler<T>(
  needles: Uint8Array[],
  watch: string[],
  body: () => Promise<T>,
): Promise<{ result: T; samples: number; hits: unknown[]; seen: Record<string, number> }> {
  const dir = tempDir("sampler");
  const stop = join(dir, "stop");
  const hex = needles.map((n) => Array.from(n, (b) => b.toString(16).padStart(2, "0")).join("")).join("\n");
  const sampler = run(["python3", join(ROOT, "tests/workers/proc_sampler.py"), stop, watch.join(",")], {
    input: hex + "\n",
    timeoutMs: 600_000,
  });
  await new Promise((r) => setTimeout(r, 300)); // let it start sampling
  let result: T;
  try {
    result = await body();
  } finally {
    writeFileSync(stop, "");
  }
  const out = await sampler;
  assert.equal(out.code, 0, out.stderr);
  const report = JSON.parse(new TextDecoder().decode(out.stdout));
  return { result: result!, ...report };
}
