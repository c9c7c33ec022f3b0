/**
 * `doctor` (issue #4): what a user needs to know when the vault misbehaves —
 * runtime, folders and their modes, the backend in use, which backends could
 * run here and why not, and the state of every scope lock. It reads no secret.
 */
import { dirname, join } from "node:path";
import { fromUtf8 } from "./crypto/encoding.ts";
import { type FileSystem, nodeFileSystem } from "./platform/fs.ts";
import { defaultIdentityDir, envVar } from "./platform/env.ts";
import { hostName, isProcessAlive, osPlatform } from "./platform/process.ts";
import { runtimeVersion } from "./platform/runtime.ts";
import { type CommandRunner, runCommand } from "./platform/subprocess.ts";
import { BACKEND_KINDS } from "./backends/backend.ts";
import { autoKind, type BackendAvailability, backendAvailability, readBackendMarker } from "./backends/select.ts";
import { parseLock } from "./lock.ts";

/** A folder as doctor sees it. */
export interface FolderReport {
  path: string;
  exists: boolean;
  /** Octal permission bits, e.g. `"700"`; `null` when absent. */
  mode: string | null;
}

/** One scope lock that is currently present. */
export interface LockReport {
  path: string;
  holder: string;
  ageMs: number | null;
  /** `alive`, `dead` (reclaimed by the next writer) or `unknown`. */
  holderState: "alive" | "dead" | "unknown";
}

/** Everything `doctor` prints. */
export interface DoctorReport {
  runtime: string;
  platform: string;
  vault: FolderReport;
  identity: FolderReport & { file: string | null };
  /** The kind in `backend.kind`, or `null` for a vault not created yet. */
  backendInUse: string | null;
  /** What `auto` would choose for a new vault here. */
  autoChoice: BackendAvailability;
  backends: BackendAvailability[];
  locks: LockReport[];
}

/** Options of `diagnose`. */
export interface DoctorOptions {
  root?: string;
  identityRoot?: string;
  /** @internal */
  fs?: FileSystem;
  /** @internal */
  run?: CommandRunner;
}

async function folder(fs: FileSystem, path: string): Promise<FolderReport> {
  const info = await fs.lstat(path).catch(() => undefined);
  return { path, exists: info !== undefined, mode: info === undefined ? null : info.mode.toString(8).padStart(3, "0") };
}

/**
 * Inspects the vault and identity folders and the backends, without opening
 * the vault or reading any secret.
 *
 * @example
 * ```ts
 * import { diagnose } from "@palyra/vault";
 * const report = await diagnose();
 * console.log(report.backendInUse, report.backends.filter((b) => b.available).map((b) => b.kind));
 * ```
 */
export async function diagnose(options: DoctorOptions = {}): Promise<DoctorReport> {
  const fs = options.fs ?? nodeFileSystem;
  const run = options.run ?? runCommand;
  const host = { fs, run, platform: osPlatform() };
  const identityDir = options.identityRoot ?? defaultIdentityDir() ?? "";
  const root = options.root ?? envVar("PALYRA_VAULT_DIR") ?? join(dirname(identityDir), "vault");
  const vault = await folder(fs, root);
  const identity = await folder(fs, identityDir);
  let file: string | null = null;
  for (const name of ["state.v1.json", join("ca", "state.json")]) {
    if (file === null && (await fs.lstat(join(identityDir, name)).catch(() => undefined))) {
      file = join(identityDir, name);
    }
  }
  let backendInUse: string | null = null;
  try {
    backendInUse = vault.exists ? (await readBackendMarker(fs, root)) ?? null : null;
  } catch (e) {
    backendInUse = `unreadable (${(e as Error).message})`;
  }
  const backends = await Promise.all(BACKEND_KINDS.map((k) => backendAvailability(k, host)));
  const locks: LockReport[] = [];
  const scopes = join(root, "scopes");
  const dirs = await fs.readDir(scopes).catch(() => [] as string[]);
  for (const d of dirs.sort()) {
    for (const name of [".metadata.lock", ".metadata.lock.reclaim"]) {
      const path = join(scopes, d, name);
      const bytes = await fs.readFile(path).catch(() => undefined);
      if (bytes === undefined) continue;
      let text = "";
      try {
        text = fromUtf8(bytes).trim();
      } catch {
        text = "";
      }
      const info = parseLock(text);
      let holderState: LockReport["holderState"] = "unknown";
      if (info !== undefined && info.host === hostName().replace(/\s/g, "_")) {
        const alive = await isProcessAlive(info.pid, info.tsMs);
        holderState = alive === undefined ? "unknown" : alive ? "alive" : "dead";
      }
      locks.push({
        path,
        holder: info === undefined ? "unreadable lock file" : `pid ${info.pid} on ${info.host}`,
        ageMs: info === undefined ? null : Date.now() - info.tsMs,
        holderState,
      });
    }
  }
  return {
    runtime: runtimeVersion(),
    platform: host.platform,
    vault,
    identity: { ...identity, file },
    backendInUse,
    autoChoice: await autoKind(host),
    backends,
    locks,
  };
}
