/**
 * Facts about processes and the host. Everything here uses `node:` built-ins
 * that Deno, Bun and Node all provide, so no caller asks which runtime it is on.
 */
import { hostname as osHostname } from "node:os";
import { readFile } from "node:fs/promises";
import process from "node:process";

/** This process's id. */
export function currentPid(): number {
  return process.pid;
}

/** This machine's host name, as written into lock files. */
export function hostName(): string {
  try {
    return osHostname() || "unknown-host";
  } catch {
    return "unknown-host";
  }
}

/** The numeric user id on POSIX systems, `undefined` on Windows. */
export function currentUid(): number | undefined {
  return typeof process.getuid === "function" ? process.getuid() : undefined;
}

/** True on Windows, where mode bits and uids are not meaningful. */
export function isWindows(): boolean {
  return process.platform === "win32";
}

/** The operating system family (`linux`, `darwin`, `win32`, …). */
export function osPlatform(): string {
  return process.platform;
}

let bootTimeMs: number | null | undefined;

async function linuxBootTimeMs(): Promise<number | null> {
  if (bootTimeMs !== undefined) return bootTimeMs;
  try {
    const text = new TextDecoder().decode(await readFile("/proc/stat"));
    const m = /^btime (\d+)$/m.exec(text);
    bootTimeMs = m ? Number(m[1]) * 1000 : null;
  } catch {
    bootTimeMs = null;
  }
  return bootTimeMs;
}

// USER_HZ: the unit of /proc/<pid>/stat start times, 100 on every Linux ABI in use.
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * Whether process `pid` on this host is alive: `true`, `false`, or
 * `undefined` when it cannot be known. A zombie counts as dead. When
 * `notStartedAfterMs` is given and the process with that pid started clearly
 * later (Linux only), the pid was reused and the original holder is dead.
 */
export async function isProcessAlive(pid: number, notStartedAfterMs?: number): Promise<boolean | undefined> {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (process.platform === "linux") {
    let stat: string;
    try {
      stat = new TextDecoder().decode(await readFile(`/proc/${pid}/stat`));
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return false;
      return undefined;
    }
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const state = fields[0];
    if (state === "Z" || state === "X" || state === "x") return false;
    if (notStartedAfterMs !== undefined) {
      const boot = await linuxBootTimeMs();
      const ticks = Number(fields[19]);
      if (boot !== null && Number.isFinite(ticks)) {
        const startedMs = boot + (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
        // btime has one-second resolution; allow for it before calling the pid reused.
        if (startedMs > notStartedAfterMs + 2000) return false;
      }
    }
    return true;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ESRCH") return false;
    if (code === "EPERM") return true;
    return undefined;
  }
}
