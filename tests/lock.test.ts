/**
 * The per-scope lock (docs/FORMAT.md §5.4): reclaim rules and mutual exclusion,
 * by example, by a replay of a schedule that broke an earlier design, and by
 * exploring interleavings (with crashes) of its operations on the real file
 * system with fast-check's scheduler.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as nfs from "node:fs";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import fc from "fast-check";
import {
  acquireLock,
  type HeldLock,
  lockContent,
  type LockHost,
  lockHostName,
  parseLock,
  sameLockHost,
} from "../src/store/scope_lock.ts";
import { defaultFileSystem, fileInfo, type FileSystem } from "../src/platform/fs.ts";
import { DENO_DOCUMENTED, rejectsWith, ROOT, run, runScript, RUNTIME_NAMES, RUNTIMES, tempDir } from "./helpers.ts";

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

const HOST = lockHostName();
const line = (pid: number, host: string, ts: number, nonce = "0123456789abcdef") =>
  `pid=${pid} host=${host} ts_ms=${ts} nonce=${nonce}\n`;

/** Plants a lock held by `content` (a folder with one marker), optionally with an old file time. */
function plantLock(path: string, content: string, mtimeMs?: number): string {
  const nonce = parseLock(content)?.nonce ?? "00000000deadbeef";
  mkdirSync(path, { mode: 0o700 });
  const marker = join(path, nonce);
  writeFileSync(marker, content, { mode: 0o600 });
  if (mtimeMs !== undefined) utimesSync(marker, mtimeMs / 1000, mtimeMs / 1000);
  return marker;
}

/** The content of the marker of the lock at `path`, or `undefined` when nobody holds it. */
function holderOf(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  if (nfs.lstatSync(path).isFile()) return readFileSync(path, "utf8"); // a 0.1 lock file
  const names = readdirSync(path);
  return names.length === 0 ? undefined : readFileSync(join(path, names[0]!), "utf8");
}

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

  test("a held lock is a folder with one marker named by its nonce; release removes both", async () => {
    const path = join(tempDir("lock"), ".metadata.lock");
    const held = await acquireLock(defaultFileSystem, path, opts());
    const names = readdirSync(path);
    assert.equal(names.length, 1);
    const info = parseLock(readFileSync(join(path, names[0]!), "utf8"));
    assert.equal(info?.nonce, names[0]);
    assert.equal(info?.pid, process.pid);
    assert.equal(nfs.lstatSync(join(path, names[0]!)).mode & 0o777, 0o600);
    await held.release();
    assert.equal(existsSync(path), false);
    assert.deepEqual(readdirSync(join(path, "..")), [], "no temporary folder is left");
  });

  test("a lock naming a dead pid on this host is reclaimed at once", async () => {
    const path = join(tempDir("lock"), ".metadata.lock");
    plantLock(path, line(await deadPid(), HOST, Date.now()));
    // staleAfterMs of an hour: only the liveness check can free it within the timeout.
    const held = await acquireLock(defaultFileSystem, path, opts({ staleAfterMs: 3_600_000, timeoutMs: 60_000 }));
    assert.equal(parseLock(holderOf(path)!)?.pid, process.pid);
    await held.release();
  });

  test("a lock file of version 0.1 naming a dead pid is reclaimed too", async () => {
    const path = join(tempDir("lock"), ".metadata.lock");
    writeFileSync(path, line(await deadPid(), HOST, Date.now()));
    const held = await acquireLock(defaultFileSystem, path, opts({ staleAfterMs: 3_600_000, timeoutMs: 60_000 }));
    assert.equal(parseLock(holderOf(path)!)?.pid, process.pid);
    await held.release();
  });

  test("a lock naming a live pid is never taken, however old the limit says", async () => {
    const path = join(tempDir("lock"), ".metadata.lock");
    const content = line(process.pid, HOST, Date.now());
    plantLock(path, content, Date.now() - 3_600_000);
    const e = await rejectsWith(
      () => acquireLock(defaultFileSystem, path, opts({ staleAfterMs: 1, timeoutMs: 300 })),
      "lock_timeout",
      new RegExp(`pid ${process.pid} on host`),
    );
    assert.match(e.hint ?? "", /remove/);
    assert.equal(holderOf(path), content);
  });

  test("a lock from another host waits for staleAfterMs", async () => {
    const dir = tempDir("lock");
    const fresh = join(dir, "a.lock");
    plantLock(fresh, line(1234, "elsewhere", Date.now()));
    await rejectsWith(
      () => acquireLock(defaultFileSystem, fresh, opts({ timeoutMs: 300 })),
      "lock_timeout",
      /elsewhere/,
    );
    const old = join(dir, "b.lock");
    plantLock(old, line(1234, "elsewhere", Date.now() - 60_000), Date.now() - 60_000);
    const held = await acquireLock(defaultFileSystem, old, opts({ timeoutMs: 60_000 }));
    await held.release();
  });

  test("regression: a lock from a host whose clock runs a day ahead is reclaimed by its file time", async () => {
    const path = join(tempDir("lock"), ".metadata.lock");
    // Written an hour ago (file time) by a host whose clock ran a day ahead.
    plantLock(path, line(4242, "build-agent-7", Date.now() + 86_400_000), Date.now() - 3_600_000);
    const held = await acquireLock(defaultFileSystem, path, opts({ staleAfterMs: 30_000, timeoutMs: 60_000 }));
    await held.release();
    // And the 0.1 lock file the same way.
    writeFileSync(path, line(4242, "build-agent-7", Date.now() + 86_400_000));
    utimesSync(path, (Date.now() - 3_600_000) / 1000, (Date.now() - 3_600_000) / 1000);
    await (await acquireLock(defaultFileSystem, path, opts({ timeoutMs: 60_000 }))).release();
  });

  test("an unreadable lock marker is judged by its age", async () => {
    const dir = tempDir("lock");
    const path = join(dir, ".metadata.lock");
    const marker = plantLock(path, "garbage");
    await rejectsWith(
      () => acquireLock(defaultFileSystem, path, opts({ timeoutMs: 200 })),
      "lock_timeout",
      /unreadable/,
    );
    const past = (Date.now() - 120_000) / 1000;
    utimesSync(marker, past, past);
    const held = await acquireLock(defaultFileSystem, path, opts({ timeoutMs: 60_000 }));
    await held.release();
  });

  test("an empty lock folder (a crash between a release's two steps) holds nobody", async () => {
    const path = join(tempDir("lock"), ".metadata.lock");
    mkdirSync(path, { mode: 0o700 });
    const held = await acquireLock(defaultFileSystem, path, opts({ timeoutMs: 60_000 }));
    assert.equal(parseLock(holderOf(path)!)?.pid, process.pid);
    await held.release();
    assert.equal(existsSync(path), false);
  });

  test("a pid that now belongs to a newer process does not keep an old lock alive", async () => {
    const path = join(tempDir("lock"), ".metadata.lock");
    // Our own pid, but a timestamp from long before this process started.
    plantLock(path, line(process.pid, HOST, Date.now() - 10 * 3_600_000));
    const held = await acquireLock(defaultFileSystem, path, opts({ staleAfterMs: 3_600_000 * 100, timeoutMs: 60_000 }));
    await held.release();
  });

  test("many waiters in one process reclaiming a dead lock: one holder at a time", async () => {
    const dir = tempDir("lock");
    const path = join(dir, ".metadata.lock");
    plantLock(path, line(await deadPid(), HOST, Date.now()));
    let holders = 0;
    let maxHolders = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: 25 }, async () => {
        const held = await acquireLock(defaultFileSystem, path, opts({ timeoutMs: 120_000 }));
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

  test("processes of all three runtimes (Deno with the README's permissions) reclaiming a dead lock: one holder at a time", async () => {
    const dir = tempDir("lock-mp");
    const path = join(dir, ".metadata.lock");
    const log = join(dir, "log");
    writeFileSync(log, "");
    plantLock(path, line(await deadPid(), HOST, Date.now()));
    const startAt = Date.now() + 3_000;
    const rounds = 5;
    const workers = RUNTIME_NAMES.flatMap((rt) => [rt, rt]);
    const results = await Promise.all(
      workers.map((rt) =>
        runScript(rt, "tests/workers/vault_worker.ts", ["lock", path, "3", String(rounds), log, String(startAt)], {
          deno: DENO_DOCUMENTED,
        })
      ),
    );
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assertExclusive(readFileSync(log, "utf8"), rounds * workers.length);
  });

  test("lock hosts: the same name and PID namespace, or a name without one (Deno without --allow-all, earlier writers)", async () => {
    assert.equal(sameLockHost("vm@pidns:4026531836", "vm@pidns:4026531836"), true);
    assert.equal(sameLockHost("vm@pidns:4026531836", "vm@pidns:4026532201"), false);
    assert.equal(sameLockHost("vm", "vm@pidns:4026532201"), true);
    assert.equal(sameLockHost("vm@pidns:4026532201", "vm"), true);
    assert.equal(sameLockHost("vm", "vm"), true);
    assert.equal(sameLockHost("vm", "other@pidns:4026532201"), false);
    if (process.platform === "linux") assert.match(lockHostName(), /@pidns:\d+$/);
    // A crashed holder that wrote the host name alone, on this host, is reclaimed at once, as before namespaces.
    const path = join(tempDir("lock-bare-host"), ".metadata.lock");
    plantLock(path, line(await deadPid(), HOST.replace(/@pidns:\d+$/, ""), Date.now()));
    const held = await acquireLock(defaultFileSystem, path, opts({ staleAfterMs: 3_600_000 }));
    await held.release();
    // One of another namespace is judged by its age, as another machine's: a fresh one is waited for.
    const other = join(tempDir("lock-other-ns"), ".metadata.lock");
    plantLock(other, line(await deadPid(), `${HOST.replace(/@pidns:\d+$/, "")}@pidns:1`, Date.now()));
    await rejectsWith(() => acquireLock(defaultFileSystem, other, opts({ timeoutMs: 300 })), "lock_timeout");
  });

  test("a holder in another PID namespace of this host (a container beside it) is never reclaimed for its pid", async () => {
    // Containers of one Kubernetes pod, or a container run with the host's network, share the host name but not the
    // PID namespace: a pid written by one means another process, or none, to the other. The holder runs in a PID
    // namespace of its own (unshare) with the pid of a process that has ended out here, so judged by its pid from
    // here it is dead, while it holds the lock.
    const dir = tempDir("lock-pidns");
    const path = join(dir, ".metadata.lock");
    const log = join(dir, "log");
    const own = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
    const pid = await deadPid();
    const asRoot = process.getuid?.() === 0;
    const args = (holdMs: number) => ["lock", path, String(holdMs), "1", log, String(Date.now())];
    const inside = run([
      "unshare",
      ...(asRoot ? [] : ["--user", "--map-root-user"]),
      "--pid",
      "--fork",
      "--mount-proc",
      "sh",
      "-c",
      // The next pid this namespace gives is the one that ended out here.
      'echo $(($0 - 1)) > /proc/sys/kernel/ns_last_pid && "$@"',
      String(pid),
      ...RUNTIMES[own](join(ROOT, "tests/workers/vault_worker.ts")),
      ...args(8_000),
    ]);
    // Once it holds the lock (a loaded machine may take seconds to start it), a writer out here comes; its hold of
    // 8 s covers the writer's own start. Deno reads /proc only with --allow-all, so under the README's permissions
    // it cannot know its namespace and judges by pid (README, Deno permissions): the writer runs as `-A`.
    const entered = await new Promise<boolean>((resolve) => {
      const deadline = Date.now() + 60_000;
      const poll = () => {
        if (existsSync(log) && readFileSync(log, "utf8").startsWith("enter ")) resolve(true);
        else if (Date.now() > deadline) resolve(false);
        else setTimeout(poll, 20);
      };
      poll();
    });
    const outside = entered ? runScript(own, "tests/workers/vault_worker.ts", args(100)) : undefined;
    const [a, b] = await Promise.all([inside, outside]);
    assert.equal(
      a.code,
      0,
      `the holder in its own PID namespace failed (it needs unshare, as root or through a ` +
        `user namespace): ${a.stderr}`,
    );
    assert.ok(entered && b !== undefined, "the holder inside never took the lock");
    assert.equal(b.code, 0, b.stderr);
    const lines = readFileSync(log, "utf8").trim().split("\n");
    assert.equal(lines[0], `enter ${pid}.0`, "the holder inside has the pid that ended out here");
    assertExclusive(lines.join("\n"), 2);
  });

  test("regression: under the README's Deno permissions a dead holder is reclaimed at once and a live one is never taken", async () => {
    const dir = tempDir("lock-deno");
    const dead = join(dir, "dead.lock");
    plantLock(dead, line(await deadPid(), HOST, Date.now()));
    // An hour of staleAfterMs: only knowing the holder is dead frees it before the 60 s timeout.
    const r1 = await runScript("deno", "tests/workers/vault_worker.ts", ["take", dead, "3600000", "60000"], {
      deno: DENO_DOCUMENTED,
    });
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(new TextDecoder().decode(r1.stdout), /^taken /m);
    const live = join(dir, "live.lock");
    const content = line(process.pid, HOST, Date.now() - 3_600_000);
    plantLock(live, content, Date.now() - 3_600_000);
    // staleAfterMs 1 ms: a live holder on this host must still never be taken.
    const r2 = await runScript("deno", "tests/workers/vault_worker.ts", ["take", live, "1", "500"], {
      deno: DENO_DOCUMENTED,
    });
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(new TextDecoder().decode(r2.stdout), /^lock_timeout /m);
    assert.equal(holderOf(live), content);
  });

  test("release leaves alone a lock that is no longer ours", async () => {
    const path = join(tempDir("lock"), ".metadata.lock");
    const held = await acquireLock(defaultFileSystem, path, opts());
    // A waiter judged us stale and removed us, and someone else took the lock.
    nfs.rmSync(path, { recursive: true });
    const someoneElse = line(4242, "elsewhere", Date.now(), "fedcba9876543210");
    plantLock(path, someoneElse);
    await held.release();
    assert.equal(holderOf(path), someoneElse);
  });

  test("a symbolic link planted at the lock path is refused and its target untouched", async () => {
    const dir = tempDir("lock");
    const target = join(dir, "target");
    mkdirSync(target);
    writeFileSync(join(target, "precious"), "precious");
    const path = join(dir, ".metadata.lock");
    symlinkSync(target, path);
    await rejectsWith(
      () => acquireLock(defaultFileSystem, path, opts({ timeoutMs: 300 })),
      "permission",
      /symbolic link/,
    );
    assert.deepEqual(readdirSync(target), ["precious"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Replays of schedules, driven through the injectable file layer.

interface PausePoint {
  reached: Promise<void>;
  go(): void;
  hit(): Promise<void>;
}

function pausePoint(): PausePoint {
  let reached!: () => void;
  let go!: () => void;
  const r = new Promise<void>((res) => (reached = res));
  const g = new Promise<void>((res) => (go = res));
  return {
    reached: r,
    go,
    hit: () => {
      reached();
      return g;
    },
  };
}

/** A file layer that pauses the first call matching each hook until the test lets it go. */
function pausingFs(hooks: Array<{ op: keyof FileSystem; when: (...a: string[]) => boolean; point: PausePoint }>) {
  const fs = { ...defaultFileSystem } as Record<string, unknown>;
  for (const op of Object.keys(defaultFileSystem) as Array<keyof FileSystem>) {
    fs[op] = async (...a: unknown[]) => {
      const i = hooks.findIndex((h) => h.op === op && h.when(...(a as string[])));
      if (i >= 0) await hooks.splice(i, 1)[0]!.point.hit();
      return (defaultFileSystem[op] as (...x: unknown[]) => unknown).apply(fs, a);
    };
  }
  return fs as unknown as FileSystem;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits for a pause point; a point the protocol never reaches counts as passed after a moment. */
async function reach(p: PausePoint): Promise<boolean> {
  return await Promise.race([p.reached.then(() => true), sleep(400).then(() => false)]);
}

/** Tracks who believes they hold the lock; counts overlaps. */
function holdings() {
  const holding = new Set<string>();
  let overlaps = 0;
  let finale!: () => void;
  const end = new Promise<void>((r) => (finale = r));
  return {
    get overlaps() {
      return overlaps;
    },
    finish: finale,
    /** Runs an actor: take the lock, hold it until the end of the schedule, release. */
    actor(name: string, fs: FileSystem, path: string): Promise<string> {
      return acquireLock(fs, path, opts({ timeoutMs: 60_000 })).then(async (h: HeldLock) => {
        if (holding.size > 0) overlaps++;
        holding.add(name);
        await end;
        holding.delete(name);
        await h.release();
        return name;
      });
    },
  };
}

describe("lock schedules", () => {
  test("regression (review of 3d5a40a): reclaimers paused mid-removal, a guard breaker and a fresh writer never make two holders", async () => {
    // The schedule that made two holders in the design of 3d5a40a (a reclaim guard, and removals that
    // moved a file aside and linked it back). Each pause point names an operation of that design; one
    // that the current design never performs is passed after a moment, and the schedule goes on.
    const dir = tempDir("lock-race");
    const L = join(dir, ".metadata.lock");
    const G = `${L}.reclaim`;
    writeFileSync(L, line(await deadPid(), HOST, Date.now(), "00000000000000aa")); // a killed holder
    writeFileSync(G, line(await deadPid(), HOST, Date.now(), "00000000000000bb")); // a killed reclaimer
    const h = holdings();
    const c1 = pausePoint();
    const c2 = pausePoint();
    const C = h.actor(
      "C",
      pausingFs([
        { op: "rename", when: (f) => f === G, point: c1 },
        { op: "link", when: (_f, t) => t === G, point: c2 },
      ]),
      L,
    );
    await reach(c1); // C read the dead guard and is about to move it
    await defaultFileSystem.remove(G); // another waiter removed the dead guard
    const e1 = pausePoint();
    const E = h.actor("E", pausingFs([{ op: "rename", when: (f) => f === L, point: e1 }]), L);
    await reach(e1); // E holds a fresh guard, is about to move the dead lock
    c1.go();
    await reach(c2); // C moved E's guard away and is about to link it back
    const f1 = pausePoint();
    const f2 = pausePoint();
    const F = h.actor(
      "F",
      pausingFs([
        { op: "rename", when: (f) => f === L, point: f1 },
        { op: "link", when: (_f, t) => t === L, point: f2 },
      ]),
      L,
    );
    await reach(f1); // F took the guard too, is about to move the lock
    c2.go();
    await sleep(50);
    e1.go(); // E removes the dead lock and takes the scope lock
    await sleep(200);
    f1.go();
    await reach(f2); // F moved E's live lock away and is about to link it back
    const W = h.actor("W", defaultFileSystem, L); // a fresh writer finds the name free
    await sleep(300);
    f2.go();
    await sleep(300);
    assert.equal(h.overlaps, 0, "two processes held the lock at once");
    h.finish();
    assert.deepEqual((await Promise.all([C, E, F, W])).sort(), ["C", "E", "F", "W"]);
    assert.equal(existsSync(L), false);
  });

  test("regression: a reclaimer paused between judging a holder dead and removing it cannot remove the next holder", async () => {
    const dir = tempDir("lock-race2");
    const L = join(dir, ".metadata.lock");
    const dead = plantLock(L, line(await deadPid(), HOST, Date.now(), "00000000000000aa"));
    const h = holdings();
    const e = pausePoint();
    const f = pausePoint();
    const eDir = pausePoint();
    const E = h.actor(
      "E",
      pausingFs([
        { op: "remove", when: (p) => p === dead, point: e },
        { op: "rmdir", when: (p) => p === L, point: eDir },
      ]),
      L,
    );
    const F = h.actor("F", pausingFs([{ op: "remove", when: (p) => p === dead, point: f }]), L);
    assert.equal(await reach(e), true);
    assert.equal(await reach(f), true); // both judged the dead holder stale
    e.go();
    assert.equal(await reach(eDir), true); // E removed the marker; the folder is empty
    const W = h.actor("W", defaultFileSystem, L); // a fresh writer renames its folder over the empty one
    for (let i = 0; i < 100 && holderOf(L) === undefined; i++) await sleep(10);
    assert.match(holderOf(L) ?? "", new RegExp(`pid=${process.pid} `));
    const w = holderOf(L);
    eDir.go(); // E's rmdir finds W's folder not empty
    f.go(); // F's removal of the dead marker finds nothing
    await sleep(200);
    assert.equal(holderOf(L), w, "the fresh holder's lock is untouched");
    assert.equal(h.overlaps, 0);
    h.finish();
    assert.deepEqual((await Promise.all([E, F, W])).sort(), ["E", "F", "W"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Exploration: fast-check's scheduler picks the order of every file operation of three actors on
// the real file system (synchronous calls, so each step is one atomic system call), and crashes
// actors between any two of them. Invariant: no two live actors ever hold the lock at once, and
// every actor that does not crash finishes.

const NOFOLLOW = nfs.constants.O_NOFOLLOW ?? 0;

function errno(e: unknown): never {
  throw e;
}

/** The real file system through synchronous calls: the same system calls as the production layer. */
const syncFs: Partial<FileSystem> = {
  readFile: (path: string, maxBytes?: number) => {
    const fd = nfs.openSync(path, nfs.constants.O_RDONLY | NOFOLLOW);
    try {
      const data = nfs.readFileSync(fd);
      if (maxBytes !== undefined && data.length > maxBytes) errno(Object.assign(new Error("big"), { code: "EFBIG" }));
      return Promise.resolve(new Uint8Array(data));
    } finally {
      nfs.closeSync(fd);
    }
  },
  writeNew: (path: string, data: Uint8Array) => {
    const flags = nfs.constants.O_WRONLY | nfs.constants.O_CREAT | nfs.constants.O_EXCL | NOFOLLOW;
    const fd = nfs.openSync(path, flags, 0o600);
    try {
      nfs.writeSync(fd, data);
    } finally {
      nfs.closeSync(fd);
    }
    return Promise.resolve();
  },
  remove: (path: string) => {
    try {
      nfs.unlinkSync(path);
      return Promise.resolve(true);
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return Promise.resolve(false);
      throw e;
    }
  },
  rename: (from: string, to: string) => Promise.resolve(nfs.renameSync(from, to)),
  rmdir: (path: string) => Promise.resolve(nfs.rmdirSync(path)),
  mkdir: (path: string) => Promise.resolve(void nfs.mkdirSync(path, { recursive: true, mode: 0o700 })),
  readDir: (path: string) => Promise.resolve(nfs.readdirSync(path)),
  lstat: (path: string) => {
    let s: nfs.Stats;
    try {
      s = nfs.lstatSync(path);
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return Promise.resolve(undefined);
      throw e;
    }
    return Promise.resolve(fileInfo(s));
  },
};

describe("lock interleavings", () => {
  test("explored with crashes at every step: never two live holders, every live actor finishes", async () => {
    const base = tempDir("lock-explore");
    let runNo = 0;
    const initial = fc.constantFrom("free", "dead holder", "empty folder", "0.1 lock file", "crashed candidate");
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(fc.option(fc.nat({ max: 60 }), { freq: 2 }), { minLength: 3, maxLength: 3 }),
        initial,
        async (s, crashAt, start) => {
          const dir = join(base, String(runNo++));
          mkdirSync(dir);
          const L = join(dir, ".metadata.lock");
          const dead = new Set<number>([7]);
          let clock = 1_000_000;
          if (start === "dead holder") plantLock(L, line(7, "h", clock - 5, "000000000000dead"));
          if (start === "empty folder") mkdirSync(L);
          if (start === "0.1 lock file") writeFileSync(L, line(7, "h", clock - 5));
          if (start === "crashed candidate") plantLock(`${L}.00000000000000c7.tmp`, line(7, "h", clock - 5));

          const inside = new Set<number>();
          const violations: string[] = [];
          const finished: number[] = [];
          const actors = [0, 1, 2].map((i) => {
            const pid = 100 + i;
            let ops = 0;
            let nonces = 0;
            let crashed!: () => void;
            const crash = new Promise<"crashed">((r) => (crashed = () => r("crashed")));
            const step = async (label: string): Promise<void> => {
              await s.schedule(Promise.resolve(), `${pid} ${label}`);
              if (crashAt[i] !== null && crashAt[i] !== undefined && ops++ === crashAt[i]) {
                dead.add(pid);
                crashed();
                await new Promise(() => {}); // a killed process never takes another step
              }
            };
            const fs = {} as Record<string, unknown>;
            for (const [op, fn] of Object.entries(syncFs)) {
              fs[op] = async (...a: unknown[]) => {
                await step(`${op} ${(a as string[]).map((x) => String(x).slice(dir.length)).join(" ")}`);
                return (fn as (...x: unknown[]) => unknown)(...a);
              };
            }
            const host: LockHost = {
              fs: fs as unknown as FileSystem,
              pid,
              host: "h",
              now: () => clock,
              sleep: async (ms) => {
                clock += Math.ceil(ms);
                await step("sleep");
              },
              nonce: () => `${pid}${String(nonces++).padStart(13, "0")}`,
              isAlive: (p) => Promise.resolve(!dead.has(p)),
            };
            const work = (async () => {
              for (let round = 0; round < 2; round++) {
                const held = await acquireLock(host.fs, L, { timeoutMs: 1e12, staleAfterMs: 1e12, what: "t" }, host);
                for (const other of inside) {
                  if (!dead.has(other)) violations.push(`${pid} entered while ${other} was inside`);
                }
                inside.add(pid);
                await step("inside");
                inside.delete(pid);
                await held.release();
              }
              finished.push(pid);
              return "finished" as const;
            })();
            return Promise.race([work, crash]);
          });
          const outcomes = await s.waitFor(Promise.all(actors));
          assert.deepEqual(violations, [], s.report().map((r) => r.label).join("\n"));
          for (let i = 0; i < 3; i++) {
            assert.equal(outcomes[i], crashAt[i] === null ? "finished" : outcomes[i]);
          }
          // Whatever is left at the lock's name holds no live actor.
          const left = holderOf(L);
          if (left !== undefined) assert.ok(dead.has(parseLock(left)?.pid ?? 7), `left: ${left}`);
        },
      ),
      { numRuns: 300 },
    );
  });
});
