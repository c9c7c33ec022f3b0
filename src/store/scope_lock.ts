/**
 * The per-scope writer lock (docs/FORMAT.md §5.4).
 *
 * The lock is a folder, `.metadata.lock`, holding exactly one marker file
 * named by the holder's random nonce, whose content is
 * `pid=<pid> host=<host> ts_ms=<ms> nonce=<nonce>`.
 *
 * Mutual exclusion rests on two atomic operations whose outcome depends on
 * what is at the name, so no step ever needs "remove it if it is still the one
 * I saw" (which POSIX cannot do, and whose emulations re-create names that
 * another process may have taken in the meantime):
 * - take: build a private folder with the marker inside, then `rename` it to
 *   `.metadata.lock`. A rename onto a folder that is not empty fails, so it
 *   succeeds only when the name is free (absent, or an empty folder left by a
 *   crash, which holds nobody);
 * - remove (a release, or a reclaim of a stale holder): `unlink` the marker
 *   by its unique name, which can only ever remove that one holder, and only
 *   once; the one that succeeds then `rmdir`s the folder, which fails harmlessly
 *   if a new holder has already renamed its own folder into place.
 * A crash between any two steps leaves either a private temporary folder, a
 * stale marker (reclaimed like any stale lock), or an empty folder (free).
 */
import { join } from "../platform/path.ts";
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { fromUtf8, utf8 } from "../crypto/encoding.ts";
import { defaultFileSystem, type FileSystem, randomSuffix } from "../platform/fs.ts";
import { currentPid, hostName, isProcessAlive, pidNamespace } from "../platform/process.ts";

/** Lock settings. */
export interface LockOptions {
  /** How long to wait for the lock before `lock_timeout`. */
  readonly timeoutMs: number;
  /** Age after which a lock whose holder's liveness cannot be known is reclaimed. */
  readonly staleAfterMs: number;
  /** Words for error messages, e.g. `scope "ws:acme"`. */
  readonly what: string;
}

/** What the lock needs from the process and the machine; tests replace it. */
export interface LockHost {
  readonly fs: FileSystem;
  readonly pid: number;
  /** This host's name, as written into lock files (no white space). */
  readonly host: string;
  now(): number;
  sleep(ms: number): Promise<void>;
  /** A fresh random nonce (16 lowercase hex characters). */
  nonce(): string;
  /** `true`, `false`, or `undefined` when it cannot be known (see `isProcessAlive`). */
  isAlive(pid: number, notStartedAfterMs: number): Promise<boolean | undefined>;
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
const NONCE_RE = /^[0-9a-f]{16,64}$/;

/** Parses lock file content; `undefined` when it is not a lock line. */
export function parseLock(text: string): LockInfo | undefined {
  const m = LOCK_LINE.exec(text);
  if (!m) return undefined;
  return { pid: Number(m[1]), host: m[2]!, tsMs: Number(m[3]), nonce: m[4]! };
}

const PIDNS = "@pidns:";
let lockHost: string | undefined;

/**
 * This machine's name as lock files spell it (docs/FORMAT.md §5.4): its host name, and on Linux its PID namespace,
 * so that a pid is judged only by processes that mean the same process by it (a container of the same host name
 * beside the host, or beside another container, judges the other's holders by age, as another machine's).
 */
export function lockHostName(): string {
  if (lockHost !== undefined) return lockHost;
  const ns = pidNamespace();
  lockHost = hostName().replace(/\s/g, "_") + (ns === undefined ? "" : `${PIDNS}${ns}`);
  return lockHost;
}

/**
 * Whether the lock host `a` and the lock host `b` mean the same processes by a pid: the same host name, and the same
 * PID namespace where both name one. A writer that could not read its namespace (Deno without `--allow-all`, an
 * earlier version) names none, and is judged by its host name alone, as before namespaces were written.
 */
export function sameLockHost(a: string, b: string): boolean {
  if (a === b) return true;
  const i = a.indexOf(PIDNS);
  const j = b.indexOf(PIDNS);
  const nameA = i < 0 ? a : a.slice(0, i);
  const nameB = j < 0 ? b : b.slice(0, j);
  return nameA === nameB && (i < 0 || j < 0);
}

/** The lock host of this process. */
export function processLockHost(fs: FileSystem): LockHost {
  return {
    fs,
    pid: currentPid(),
    host: lockHostName(),
    now: () => Date.now(),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    nonce: randomSuffix,
    isAlive: isProcessAlive,
  };
}

/** The content of a lock marker. */
export function lockContent(
  host: Pick<LockHost, "pid" | "host" | "now" | "nonce"> = processLockHost(defaultFileSystem),
  nonce: string = host.nonce(),
): string {
  return `pid=${host.pid} host=${host.host} ts_ms=${host.now()} nonce=${nonce}\n`;
}

function parseBytes(bytes: Uint8Array | undefined): LockInfo | undefined {
  if (bytes === undefined) return undefined;
  try {
    return parseLock(fromUtf8(bytes));
  } catch {
    return undefined;
  }
}

/** A holder as seen by a waiter. */
interface Holder {
  /** The marker's file name inside the lock folder (`undefined` for a 0.1 lock file). */
  readonly marker: string | undefined;
  readonly bytes: Uint8Array | undefined;
  readonly mtimeMs: number;
}

/**
 * Whether a holder may be reclaimed now: its holder on this host is dead, or
 * it is another host's (or unreadable) and older than `staleAfterMs`. Age
 * counts from the older of `ts_ms` and the file time, so a clock running
 * ahead cannot make a lock immortal. A holder on this host whose liveness
 * cannot be known counts as alive.
 */
export async function isStale(
  host: LockHost,
  bytes: Uint8Array | undefined,
  mtimeMs: number,
  staleAfterMs: number,
): Promise<boolean> {
  const info = parseBytes(bytes);
  const now = host.now();
  if (info === undefined) return now - mtimeMs > staleAfterMs;
  if (sameLockHost(info.host, host.host)) {
    return (await host.isAlive(info.pid, info.tsMs)) === false;
  }
  return now - Math.min(info.tsMs, mtimeMs) > staleAfterMs;
}

/** Errors that mean the lock changed between two looks at it: look again. */
const CHANGED = new Set(["ENOENT", "ENOTDIR", "EISDIR"]);

/** Reads the holder of the lock at `path`; `undefined` when the name is free or just changed. */
async function readHolder(fs: FileSystem, path: string): Promise<Holder | "empty" | undefined> {
  try {
    const info = await fs.lstat(path);
    if (info === undefined) return undefined;
    if (info.isSymlink) {
      throw new VaultError("permission", `take lock "${path}" failed: it is a symbolic link`, {
        hint: "remove the symbolic link; the vault never follows links inside its folder",
      });
    }
    if (info.isFile) {
      // A lock file written by version 0.1 of this library.
      return { marker: undefined, bytes: await fs.readFile(path, 4096), mtimeMs: info.mtimeMs };
    }
    const names = await fs.readDir(path);
    const marker = names.find((n) => NONCE_RE.test(n)) ?? names[0];
    if (marker === undefined) return "empty";
    const markerPath = join(path, marker);
    const markerInfo = await fs.lstat(markerPath);
    if (markerInfo === undefined) return undefined;
    const bytes = markerInfo.isFile ? await fs.readFile(markerPath, 4096).catch(() => undefined) : undefined;
    return { marker, bytes, mtimeMs: markerInfo.mtimeMs };
  } catch (e) {
    if (CHANGED.has(errnoCode(e) ?? "")) return undefined;
    throw fsError("read lock", path, e);
  }
}

/** Who holds the lock at `path`, for reports (doctor): `undefined` when nobody does. */
export async function inspectLock(
  fs: FileSystem,
  path: string,
): Promise<{ info: LockInfo | undefined; mtimeMs: number; legacy: boolean } | undefined> {
  const h = await readHolder(fs, path);
  if (h === undefined || h === "empty") return undefined;
  return { info: parseBytes(h.bytes), mtimeMs: h.mtimeMs, legacy: h.marker === undefined };
}

/**
 * Who holds the lock at `path` and whether that process still runs: `dead` only for a holder on this host
 * whose pid is not running (the next writer reclaims it at once); `unknown` for another host or an
 * unreadable marker. `undefined` when no lock is held.
 */
export async function holderState(fs: FileSystem, path: string): Promise<
  | { info: LockInfo | undefined; mtimeMs: number; legacy: boolean; state: "alive" | "dead" | "unknown" }
  | undefined
> {
  const found = await inspectLock(fs, path).catch(() => undefined);
  if (found === undefined) return undefined;
  let state: "alive" | "dead" | "unknown" = "unknown";
  if (found.info !== undefined && sameLockHost(found.info.host, lockHostName())) {
    const alive = await isProcessAlive(found.info.pid, found.info.tsMs);
    state = alive === undefined ? "unknown" : alive ? "alive" : "dead";
  }
  return { ...found, state };
}

/** Removes the folder at `path` if it is empty; anything else is left alone. */
async function removeIfEmpty(fs: FileSystem, path: string): Promise<void> {
  try {
    await fs.rmdir(path);
  } catch (e) {
    const code = errnoCode(e);
    // Not empty: a new holder already took the name. Gone: someone else removed it.
    if (code === "ENOTEMPTY" || code === "EEXIST" || code === "ENOENT" || code === "ENOTDIR") return;
    throw fsError("remove lock", path, e);
  }
}

/**
 * Removes holder `h` from the lock at `path`. Only the one process that
 * unlinks the marker goes on to remove the folder.
 */
async function removeHolder(fs: FileSystem, path: string, h: Holder): Promise<void> {
  if (h.marker === undefined) {
    // A 0.1 lock file: unlink cannot remove a lock folder, so this never touches a current holder.
    await fs.remove(path).catch((e) => {
      // A folder there now (runtimes report EISDIR, EPERM or ENOTEMPTY) is a current lock: leave it.
      const code = errnoCode(e);
      if (code !== "EISDIR" && code !== "EPERM" && code !== "ENOTEMPTY") throw fsError("remove lock", path, e);
    });
    return;
  }
  let removed: boolean;
  try {
    removed = await fs.remove(join(path, h.marker));
  } catch (e) {
    throw fsError("remove lock", path, e);
  }
  if (removed) await removeIfEmpty(fs, path);
}

function describeHolder(host: LockHost, h: Holder | undefined): string {
  if (h === undefined) return "an unknown holder";
  const info = parseBytes(h.bytes);
  if (info === undefined) return "a holder that wrote an unreadable lock file";
  const age = ((host.now() - Math.min(info.tsMs, h.mtimeMs)) / 1000).toFixed(1);
  return `pid ${info.pid} on host "${info.host}" (held for ${age} s)`;
}

/** The private folder a waiter builds before renaming it into place. */
class Candidate {
  readonly dir: string;
  #marker: string | undefined;
  #madeAt = 0;
  #moved = false;

  constructor(readonly host: LockHost, readonly lockPath: string) {
    this.dir = `${lockPath}.${host.nonce()}.tmp`;
  }

  /** Makes sure the folder holds a marker no older than a second, and returns its name. */
  async ready(): Promise<string> {
    const { fs } = this.host;
    if (this.#marker !== undefined && this.host.now() - this.#madeAt < 1_000) return this.#marker;
    try {
      if (this.#marker === undefined) await fs.mkdir(this.dir);
      else await fs.remove(join(this.dir, this.#marker));
      const nonce = this.host.nonce();
      this.#madeAt = this.host.now();
      await fs.writeNew(join(this.dir, nonce), utf8(lockContent(this.host, nonce)));
      this.#marker = nonce;
    } catch (e) {
      throw fsError("prepare lock", this.dir, e);
    }
    return this.#marker;
  }

  /** Notes that the folder was renamed into place: nothing is left to discard. */
  moved(): void {
    this.#moved = true;
  }

  /** Removes what is left of the folder after a failed or abandoned attempt. */
  async discard(): Promise<void> {
    const { fs } = this.host;
    if (this.#moved) return;
    if (this.#marker !== undefined) await fs.remove(join(this.dir, this.#marker)).catch(() => false);
    await fs.rmdir(this.dir).catch(() => {});
  }
}

/**
 * The wait between two tries to take a lock (docs/FORMAT.md §5.4): jittered,
 * from 1 ms doubling to 25 ms, capped so a released lock is noticed quickly,
 * and never past the timeout.
 */
export function backOff(host: LockHost, timeoutMs: number): (waited: number) => Promise<void> {
  let delay = 1;
  return async (waited) => {
    await host.sleep(Math.min(delay, timeoutMs - waited) * (0.5 + Math.random() / 2));
    delay = Math.min(delay * 2, 25);
  };
}

/**
 * Takes the lock at `path`, waiting with a short back-off and reclaiming
 * stale holders, for up to `options.timeoutMs`.
 */
export async function acquireLock(
  fs: FileSystem,
  path: string,
  options: LockOptions,
  host: LockHost = processLockHost(fs),
): Promise<HeldLock> {
  const start = host.now();
  const wait = backOff(host, options.timeoutMs);
  let lastSeen: Holder | undefined;
  const candidate = new Candidate(host, path);
  // Retries that skip the back-off (the name just became free), bounded so a
  // file system that keeps contradicting itself still reaches the timeout.
  let immediate = 0;
  try {
    for (;;) {
      const marker = await candidate.ready();
      try {
        await fs.rename(candidate.dir, path);
        candidate.moved();
        return held(host, path, marker);
      } catch (e) {
        const code = errnoCode(e);
        if (code !== "ENOTEMPTY" && code !== "EEXIST" && code !== "ENOTDIR" && code !== "EISDIR" && code !== "EPERM") {
          throw fsError(`take the lock of ${options.what}`, path, e);
        }
      }
      const holder = await readHolder(fs, path);
      if (holder === "empty") {
        // Left by a crash between a removal's two steps: it holds nobody.
        await removeIfEmpty(fs, path);
      } else if (holder !== undefined) {
        lastSeen = holder;
        if (await isStale(host, holder.bytes, holder.mtimeMs, options.staleAfterMs)) {
          await removeHolder(fs, path, holder);
        } else {
          immediate = Infinity;
        }
      }
      // Freed (released, reclaimed or emptied) meanwhile: try again at once.
      if (++immediate < 64) continue;
      immediate = 0;
      const waited = host.now() - start;
      if (waited >= options.timeoutMs) {
        throw new VaultError(
          "lock_timeout",
          `take the lock of ${options.what} failed: held by ${describeHolder(host, lastSeen)}; waited ${waited} ms`,
          { hint: `if that process is gone for good, remove the folder "${path}"; or raise lockTimeoutMs` },
        );
      }
      await wait(waited);
    }
  } finally {
    // After a successful rename the folder is gone from its private name; this then does nothing.
    await candidate.discard();
  }
}

function held(host: LockHost, path: string, marker: string): HeldLock {
  let released = false;
  return {
    path,
    release: async () => {
      if (released) return;
      released = true;
      // If the marker is gone, a waiter judged us stale and removed us: the folder is not ours to touch.
      await removeHolder(host.fs, path, { marker, bytes: undefined, mtimeMs: 0 });
    },
  };
}
