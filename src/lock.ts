/**
 * The per-scope writer lock (SPEC §5): `.metadata.lock`, created exclusively,
 * holding `pid=<pid> host=<host> ts_ms=<ms> nonce=<random>`.
 *
 * Reclaiming a stale lock must never remove a lock that another waiter has
 * just taken. Two rules make that hold:
 * - only the holder of a short-lived guard file (`.metadata.lock.reclaim`) may
 *   remove somebody else's lock, and it does so only after re-reading the lock
 *   under the guard and finding the very bytes it judged stale;
 * - every removal (a release, a reclaim, a stale guard) first renames the file
 *   to a private name, checks that what it moved is what it meant to remove,
 *   and links it back in place otherwise.
 * The guard is itself reclaimed, with the same checks, when its holder is dead.
 */
import { errnoCode, fsError, VaultError } from "./errors.ts";
import { fromUtf8, utf8 } from "./crypto/encoding.ts";
import { type FileSystem, randomSuffix } from "./platform/fs.ts";
import { currentPid, hostName, isProcessAlive } from "./platform/process.ts";

/** Lock settings. */
export interface LockOptions {
  /** How long to wait for the lock before `lock_timeout`. */
  readonly timeoutMs: number;
  /** Age after which a lock whose holder's liveness cannot be known is reclaimed. */
  readonly staleAfterMs: number;
  /** Words for error messages, e.g. `scope "ws:acme"`. */
  readonly what: string;
}

/** A parsed lock file. */
export interface LockInfo {
  readonly pid: number;
  readonly host: string;
  readonly tsMs: number;
  readonly nonce: string;
}

/** A held lock. Release it exactly once. */
export interface HeldLock {
  readonly path: string;
  release(): Promise<void>;
}

const LOCK_LINE = /^pid=(\d+) host=(\S+) ts_ms=(\d+) nonce=([0-9a-f]+)\n?$/;

/** Parses lock file content; `undefined` when it is not a lock line. */
export function parseLock(text: string): LockInfo | undefined {
  const m = LOCK_LINE.exec(text);
  if (!m) return undefined;
  return { pid: Number(m[1]), host: m[2]!, tsMs: Number(m[3]), nonce: m[4]! };
}

/** The content of a new lock file for this process. */
export function lockContent(): string {
  return `pid=${currentPid()} host=${hostName().replace(/\s/g, "_")} ts_ms=${Date.now()} nonce=${randomSuffix()}\n`;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function readOrUndefined(fs: FileSystem, path: string): Promise<Uint8Array | undefined> {
  try {
    return await fs.readFile(path);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    throw fsError("read lock file", path, e);
  }
}

/**
 * Removes `path` only if it still holds `expected`. Returns whether it did.
 * The file is first moved to a private name, so the check and the removal
 * concern one and the same file; a file that turns out to be another one is
 * linked back (a hard link fails rather than overwrite a newer lock).
 */
export async function removeIfUnchanged(fs: FileSystem, path: string, expected: Uint8Array): Promise<boolean> {
  const moved = `${path}.${randomSuffix()}.removing`;
  try {
    await fs.rename(path, moved);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return false;
    throw fsError("remove lock file", path, e);
  }
  let same = false;
  try {
    const got = await fs.readFile(moved);
    same = sameBytes(got, expected);
    if (!same) {
      try {
        await fs.link(moved, path);
      } catch (e) {
        if (errnoCode(e) !== "EEXIST") throw e;
      }
    }
  } finally {
    await fs.remove(moved).catch(() => false);
  }
  return same;
}

/**
 * Whether a lock (or guard) with content `bytes`, last modified at
 * `mtimeMs`, may be reclaimed now: its holder on this host is dead, or its
 * liveness cannot be known and it is older than `staleAfterMs`.
 */
async function isStale(bytes: Uint8Array, mtimeMs: number, staleAfterMs: number): Promise<boolean> {
  let info: LockInfo | undefined;
  try {
    info = parseLock(fromUtf8(bytes));
  } catch {
    info = undefined;
  }
  const now = Date.now();
  if (info === undefined) return now - mtimeMs > staleAfterMs;
  if (info.host === hostName().replace(/\s/g, "_")) {
    const alive = await isProcessAlive(info.pid, info.tsMs);
    if (alive === false) return true;
    if (alive === true) return false;
  }
  return now - Math.max(info.tsMs, 0) > staleAfterMs;
}

/**
 * Tries to remove a stale lock whose bytes were `observed`, under the reclaim
 * guard. Returns whether the lock is gone, so the caller can retry at once.
 */
async function reclaim(fs: FileSystem, path: string, observed: Uint8Array, staleAfterMs: number): Promise<boolean> {
  const guard = `${path}.reclaim`;
  const mine = utf8(lockContent());
  try {
    await fs.createExclusive(guard, mine, false);
  } catch (e) {
    if (errnoCode(e) !== "EEXIST") throw fsError("take lock reclaim guard", guard, e);
    // Someone else is reclaiming. If that someone died mid-way, clear its guard.
    const held = await readOrUndefined(fs, guard);
    const info = held === undefined ? undefined : await fs.lstat(guard).catch(() => undefined);
    if (held !== undefined && info !== undefined && (await isStale(held, info.mtimeMs, staleAfterMs))) {
      await removeIfUnchanged(fs, guard, held);
    }
    return false;
  }
  try {
    const now = await readOrUndefined(fs, path);
    if (now === undefined) return true;
    return sameBytes(now, observed) && (await removeIfUnchanged(fs, path, observed));
  } finally {
    await removeIfUnchanged(fs, guard, mine);
  }
}

function describeHolder(bytes: Uint8Array | undefined): string {
  if (bytes === undefined) return "an unknown holder";
  let info: LockInfo | undefined;
  try {
    info = parseLock(fromUtf8(bytes));
  } catch {
    info = undefined;
  }
  if (info === undefined) return "a holder that wrote an unreadable lock file";
  const age = ((Date.now() - info.tsMs) / 1000).toFixed(1);
  return `pid ${info.pid} on host "${info.host}" (held for ${age} s)`;
}

/**
 * Takes the lock at `path`, waiting with a short back-off, reclaiming stale
 * locks, up to `options.timeoutMs`.
 */
export async function acquireLock(fs: FileSystem, path: string, options: LockOptions): Promise<HeldLock> {
  const start = Date.now();
  let delay = 1;
  let lastSeen: Uint8Array | undefined;
  for (;;) {
    const content = utf8(lockContent());
    try {
      await fs.createExclusive(path, content, false);
      let released = false;
      return {
        path,
        release: async () => {
          if (released) return;
          released = true;
          await removeIfUnchanged(fs, path, content);
        },
      };
    } catch (e) {
      if (errnoCode(e) !== "EEXIST") throw fsError(`take the lock of ${options.what}`, path, e);
    }
    const held = await readOrUndefined(fs, path);
    if (held === undefined) continue; // released meanwhile: try again at once
    lastSeen = held;
    const info = await fs.lstat(path).catch(() => undefined);
    if (info !== undefined && (await isStale(held, info.mtimeMs, options.staleAfterMs))) {
      if (await reclaim(fs, path, held, options.staleAfterMs)) continue;
    }
    const waited = Date.now() - start;
    if (waited >= options.timeoutMs) {
      throw new VaultError(
        "lock_timeout",
        `take the lock of ${options.what} failed: held by ${describeHolder(lastSeen)}; waited ${waited} ms`,
        { hint: `if that process is gone for good, remove "${path}"; or raise lockTimeoutMs` },
      );
    }
    // Jittered exponential back-off, capped so a released lock is noticed quickly.
    await sleep(Math.min(delay, options.timeoutMs - waited) * (0.5 + Math.random() / 2));
    delay = Math.min(delay * 2, 25);
  }
}
