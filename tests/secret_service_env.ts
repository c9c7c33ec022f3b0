/**
 * A real, private Linux Secret Service for tests: its own D-Bus session bus
 * and an unlocked gnome-keyring daemon, in temporary folders, stopped when
 * the test process exits. `.ci/run` installs gnome-keyring, libsecret-tools
 * and dbus.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { LinuxSecretServiceBackend } from "../src/backends/linux_secret_service.ts";
import { runnerWithEnv } from "../src/platform/subprocess.ts";
import { ROOT, run, tempDir } from "./helpers.ts";

/** A running Secret Service. */
export interface SecretServiceEnv {
  /** Variables that point a process at this session (D-Bus address, HOME, XDG folders). */
  env: Record<string, string>;
}

let started: Promise<SecretServiceEnv> | undefined;
const children: ChildProcess[] = [];
process.on("exit", () => {
  for (const c of children) c.kill("SIGTERM");
});

async function start(): Promise<SecretServiceEnv> {
  const dir = tempDir("secret-service");
  const env: Record<string, string> = {
    HOME: join(dir, "home"),
    XDG_DATA_HOME: join(dir, "data"),
    XDG_RUNTIME_DIR: join(dir, "run"),
    XDG_CONFIG_HOME: join(dir, "config"),
  };
  for (const d of Object.values(env)) mkdirSync(d, { recursive: true, mode: 0o700 });
  const base = { ...process.env, ...env };
  delete base.DBUS_SESSION_BUS_ADDRESS;
  const bus = spawn("dbus-daemon", ["--session", "--nofork", "--print-address=1"], {
    env: base,
    stdio: ["ignore", "pipe", "ignore"],
  });
  children.push(bus);
  const address = await new Promise<string>((resolve, reject) => {
    let out = "";
    bus.on("error", (e) => reject(new Error(`start dbus-daemon failed (${e.message}); install: apt-get install dbus`)));
    bus.stdout.on("data", (c: Uint8Array) => {
      out += new TextDecoder().decode(c);
      if (out.includes("\n")) resolve(out.split("\n")[0]!.trim());
    });
    setTimeout(() => reject(new Error("dbus-daemon printed no address")), 10_000);
  });
  // The daemons must not keep the test process alive; they are killed when it exits.
  bus.stdout.destroy();
  bus.unref();
  env.DBUS_SESSION_BUS_ADDRESS = address;
  const keyring = spawn("gnome-keyring-daemon", ["--unlock", "--components=secrets", "--foreground"], {
    env: { ...base, ...env },
    stdio: ["pipe", "ignore", "ignore"],
  });
  children.push(keyring);
  keyring.on("error", () => {});
  keyring.stdin.end("palyra-test-keyring-password");
  keyring.unref();
  // Wait until the service answers a lookup cleanly.
  const runner = runnerWithEnv(env);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const p = await LinuxSecretServiceBackend.probe(runner, 3_000);
    if (p.available) break;
    assert.ok(Date.now() < deadline, `the test Secret Service did not come up: ${p.reason}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { env };
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
