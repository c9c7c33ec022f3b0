/**
 * Backend choice (SPEC §6): the `backend.kind` marker in the vault folder
 * wins; otherwise the preference decides and the choice is written to the
 * marker, so a vault keeps using the backend it was created with.
 */
import { join } from "node:path";
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { fromUtf8, utf8 } from "../crypto/encoding.ts";
import type { FileSystem } from "../platform/fs.ts";
import { BACKEND_KINDS, type BackendKind, type BlobBackend } from "./backend.ts";
import { EncryptedFileBackend } from "./encrypted_file.ts";

/** What the caller asks for: `auto`, `encrypted_file` or a specific kind. */
export type BackendPreference = "auto" | BackendKind;

/** The marker file, relative to the vault root. */
export const BACKEND_MARKER = "backend.kind";

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
  const path = join(root, BACKEND_MARKER);
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(path);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    throw fsError("read backend marker", path, e);
  }
  let text: string;
  try {
    text = fromUtf8(bytes).trim();
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

/** The backend `auto` picks on this machine. */
function autoKind(): BackendKind {
  // OS keychain backends are not part of this build; the file backend runs everywhere.
  return "encrypted_file";
}

function createBackend(kind: BackendKind, root: string, fs: FileSystem, marked: boolean): BlobBackend {
  if (kind === "encrypted_file") return new EncryptedFileBackend(root, fs);
  const why = marked
    ? `this vault was created with the "${kind}" backend (see ${BACKEND_MARKER}), which cannot run here`
    : `the "${kind}" backend cannot run here`;
  throw new VaultError("backend_unavailable", `open backend failed: ${why}`, {
    hint: marked
      ? `open the vault on the machine that created it, or start a new vault folder with the encrypted_file backend`
      : `use --backend encrypted_file (or PALYRA_VAULT_BACKEND=encrypted_file)`,
  });
}

/** Picks, creates and (for a new vault) records the backend. */
export async function selectBackend(fs: FileSystem, root: string, preference: BackendPreference): Promise<BlobBackend> {
  const marked = await readBackendMarker(fs, root);
  if (marked !== undefined) return createBackend(marked, root, fs, true);
  const kind = preference === "auto" ? autoKind() : preference;
  const backend = createBackend(kind, root, fs, false);
  const path = join(root, BACKEND_MARKER);
  try {
    await fs.createExclusive(path, utf8(kind + "\n"), true);
  } catch (e) {
    if (errnoCode(e) !== "EEXIST") throw fsError("write backend marker", path, e);
    // Another process created the vault first: follow its choice.
    const winner = await readBackendMarker(fs, root);
    if (winner !== undefined && winner !== kind) return createBackend(winner, root, fs, true);
  }
  return backend;
}
