/**
 * The per-scope index, `scopes/<scope_dir>/metadata.json` (docs/FORMAT.md
 * §5.1). A malformed index is an error, never an empty scope: treating it as
 * empty would let the next write drop every entry it held. The folder is not
 * trusted, so every scope and key in it is checked against the grammar before
 * anything shows it to a user.
 */
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { parseJsonObject, utf8 } from "../crypto/encoding.ts";
import { isObjectId } from "../crypto/ids.ts";
import { formatScope, parseScope, validateKey } from "../scope.ts";
import type { FileSystem } from "../platform/fs.ts";

/** The largest index read (about 300 000 entries); a bigger file is refused before it is read. */
export const MAX_INDEX_BYTES = 64 * 1024 * 1024;

/** One entry of a scope index, as stored. */
export interface IndexEntry {
  key: string;
  object_id: string;
  created_at_unix_ms: number;
  updated_at_unix_ms: number;
  value_bytes: number;
}

/** A scope index, as stored. */
export interface ScopeIndex {
  version: 1;
  scope: string;
  entries: IndexEntry[];
}

/** The error for an index file that exists but is not a valid index. */
export function corruptIndex(path: string, why: string, cause?: unknown): VaultError {
  return new VaultError("corrupt", `read index "${path}" failed: it is corrupt (${why})`, {
    hint: "restore metadata.json from a backup; the envelopes in objects/ are untouched",
    cause,
  });
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** The canonical form of a scope string, or `undefined` when it is not one. */
function canonicalScope(text: unknown): string | undefined {
  if (typeof text !== "string") return undefined;
  try {
    const s = formatScope(parseScope(text));
    return s === text ? s : undefined;
  } catch {
    return undefined;
  }
}

function isKey(text: string): boolean {
  try {
    validateKey(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses and checks an index: the scope it names (which must be `scope` when
 * given), every key against the key grammar, every object id against its key.
 */
export function parseIndex(path: string, scope: string | undefined, bytes: Uint8Array): ScopeIndex {
  const d = parseJsonObject(bytes, (why, cause) => corruptIndex(path, why, cause));
  if (d.version !== 1) throw corruptIndex(path, `unsupported version ${JSON.stringify(d.version) ?? "undefined"}`);
  const named = canonicalScope(d.scope);
  if (named === undefined) throw corruptIndex(path, "its scope is not a valid scope");
  if (scope !== undefined && named !== scope) {
    throw corruptIndex(path, `it names another scope than ${JSON.stringify(scope)}`);
  }
  if (!Array.isArray(d.entries)) throw corruptIndex(path, '"entries" is not an array');
  const entries: IndexEntry[] = [];
  let previous: string | undefined;
  for (const raw of d.entries as unknown[]) {
    const e = raw as Record<string, unknown>;
    if (
      typeof e !== "object" || e === null || typeof e.key !== "string" || typeof e.object_id !== "string" ||
      !isObjectId(e.object_id) || !isCount(e.created_at_unix_ms) || !isCount(e.updated_at_unix_ms) ||
      !isCount(e.value_bytes) || !isKey(e.key)
    ) {
      throw corruptIndex(path, `entry ${entries.length} is malformed`);
    }
    if (previous !== undefined && !(previous < e.key)) {
      throw corruptIndex(path, "entries are not sorted by key, or repeat one");
    }
    previous = e.key;
    entries.push({
      key: e.key,
      object_id: e.object_id,
      created_at_unix_ms: e.created_at_unix_ms,
      updated_at_unix_ms: e.updated_at_unix_ms,
      value_bytes: e.value_bytes,
    });
  }
  return { version: 1, scope: named, entries };
}

/** Reads a scope's index; an absent file is an empty index. */
export async function readIndex(fs: FileSystem, path: string, scope: string): Promise<ScopeIndex> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(path, MAX_INDEX_BYTES);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return { version: 1, scope, entries: [] };
    if (errnoCode(e) === "EFBIG") throw corruptIndex(path, `it is larger than ${MAX_INDEX_BYTES} bytes`, e);
    throw fsError("read index", path, e);
  }
  return parseIndex(path, scope, bytes);
}

/** Serialises an index (entries must already be sorted by key). */
export function encodeIndex(index: ScopeIndex): Uint8Array {
  return utf8(JSON.stringify(index));
}

/** Position of `key` in sorted entries: `found` or where it would be inserted. */
export function findEntry(entries: readonly IndexEntry[], key: string): { index: number; found: boolean } {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const k = entries[mid]!.key;
    if (k === key) return { index: mid, found: true };
    if (k < key) lo = mid + 1;
    else hi = mid;
  }
  return { index: lo, found: false };
}
