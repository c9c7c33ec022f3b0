/**
 * The lock of a vault in Palyra's layout (docs/FORMAT.md §6.4), shared with
 * Palyra's daemon: the file `metadata.lock` in the vault root, created
 * exclusively, holding `pid=<pid> ts_ms=<ms>\n`, removed on release. Every
 * operation takes it, reads included, as the daemon does.
 *
 * It is stale when its file time is at least `staleAfterMs` old and its pid
 * is dead or its content does not parse. The daemon removes a stale lock by
 * name; here a reclaimer first renames it to a private name and checks that
 * what it moved is still the stale lock it judged, putting back (by link,
 * which never replaces) a lock that a new holder took in between.
 */
import { FILES } from "./layout.ts";
import { join } from "../platform/path.ts";
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { fromUtf8, utf8 } from "../crypto/encoding.ts";
import { backOff, type HeldLock, type LockHost } from "./scope_lock.ts";

const LOCK_LINE = /^pid=(\d+) ts_ms=(\d+)\n?$/;

/** Parses `pid=<pid> ts_ms=<ms>`; `undefined` when it is not that. */
export function parsePalyraLock(text: string): { pid: number; tsMs: number } | undefined {
  const m = LOCK_LINE.exec(text);
  return m ? { pid: Number(m[1]), tsMs: Number(m[2]) } : undefined;
}

interface Seen {
  text: string;
  mtimeMs: number;
}

async function look(host: LockHost, path: string): Promise<Seen | undefined> {
  try {
    const info = await host.fs.lstat(path);
    if (info === undefined) return undefined;
    if (!info.isFile) {
      throw new VaultError("permission", `take lock "${path}" failed: it is not a regular file`, {
        hint: "remove it; the vault never follows links inside its folder",
      });
    }
    let text: string;
    try {
      text = fromUtf8(await host.fs.readFile(path, 4096));
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return undefined;
      text = "";
    }
    return { text, mtimeMs: info.mtimeMs };
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    throw e instanceof VaultError ? e : fsError("read lock", path, e);
  }
}

async function stale(host: LockHost, seen: Seen, staleAfterMs: number): Promise<boolean> {
  if (host.now() - seen.mtimeMs < staleAfterMs) return false;
  const info = parsePalyraLock(seen.text);
  return info === undefined || (await host.isAlive(info.pid, info.tsMs)) === false;
}

/** Moves a stale lock aside, or puts it back when it turned out to be a new holder's. */
async function reclaim(host: LockHost, path: string, seen: Seen, staleAfterMs: number): Promise<void> {
  const aside = `${path}.stale.${host.nonce()}`;
  try {
    await host.fs.rename(path, aside);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return;
    throw fsError("reclaim stale lock", path, e);
  }
  const moved = await look(host, aside);
  if (moved !== undefined && (moved.text !== seen.text || !(await stale(host, moved, staleAfterMs)))) {
    await host.fs.link(aside, path).catch(() => {});
  }
  await host.fs.remove(aside).catch(() => false);
}

/** Takes `metadata.lock` in `root`, waiting for a live holder up to `timeoutMs`. */
export async function acquirePalyraLock(
  host: LockHost,
  root: string,
  options: { timeoutMs: number; staleAfterMs: number },
): Promise<HeldLock> {
  const path = join(root, FILES.palyraLock);
  const start = host.now();
  const wait = backOff(host, options.timeoutMs);
  let last: Seen | undefined;
  for (;;) {
    const content = `pid=${host.pid} ts_ms=${host.now()}\n`;
    try {
      await host.fs.createExclusive(path, utf8(content), false);
      return held(host, path, content);
    } catch (e) {
      if (errnoCode(e) !== "EEXIST") throw fsError("take the vault lock", path, e);
    }
    const seen = await look(host, path);
    if (seen === undefined) continue;
    last = seen;
    if (await stale(host, seen, options.staleAfterMs)) {
      await reclaim(host, path, seen, options.staleAfterMs);
      continue;
    }
    const waited = host.now() - start;
    if (waited >= options.timeoutMs) {
      const who = parsePalyraLock(last.text);
      throw new VaultError(
        "lock_timeout",
        `take the vault lock failed: "${path}" is held by ${
          who === undefined ? "a holder whose lock file does not parse" : `process ${who.pid}`
        }; waited ${waited} ms`,
        { hint: `if that process is gone for good, remove "${path}"; or raise lockTimeoutMs` },
      );
    }
    await wait(waited);
  }
}

function held(host: LockHost, path: string, content: string): HeldLock {
  let released = false;
  return {
    path,
    release: async () => {
      if (released) return;
      released = true;
      // Removed only while it still holds our line: if a waiter judged us stale, the file is another's.
      const now = await look(host, path).catch(() => undefined);
      if (now?.text === content) await host.fs.remove(path).catch(() => false);
    },
  };
}
