/**
 * Backend choice (docs/FORMAT.md §8): the `backend.kind` marker in the vault folder
 * wins; otherwise the preference decides and the choice is written to the
 * marker, so a vault keeps using the backend it was created with.
 */
import { FILES } from "../store/layout.ts";
import { join } from "../platform/path.ts";
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { fromUtf8, utf8 } from "../crypto/encoding.ts";
import type { FileSystem } from "../platform/fs.ts";
import type { CommandRunner } from "../platform/subprocess.ts";
import { BACKEND_KINDS, type BackendKind, type BlobBackend } from "./backend.ts";
import { EncryptedFileBackend } from "./encrypted_file.ts";

/** What the caller asks for: `auto`, `encrypted_file` or a specific kind. */
export type BackendPreference = "auto" | BackendKind;

/** What choosing and building a backend needs from the platform. */
export interface BackendHost {
  fs: FileSystem;
  run: CommandRunner;
  /** `process.platform`: `linux`, `darwin`, `win32`, … */
  platform: string;
  /** The largest stored object a file-based backend reads (a bigger one is refused unread). */
  maxObjectBytes?: number;
}

/** Whether a backend can run here, and why (not). */
export interface BackendAvailability {
  /** The backend asked about. */
  kind: BackendKind;
  /** Whether it can run on this machine now (a keychain tool was tried, where one is needed). */
  available: boolean;
  /** Why, in words: what answered, or what is missing (a tool's error message included). */
  reason: string;
}

function isKind(v: string): v is BackendKind {
  return (BACKEND_KINDS as readonly string[]).includes(v);
}

/** Checks a preference string (from an option, `PALYRA_VAULT_BACKEND` or `--backend`). */
export function parseBackendPreference(value: string, source: string): BackendPreference {
  const v = value.trim();
  if (v === "auto" || isKind(v)) return v;
  throw new VaultError("backend_unavailable", `choose backend failed: ${source} is ${JSON.stringify(value)}`, {
    hint: `use one of: auto, ${BACKEND_KINDS.join(", ")}`,
  });
}

/** Reads the marker; `undefined` when the vault has none yet. */
export async function readBackendMarker(fs: FileSystem, root: string): Promise<BackendKind | undefined> {
  const path = join(root, FILES.backendMarker);
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(path);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    throw fsError("read backend marker", path, e);
  }
  let text: string;
  try {
    text = fromUtf8(bytes).trim().toLowerCase();
  } catch {
    text = "";
  }
  if (!isKind(text)) {
    throw new VaultError("io", `read backend marker "${path}" failed: ${JSON.stringify(text)} is not a backend kind`, {
      hint: `it should hold one of: ${BACKEND_KINDS.join(", ")}`,
    });
  }
  return text;
}

/** Whether `kind` can run on this machine now. */
export async function backendAvailability(kind: BackendKind, host: BackendHost): Promise<BackendAvailability> {
  const yes = (reason: string) => ({ kind, available: true, reason });
  const no = (reason: string) => ({ kind, available: false, reason });
  switch (kind) {
    case "encrypted_file":
      return yes("runs everywhere");
    case "macos_keychain": {
      if (host.platform !== "darwin") return no("the macOS Keychain exists only on macOS");
      try {
        const r = await host.run("security", ["list-keychains"], { timeoutMs: 3_000 });
        return r.code === 0 ? yes("the security command answered") : no(`security list-keychains exited ${r.code}`);
      } catch (e) {
        return no((e as Error).message);
      }
    }
    case "windows_dpapi": {
      if (host.platform !== "win32") return no("DPAPI exists only on Windows");
      // A round trip through the real scripts, so a PowerShell that cannot run them is never chosen.
      // Each keychain backend is loaded only where it is asked about.
      const { WindowsDpapiBackend } = await import("./windows_dpapi.ts");
      const p = await WindowsDpapiBackend.probe(host.run);
      return { kind, ...p };
    }
    case "linux_secret_service": {
      if (host.platform === "win32" || host.platform === "darwin") {
        return no("the Secret Service is a Linux/BSD desktop service");
      }
      const { LinuxSecretServiceBackend } = await import("./linux_secret_service.ts");
      const p = await LinuxSecretServiceBackend.probe(host.run);
      return { kind, ...p };
    }
  }
}

/** The backend `auto` picks on this machine, and why. */
export async function autoKind(host: BackendHost): Promise<BackendAvailability> {
  const preferred: BackendKind | undefined = host.platform === "darwin"
    ? "macos_keychain"
    : host.platform === "win32"
    ? "windows_dpapi"
    : "linux_secret_service";
  const a = await backendAvailability(preferred, host);
  if (a.available) return a;
  return { kind: "encrypted_file", available: true, reason: `${preferred} is not available here (${a.reason})` };
}

async function construct(kind: BackendKind, root: string, host: BackendHost): Promise<BlobBackend> {
  const limit = host.maxObjectBytes === undefined ? {} : { maxObjectBytes: host.maxObjectBytes };
  switch (kind) {
    case "encrypted_file":
      return new EncryptedFileBackend(root, host.fs, limit);
    case "linux_secret_service":
      return new (await import("./linux_secret_service.ts")).LinuxSecretServiceBackend({ run: host.run });
    case "macos_keychain":
      return new (await import("./macos_keychain.ts")).MacosKeychainBackend({ run: host.run });
    case "windows_dpapi":
      return new (await import("./windows_dpapi.ts")).WindowsDpapiBackend(root, host.fs, { run: host.run, ...limit });
  }
}

async function createBackend(
  kind: BackendKind,
  root: string,
  host: BackendHost,
  marked: boolean,
  known?: BackendAvailability,
): Promise<BlobBackend> {
  // `auto` has just probed its choice: asking again would start the keychain tool twice.
  const a = known?.kind === kind ? known : await backendAvailability(kind, host);
  if (a.available) return await construct(kind, root, host);
  const why = marked
    ? `this vault was created with the "${kind}" backend (see ${
      join(root, FILES.backendMarker)
    }), which cannot run here: ${a.reason}`
    : `the "${kind}" backend cannot run here: ${a.reason}`;
  throw new VaultError("backend_unavailable", `open backend failed: ${why}`, {
    hint: marked
      ? `open the vault where it was created, or start a new vault folder (--vault-dir) with --backend encrypted_file`
      : `use --backend encrypted_file (or PALYRA_VAULT_BACKEND=encrypted_file)`,
  });
}

/**
 * Picks and builds the backend: the kind in `backend.kind` when the vault has
 * one (`marked`), else the preference (`auto` probes what runs here). Nothing
 * is written: a new vault records its kind with `recordBackend` on its first
 * write.
 */
export async function selectBackend(
  root: string,
  marked: BackendKind | undefined,
  preference: BackendPreference,
  host: BackendHost,
): Promise<{ backend: BlobBackend; kind: BackendKind }> {
  if (marked !== undefined) return { backend: await createBackend(marked, root, host, true), kind: marked };
  const auto = preference === "auto" ? await autoKind(host) : undefined;
  const kind = auto?.kind ?? (preference as BackendKind);
  return { backend: await createBackend(kind, root, host, false, auto), kind };
}

/**
 * Writes `backend.kind` for a vault being created. When another process
 * created the vault first with another kind, returns that kind's backend.
 */
export async function recordBackend(
  root: string,
  kind: BackendKind,
  host: BackendHost,
): Promise<BlobBackend | undefined> {
  const path = join(root, FILES.backendMarker);
  try {
    await host.fs.createExclusive(path, utf8(kind), true);
    return undefined;
  } catch (e) {
    if (errnoCode(e) !== "EEXIST") throw fsError("write backend marker", path, e);
  }
  // Another process created the vault first: follow its choice.
  const winner = await readBackendMarker(host.fs, root);
  return winner !== undefined && winner !== kind ? await createBackend(winner, root, host, true) : undefined;
}
