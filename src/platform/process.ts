/**
 * Facts about processes and the host. Everything here uses `node:` built-ins
 * that Deno, Bun and Node all provide, so no caller asks which runtime it is on.
 */
import { VaultError } from "../errors.ts";
import { readUserFile } from "./fs.ts";
import { os } from "./os.ts";

/** True for the error a runtime throws when a permission was not granted (Deno's `NotCapable`). */
export function isPermissionDenied(e: unknown): boolean {
  const name = (e as { name?: unknown })?.name;
  return name === "NotCapable" || name === "PermissionDenied";
}

/** This process's id. */
export function currentPid(): number {
  return os.pid;
}

/** This machine's host name, as written into lock files. */
export function hostName(): string {
  try {
    return os.hostname() || "unknown-host";
  } catch {
    return "unknown-host";
  }
}

/** The id of this process's PID namespace (Linux), `undefined` elsewhere or when it cannot be read. */
export function pidNamespace(): string | undefined {
  return os.pidNamespace();
}

/** The numeric user id on POSIX systems, `undefined` on Windows. */
export function currentUid(): number | undefined {
  try {
    return os.uid();
  } catch (e) {
    if (!isPermissionDenied(e)) throw e;
    throw new VaultError("permission", "check folder ownership failed: the runtime may not read the user id", {
      hint: "run Deno with --allow-sys=hostname,uid (see the README's permissions)",
      cause: e,
    });
  }
}

/** True on Windows, where mode bits and uids are not meaningful. */
export function isWindows(): boolean {
  return os.platform === "win32";
}

/** The operating system family (`linux`, `darwin`, `win32`, …). */
export function osPlatform(): string {
  return os.platform;
}

let bootTimeMs: number | null | undefined;

async function linuxBootTimeMs(): Promise<number | null> {
  if (bootTimeMs !== undefined) return bootTimeMs;
  try {
    const text = new TextDecoder().decode(await readUserFile("/proc/stat"));
    const m = /^btime (\d+)$/m.exec(text);
    bootTimeMs = m ? Number(m[1]) * 1000 : null;
  } catch {
    bootTimeMs = null;
  }
  return bootTimeMs;
}

// USER_HZ: the unit of /proc/<pid>/stat start times, 100 on every Linux ABI in use.
const CLOCK_TICKS_PER_SECOND = 100;

// Which liveness checks this runtime refused: Deno without --allow-all may not read /proc, and
// without --allow-run may not signal. Each refusal is remembered so it is asked once.
const refused = { proc: false, signal: false, command: false };

/** Reads `/proc/<pid>/stat` (Linux): alive, dead, or `undefined` when not permitted. */
async function procAlive(pid: number, notStartedAfterMs: number | undefined): Promise<boolean | undefined> {
  let stat: string;
  try {
    stat = new TextDecoder().decode(await readUserFile(`/proc/${pid}/stat`));
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return false;
    if (isPermissionDenied(e)) refused.proc = true;
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

/** Signal 0: alive, dead, or `undefined` when not permitted. */
function signalAlive(pid: number): boolean | undefined {
  if (os.signal0 === undefined) {
    refused.signal = true;
    return undefined;
  }
  try {
    return os.signal0(pid);
  } catch (e) {
    if (isPermissionDenied(e)) refused.signal = true;
    return undefined;
  }
}

/**
 * `kill -0 <pid>` as a command: what Deno may do with `--allow-run=kill`
 * when it may neither read /proc nor signal by itself.
 */
async function commandAlive(pid: number): Promise<boolean | undefined> {
  try {
    // Loaded here: starting processes is needed only on this rare path.
    const { runCommand } = await import("./subprocess.ts");
    const r = await runCommand("kill", ["-0", String(pid)], { timeoutMs: 10_000 });
    if (r.code === 0) return true;
    if (/no such process/i.test(r.stderr)) return false;
    if (/not permitted/i.test(r.stderr)) return true;
    return undefined;
  } catch (e) {
    if (isPermissionDenied(e) || (e instanceof VaultError && e.code === "backend_unavailable")) refused.command = true;
    return undefined;
  }
}

/**
 * Whether process `pid` on this host is alive: `true`, `false`, or
 * `undefined` when it cannot be known. A zombie counts as dead. When
 * `notStartedAfterMs` is given and the process with that pid started clearly
 * later (Linux with /proc readable), the pid was reused and the original
 * holder is dead. Where the runtime refuses /proc and signals (Deno without
 * `--allow-all`), it asks `kill -0` (Deno: `--allow-run=kill`).
 */
export async function isProcessAlive(pid: number, notStartedAfterMs?: number): Promise<boolean | undefined> {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (os.platform === "linux" && !refused.proc) {
    const alive = await procAlive(pid, notStartedAfterMs);
    if (alive !== undefined || !refused.proc) return alive;
  }
  if (!refused.signal) {
    const alive = signalAlive(pid);
    if (alive !== undefined || !refused.signal) return alive;
  }
  if (!refused.command && os.platform !== "win32") return await commandAlive(pid);
  return undefined;
}
