/**
 * `doctor`: what a user needs to know when the vault misbehaves — runtime,
 * folders and their modes, the backend in use, which backends could run here
 * and why not, the state of every scope lock, and problems found on the way
 * (an identity file others may read, files left behind by a crash). It reads
 * no secret and changes nothing.
 */
import { FILES, LEFTOVER_RE } from "./store/layout.ts";
import { dirname, join, sep } from "./platform/path.ts";
import { defaultFileSystem, type FileSystem } from "./platform/fs.ts";
import { defaultIdentityDir, envVar } from "./platform/env.ts";
import { itemFileName } from "./store/identity_store.ts";
import { detectSettled } from "./store/detect.ts";
import { parsePalyraLock } from "./store/palyra_lock.ts";
import { isProcessAlive, isWindows, osPlatform } from "./platform/process.ts";
import { runtimeVersion } from "./platform/runtime.ts";
import { type CommandRunner, runCommand } from "./platform/subprocess.ts";
import { BACKEND_KINDS } from "./backends/backend.ts";
import { autoKind, type BackendAvailability, backendAvailability, readBackendMarker } from "./backends/select.ts";
import { holderState } from "./store/scope_lock.ts";

/** A folder as doctor sees it. */
export interface FolderReport {
  /** The folder's path, as configured (not made canonical). */
  path: string;
  /** Whether anything exists at `path` (a link counts, wherever it leads). */
  exists: boolean;
  /** Octal permission bits, e.g. `"700"`; `null` when absent. */
  mode: string | null;
}

/** One scope lock that is currently present. */
export interface LockReport {
  /** The lock folder (or file). */
  path: string;
  /** `pid <n> on <host>` (`pid <n>` in Palyra's layout), or `unreadable lock file`. */
  holder: string;
  /** Milliseconds since the lock was taken; `null` when that cannot be read. */
  ageMs: number | null;
  /** `alive`, `dead` (reclaimed by the next writer) or `unknown`. */
  holderState: "alive" | "dead" | "unknown";
  /** A lock file of version 0.1 (not a lock folder). */
  legacy: boolean;
}

/** Something doctor found that needs the user's attention. */
export interface DoctorProblem {
  /**
   * `identity_file_mode`, `identity_key_mismatch` (the identity is not the key the vault records, as after a
   * `rekey`), `secrets_under_other_key` (objects that name another key than the record: a `rekey` that stopped
   * midway), `key_record_unreadable`, `leftover_temporary`, `legacy_lock_file`, `stale_lock`, `fsck_failed`, or
   * `fsck_<code>` for what `fsck` would find without opening a secret (`fsck_orphan_object`, `fsck_missing_object`, …;
   * see `FsckCode`).
   */
  code: string;
  /** The file or folder the problem is about. */
  path: string;
  /** What is wrong, in words. */
  message: string;
  /** What to do about it (often a command), or why nothing needs doing. */
  hint: string;
}

/** Everything `doctor` prints. */
export interface DoctorReport {
  /** The runtime and its version: `deno 2.1.4`, `bun 1.1.38`, `node v22.11.0`. */
  runtime: string;
  /** The platform as Node names it: `linux`, `darwin`, `win32`. */
  platform: string;
  /** The vault folder. */
  vault: FolderReport;
  /** The identity folder; `file` is the first identity file found in it, or `null` when there is none. */
  identity: FolderReport & { file: string | null };
  /** The kind in `backend.kind`, or `null` for a vault not created yet. */
  backendInUse: string | null;
  /** `scoped` or `palyra` (the layout of Palyra's daemon), or `null` for a vault not created yet. */
  layout: string | null;
  /** What `auto` would choose for a new vault here. */
  autoChoice: BackendAvailability;
  /** Every backend kind, in the order of `BACKEND_KINDS`, with whether it could run here. */
  backends: BackendAvailability[];
  /** The locks present now: scope locks, and the lock of a vault in Palyra's layout. */
  locks: LockReport[];
  /** What needs the user's attention; empty when all is well. */
  problems: DoctorProblem[];
}

/** Options of `diagnose`. */
export interface DoctorOptions {
  /** Vault folder. Default: `PALYRA_VAULT_DIR`, else `vault` beside the identity folder (as `Vault.open`). */
  root?: string;
  /** Identity folder. Default: `PALYRA_IDENTITY_DIR`, else the platform's default (as `Vault.open`). */
  identityRoot?: string;
  /** The largest value the vault holds (as `Vault.open`'s `maxSecretBytes`): larger objects are reported. Default 65536. */
  maxSecretBytes?: number;
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
  const fs = options.fs ?? defaultFileSystem;
  const run = options.run ?? runCommand;
  const host = { fs, run, platform: osPlatform() };
  const identityDir = options.identityRoot ?? defaultIdentityDir() ?? "";
  const root = options.root ?? envVar("PALYRA_VAULT_DIR") ?? join(dirname(identityDir), "vault");
  const vault = await folder(fs, root);
  const identity = await folder(fs, identityDir);
  let file: string | null = null;
  const identityFiles: string[] = [];
  for (
    const name of [
      itemFileName(FILES.identityCaItem),
      itemFileName(FILES.identityStateItem),
      FILES.v01Identity,
      FILES.v01LegacyIdentity,
    ]
  ) {
    if (await fs.lstat(join(identityDir, name)).catch(() => undefined)) {
      file ??= join(identityDir, name);
      identityFiles.push(join(identityDir, name));
    }
  }
  if (identityFiles.length > 0) identityFiles.push(join(identityDir, FILES.identityStoreKey));
  let layout: string | null = null;
  let migratingTo: string | undefined;
  try {
    // Waits out a stale scoped writer's scope folder in Palyra's layout, as an open does (docs/FORMAT.md §6.6).
    const detected = vault.exists ? await detectSettled(fs, root) : undefined;
    layout = detected?.layout ?? null;
    migratingTo = detected?.migratingTo;
  } catch (e) {
    layout = `unknown (${(e as Error).message})`;
  }
  let backendInUse: string | null = null;
  try {
    backendInUse = vault.exists ? (await readBackendMarker(fs, root)) ?? null : null;
  } catch (e) {
    backendInUse = `unreadable (${(e as Error).message})`;
  }
  const backends = await Promise.all(BACKEND_KINDS.map((k) => backendAvailability(k, host)));
  const problems: DoctorProblem[] = [];
  for (const path of isWindows() ? [] : identityFiles) {
    const info = await fs.lstat(path).catch(() => undefined);
    if (info !== undefined && info.mode !== 0o600) {
      problems.push({
        code: "identity_file_mode",
        path,
        message: `the identity file has mode ${info.mode.toString(8).padStart(3, "0")}, not 600`,
        hint: `chmod 600 "${path}" (it holds the key every secret is sealed with)`,
      });
    }
  }
  const locks: LockReport[] = [];
  const scopes = join(root, FILES.scopesDir);
  const dirs = (await fs.readDir(scopes).catch(() => [] as string[])).sort();
  const folders = [
    root,
    scopes,
    join(root, FILES.objectsDir),
    join(root, FILES.dpapiObjectsDir),
    ...dirs.map((d) => join(scopes, d)),
  ];
  for (const dir of folders) {
    for (const name of (await fs.readDir(dir).catch(() => [] as string[])).sort()) {
      const path = join(dir, name);
      if (name === FILES.scopeLock || (dir === root && name === FILES.kekLock)) {
        locks.push(await describeLock(fs, path));
      } else if (LEFTOVER_RE.test(name)) {
        problems.push({
          code: "leftover_temporary",
          path,
          message: "a temporary file or folder left behind by a process that stopped mid-write",
          hint: `remove it once no palyra process is running (rm -r "${path}")`,
        });
      }
    }
  }
  // How many objects name each key: a re-key that stopped left some under the old one (scoped files only).
  let kekIds: Map<string, number> | undefined;
  if (layout === "scoped" && backendInUse === "encrypted_file") {
    // What fsck would find without the key (leftovers are listed above already).
    const { inspectFolder } = await import("./fsck.ts");
    const { maxEnvelopeBytes } = await import("./vault.ts");
    const inspected = await inspectFolder(fs, root, maxEnvelopeBytes(options.maxSecretBytes ?? 65536)).catch((e) => {
      problems.push({
        code: "fsck_failed",
        path: root,
        message: `the vault folder could not be checked: ${(e as Error).message}`,
        hint: "fix the folder's permissions (or the disk), then run palyra-secrets fsck",
      });
      return { findings: [], kekIds: undefined };
    });
    kekIds = inspected.kekIds;
    for (const f of inspected.findings) {
      if (f.code === "leftover") continue;
      const what = f.scope === null ? "" : ` (${f.scope}${f.key === null ? "" : `/${f.key}`})`;
      problems.push({
        code: `fsck_${f.code}`,
        path: f.path,
        message: f.message + what,
        hint: "palyra-secrets fsck shows every finding; fsck --repair fixes what is safe to fix",
      });
    }
  }
  // The key lock (§5.5) is a migration's while the marker is there (it holds the lock from start to end, §6.6),
  // else a re-key's: decided once here, for every report below.
  const kekLock = locks.find((l) => l.path === join(root, FILES.kekLock));
  const migrationLock = migratingTo !== undefined ? kekLock : undefined;
  const rekeyLock = migratingTo === undefined ? kekLock : undefined;
  if (migratingTo !== undefined) {
    const running = migrationLock?.holderState === "alive";
    problems.push({
      code: "migration_unfinished",
      path: join(root, FILES.migrationMarker),
      message: `a migration to the ${migratingTo} layout ${
        running ? "is running" : "stopped before it finished"
      }: writes are refused until it is done; reads see every secret`,
      hint: running ? "wait for it to finish" : `run palyra-secrets migrate --to ${migratingTo} to finish it`,
    });
  }
  if (layout === "scoped") {
    await checkIdentityKey(fs, root, identityDir, identityFiles.length > 0, rekeyLock, kekIds, problems);
  }
  const palyraLock = join(root, FILES.palyraLock);
  if (layout === "palyra" && (await fs.lstat(palyraLock).catch(() => undefined)) !== undefined) {
    locks.push(await describePalyraLock(fs, palyraLock));
  }
  for (const l of locks) {
    if (l.legacy) {
      problems.push({
        code: "legacy_lock_file",
        path: l.path,
        message: "a lock file written by version 0.1 of this library",
        hint: "stop every process of version 0.1 that uses this vault; the next writer reclaims it",
      });
    }
    if (l.holderState === "dead") {
      problems.push({
        code: "stale_lock",
        path: l.path,
        message: `a lock whose holder (${l.holder}) is gone`,
        hint: l.path.endsWith(`${sep}${FILES.palyraLock}`)
          ? "the next operation reclaims it once it is 30 s old (as Palyra's daemon does); nothing to do"
          : l === migrationLock
          ? `a migration stopped midway: run palyra-secrets migrate --to ${migratingTo} to finish it (it reclaims ` +
            "the lock at once)"
          : l === rekeyLock
          ? "a re-key stopped midway: every secret opens with the old or the new key; run the same rekey again to " +
            "finish it (it reclaims the lock at once)"
          : "the next writer reclaims it at once; nothing to do",
      });
    }
  }
  return {
    runtime: runtimeVersion(),
    platform: host.platform,
    vault,
    identity: { ...identity, file },
    backendInUse,
    layout,
    autoChoice: await autoKind(host),
    backends,
    locks,
    problems,
  };
}

/**
 * Whether the identity is the key the vault records (docs/FORMAT.md §5.7): after a `rekey`, commands run with the
 * old identity folder can neither write nor read, and nothing else says why.
 */
async function checkIdentityKey(
  fs: FileSystem,
  root: string,
  identityDir: string,
  hasIdentity: boolean,
  rekeyLock: LockReport | undefined,
  kekIds: ReadonlyMap<string, number> | undefined,
  problems: DoctorProblem[],
): Promise<void> {
  const { readKekRecord } = await import("./store/kek_record.ts");
  let recorded: string | undefined;
  try {
    recorded = await readKekRecord(fs, root);
  } catch (e) {
    problems.push({
      code: "key_record_unreadable",
      path: join(root, FILES.kekRecord),
      message: (e as Error).message,
      hint: (e as { hint?: string }).hint ?? "check the file's permissions",
    });
    return;
  }
  if (recorded === undefined) return;
  const ours = hasIdentity ? await identityKekId(fs, identityDir) : undefined;
  if (ours === undefined || ours === recorded) {
    // This identity is the vault's key (or none is known): objects that still name another key are secrets a
    // re-key that stopped midway did not move, which open only with the key it moved from.
    const others = [...(kekIds ?? [])].filter(([id, n]) => id !== "" && id !== recorded && n > 0);
    if (others.length === 0 || rekeyLock !== undefined) return;
    const count = others.reduce((sum, [, n]) => sum + n, 0);
    const ids = others.map(([id]) => JSON.stringify(id)).join(", ");
    problems.push({
      code: "secrets_under_other_key",
      path: join(root, FILES.objectsDir),
      message: `${count} secret${count === 1 ? " is" : "s are"} sealed with the key of kek_id ${ids}, not with the ` +
        `key the vault records (kek_id "${recorded}"): a re-key to that key stopped midway (or a writer of an ` +
        "earlier version used another key); they open only with the key they name",
      hint: "finish the re-key: run the same rekey again with the key it moved from (--identity-dir or --kek-file); " +
        "palyra-secrets fsck lists them (foreign_key)",
    });
    return;
  }
  // A re-key records the new key before it moves the secrets (§5.5): while its lock is there, or while objects
  // still name this key (a re-key that failed, on a full disk say, and released its lock), the secrets are split
  // between the two keys, and this identity is the old key a stopped re-key needs to finish.
  const left = kekIds?.get(ours) ?? 0;
  if (rekeyLock !== undefined || left > 0) {
    const running = rekeyLock?.holderState === "alive";
    const still = left === 0 ? "" : ` (${left} still under the latter)`;
    problems.push({
      code: "identity_key_mismatch",
      path: join(root, FILES.kekRecord),
      message:
        `a re-key of the vault to the key of kek_id "${recorded}" ${
          running ? "is running" : "stopped before it finished"
        }: its secrets are split between that key and the key of the identity in "${identityDir}" (kek_id "${ours}")` +
        still,
      hint: running
        ? "wait for it to finish, then open the vault with the key it re-keyed to"
        : "run the same rekey again with this identity (palyra-secrets rekey --to-identity DIR or --to-kek-file " +
          "FILE, the target it was given) to finish it",
    });
    return;
  }
  problems.push({
    code: "identity_key_mismatch",
    path: join(root, FILES.kekRecord),
    message: `the vault is sealed with the key of kek_id "${recorded}", not with the key of the identity in ` +
      `"${identityDir}" (kek_id "${ours}"): commands run with that identity can neither read its secrets nor write`,
    hint: "point --identity-dir (PALYRA_IDENTITY_DIR) at the identity the vault was re-keyed to, or pass --kek-file " +
      "if it was re-keyed to a KEK file",
  });
}

/** The `kek_id` of the identity in `dir`; `undefined` when it cannot be read (opening the vault says why). */
async function identityKekId(fs: FileSystem, dir: string): Promise<string | undefined> {
  const { identityKek, loadIdentity } = await import("./store/identity_store.ts");
  const { kekId } = await import("./crypto/kdf.ts");
  const identity = await loadIdentity({ fs }, dir).catch(() => undefined);
  if (identity === undefined) return undefined;
  const kek = await identityKek(identity, "webcrypto");
  const id = kekId(kek);
  kek.fill(0);
  return id;
}

/** The lock of a vault in Palyra's layout: `pid=<pid> ts_ms=<ms>`, no host (docs/FORMAT.md §6.4). */
async function describePalyraLock(fs: FileSystem, path: string): Promise<LockReport> {
  const info = await fs.lstat(path).catch(() => undefined);
  const text = await fs.readFile(path, 4096).then((b) => new TextDecoder().decode(b)).catch(() => "");
  const parsed = parsePalyraLock(text);
  let holderState: LockReport["holderState"] = "unknown";
  if (parsed !== undefined) {
    const alive = await isProcessAlive(parsed.pid, parsed.tsMs);
    holderState = alive === undefined ? "unknown" : alive ? "alive" : "dead";
  }
  return {
    path,
    holder: parsed === undefined ? "unreadable lock file" : `pid ${parsed.pid}`,
    ageMs: info === undefined ? null : Date.now() - info.mtimeMs,
    holderState,
    legacy: false,
  };
}

async function describeLock(fs: FileSystem, path: string): Promise<LockReport> {
  const found = await holderState(fs, path);
  const info = found?.info;
  return {
    path,
    holder: info === undefined ? "unreadable lock file" : `pid ${info.pid} on ${info.host}`,
    ageMs: found === undefined ? null : Date.now() - Math.min(info?.tsMs ?? found.mtimeMs, found.mtimeMs),
    holderState: found?.state ?? "unknown",
    legacy: found?.legacy ?? false,
  };
}
