/** The per-scope lock (SPEC §5 "Lock"): reclaim rules and mutual exclusion. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { acquireLock, lockContent, parseLock } from "../src/lock.ts";
import { nodeFileSystem } from "../src/platform/fs.ts";
import { hostName } from "../src/platform/process.ts";
import { rejectsWith, run, runScript, RUNTIME_NAMES, tempDir } from "./helpers.ts";

const opts = (over: Partial<{ timeoutMs: number; staleAfterMs: number }> = {}) => ({
  timeoutMs: 2_000,
  staleAfterMs: 30_000,
  what: 'scope "test"',
  ...over,
});

async function deadPid(): Promise<number> {
  const r = await run(["node", "-e", "console.log(process.pid)"]);
  return Number(new TextDecoder().decode(r.stdout).trim());
}

const line = (pid: number, host: string, ts: number) => `pid=${pid} host=${host} ts_ms=${ts} nonce=0123456789abcdef\n`;

/** Checks a log of "enter X"/"exit X" lines shows one holder at a time. */
function assertExclusive(log: string, expectedRounds: number): void {
  const lines = log.trim().split("\n");
  assert.equal(lines.length, expectedRounds * 2, "every round entered and left");
  for (let i = 0; i < lines.length; i += 2) {
    const [a, b] = [lines[i]!, lines[i + 1]!];
    assert.match(a, /^enter /, `line ${i}: ${a}`);
    assert.equal(b, a.replace("enter", "exit"), `holder overlap at line ${i}: ${a} / ${b}`);
  }
}

describe("lock", () => {
  test("lock content has the specified form", () => {
    const info = parseLock(lockContent());
    assert.ok(info);
    assert.equal(info.pid, process.pid);
    assert.ok(Math.abs(info.tsMs - Date.now()) < 5_000);
    assert.match(info.nonce, /^[0-9a-f]{16}$/);
  });

  test("a lock naming a dead pid on this host is reclaimed at once", async () => {
    const path = join(tempDir("lock"), ".metadata.lock");
    writeFileSync(path, line(await deadPid(), hostName(), Date.now()));
    const t0 = Date.now();
    // staleAfterMs of an hour: only the liveness check can free it within the timeout.
    const held = await acquireLock(nodeFileSystem, path, opts({ staleAfterMs: 3_600_000, timeoutMs: 3_000 }));
    assert.ok(Date.now() - t0 < 3_000);
    assert.equal(parseLock(readFileSync(path, "utf8"))?.pid, process.pid);
    await held.release();
  });

  test("a lock naming a live pid is never taken, however old the limit says", async () => {
    const path = join(tempDir("lock"), ".metadata.lock");
    const content = line(process.pid, hostName(), Date.now());
    writeFileSync(path, content);
    const e = await rejectsWith(
      () => acquireLock(nodeFileSystem, path, opts({ staleAfterMs: 1, timeoutMs: 300 })),
      "lock_timeout",
      new RegExp(`pid ${process.pid} on host`),
    );
    assert.match(e.hint ?? "", /remove/);
    assert.equal(readFileSync(path, "utf8"), content);
  });

  test("a lock from another host waits for staleAfterMs", async () => {
    const dir = tempDir("lock");
    const fresh = join(dir, "a.lock");
    writeFileSync(fresh, line(1234, "elsewhere", Date.now()));
    await rejectsWith(() => acquireLock(nodeFileSystem, fresh, opts({ timeoutMs: 300 })), "lock_timeout", /elsewhere/);
    const old = join(dir, "b.lock");
    writeFileSync(old, line(1234, "elsewhere", Date.now() - 60_000));
    const held = await acquireLock(nodeFileSystem, old, opts({ timeoutMs: 1_000 }));
    await held.release();
  });

  test("an unreadable lock file is judged by its age", async () => {
    const dir = tempDir("lock");
    const path = join(dir, ".metadata.lock");
    writeFileSync(path, "garbage");
    await rejectsWith(() => acquireLock(nodeFileSystem, path, opts({ timeoutMs: 200 })), "lock_timeout", /unreadable/);
    const past = (Date.now() - 120_000) / 1000;
    utimesSync(path, past, past);
    const held = await acquireLock(nodeFileSystem, path, opts({ timeoutMs: 1_000 }));
    await held.release();
  });

  test("a pid that now belongs to a newer process does not keep an old lock alive", async () => {
    const path = join(tempDir("lock"), ".metadata.lock");
    // Our own pid, but a timestamp from long before this process started.
    writeFileSync(path, line(process.pid, hostName(), Date.now() - 10 * 3_600_000));
    const held = await acquireLock(nodeFileSystem, path, opts({ staleAfterMs: 3_600_000 * 100, timeoutMs: 1_000 }));
    await held.release();
  });

  test("many waiters in one process reclaiming a dead lock: one holder at a time", async () => {
    const dir = tempDir("lock");
    const path = join(dir, ".metadata.lock");
    writeFileSync(path, line(await deadPid(), hostName(), Date.now()));
    let holders = 0;
    let maxHolders = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: 25 }, async () => {
        const held = await acquireLock(nodeFileSystem, path, opts({ timeoutMs: 20_000 }));
        holders++;
        maxHolders = Math.max(maxHolders, holders);
        await new Promise((r) => setTimeout(r, 2));
        holders--;
        done++;
        await held.release();
      }),
    );
    assert.equal(done, 25);
    assert.equal(maxHolders, 1);
  });

  test("processes of all three runtimes reclaiming a dead lock at once: one holder at a time", async () => {
    const dir = tempDir("lock-mp");
    const path = join(dir, ".metadata.lock");
    const log = join(dir, "log");
    writeFileSync(log, "");
    writeFileSync(path, line(await deadPid(), hostName(), Date.now()));
    // Also leave a guard from a reclaimer that died mid-way.
    writeFileSync(path + ".reclaim", line(await deadPid(), hostName(), Date.now()));
    const startAt = Date.now() + 2_500;
    const rounds = 5;
    const workers = RUNTIME_NAMES.flatMap((rt) => [rt, rt]);
    const results = await Promise.all(
      workers.map((rt) =>
        runScript(rt, "tests/workers/vault_worker.ts", ["lock", path, "3", String(rounds), log, String(startAt)])
      ),
    );
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assertExclusive(readFileSync(log, "utf8"), rounds * workers.length);
  });

  test("release leaves alone a lock that is no longer ours", async () => {
    const path = join(tempDir("lock"), ".metadata.lock");
    const held = await acquireLock(nodeFileSystem, path, opts());
    const someoneElse = line(4242, "elsewhere", Date.now());
    writeFileSync(path, someoneElse);
    await held.release();
    assert.equal(readFileSync(path, "utf8"), someoneElse);
  });

  test("a symbolic link planted at the lock path is refused and its target untouched", async () => {
    const dir = tempDir("lock");
    const target = join(dir, "target");
    writeFileSync(target, "precious");
    const path = join(dir, ".metadata.lock");
    symlinkSync(target, path);
    await rejectsWith(() => acquireLock(nodeFileSystem, path, opts({ timeoutMs: 300 })), "permission", /symbolic link/);
    assert.equal(readFileSync(target, "utf8"), "precious");
  });
});
