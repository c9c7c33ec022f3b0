/**
 * The per-scope index (docs/FORMAT.md §5.1): a snapshot,
 * `scopes/<scope_dir>/metadata.json`, and the log of changes since it,
 * `metadata.log` (see `scope_log.ts`). A malformed index is an error, never an
 * empty scope: treating it as empty would let the next write drop every entry
 * it held. The folder is not trusted, so every scope and key in it is checked
 * against the grammar before anything shows it to a user.
 */
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { parseJsonObject, utf8 } from "../crypto/encoding.ts";
import { isObjectId, objectId } from "../crypto/ids.ts";
import { formatScope, parseScope, validateKey } from "../scope.ts";
import type { FileSystem } from "../platform/fs.ts";
import { join } from "../platform/path.ts";
import { FILES } from "./layout.ts";
import { type LogRecord, parseLog } from "./scope_log.ts";

/** The largest index file read (about 300 000 entries); a bigger file is refused before it is read. */
export const MAX_INDEX_BYTES = 64 * 1024 * 1024;

/** One entry of a scope index. */
export interface IndexEntry {
  key: string;
  object_id: string;
  created_at_unix_ms: number;
  updated_at_unix_ms: number;
  value_bytes: number;
}

/**
 * An entry read from a scope index. Its object id is derived from the scope
 * and key (docs/FORMAT.md §2) only when asked for: hashing every id of a large
 * scope would cost more than reading the index.
 */
export class ScopeEntry implements IndexEntry {
  constructor(
    readonly scope: string,
    readonly key: string,
    readonly created_at_unix_ms: number,
    readonly updated_at_unix_ms: number,
    readonly value_bytes: number,
  ) {}

  get object_id(): string {
    return objectId(this.scope, this.key);
  }
}

/** The error for an index file that exists but is not a valid index. */
export function corruptIndex(path: string, why: string, cause?: unknown): VaultError {
  return new VaultError("corrupt", `read index "${path}" failed: it is corrupt (${why})`, {
    hint: "restore the scope's metadata.json and metadata.log from a backup; the envelopes in objects/ are untouched",
    cause,
  });
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** The canonical form of a scope string, or `undefined` when it is not one. */
export function canonicalScope(text: unknown): string | undefined {
  if (typeof text !== "string") return undefined;
  try {
    const s = formatScope(parseScope(text));
    return s === text ? s : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `text` is a key of the key grammar. */
export function isKey(text: string): boolean {
  try {
    validateKey(text);
    return true;
  } catch {
    return false;
  }
}

/** A snapshot as read: version 1 (every entry spelled out) or 2 (lean, with a generation). */
export interface Snapshot {
  version: 1 | 2;
  scope: string;
  /** 0 for version 1, which has none. */
  generation: number;
  entries: ScopeEntry[];
}

/**
 * Parses and checks a snapshot of either version: the scope it names (which
 * must be `scope` when given), every key against the key grammar, the order.
 */
export function parseSnapshot(path: string, scope: string | undefined, bytes: Uint8Array): Snapshot {
  const d = parseJsonObject(bytes, (why, cause) => corruptIndex(path, why, cause));
  if (d.version !== 1 && d.version !== 2) {
    throw corruptIndex(path, `unsupported version ${JSON.stringify(d.version) ?? "undefined"}`);
  }
  const named = canonicalScope(d.scope);
  if (named === undefined) throw corruptIndex(path, "its scope is not a valid scope");
  if (scope !== undefined && named !== scope) {
    throw corruptIndex(path, `it names another scope than ${JSON.stringify(scope)}`);
  }
  const generation = d.version === 2 ? d.generation : 0;
  if (!isCount(generation) || (d.version === 2 && generation < 1)) {
    throw corruptIndex(path, '"generation" is not a positive integer');
  }
  if (!Array.isArray(d.entries)) throw corruptIndex(path, '"entries" is not an array');
  const raw = d.entries as unknown[];
  const entries = new Array<ScopeEntry>(raw.length);
  let previous: string | undefined;
  for (let i = 0; i < raw.length; i++) {
    const entry = d.version === 2 ? leanEntry(named, raw[i]) : fullEntry(named, raw[i]);
    if (entry === undefined) throw corruptIndex(path, `entry ${i} is malformed`);
    if (previous !== undefined && !(previous < entry.key)) {
      throw corruptIndex(path, "entries are not sorted by key, or repeat one");
    }
    previous = entry.key;
    entries[i] = entry;
  }
  return { version: d.version, scope: named, generation, entries };
}

/** Version 2: `[key, created_at_unix_ms, updated_at_unix_ms, value_bytes]`. */
function leanEntry(scope: string, raw: unknown): ScopeEntry | undefined {
  if (!Array.isArray(raw) || raw.length !== 4) return undefined;
  const [key, created, updated, bytes] = raw as unknown[];
  if (typeof key !== "string" || !isCount(created) || !isCount(updated) || !isCount(bytes) || !isKey(key)) {
    return undefined;
  }
  return new ScopeEntry(scope, key, created, updated, bytes);
}

/** Version 1: an object with every field, `object_id` included (checked for its form, then derived again). */
function fullEntry(scope: string, raw: unknown): ScopeEntry | undefined {
  const e = raw as Record<string, unknown>;
  if (
    typeof e !== "object" || e === null || typeof e.key !== "string" || typeof e.object_id !== "string" ||
    !isObjectId(e.object_id) || !isCount(e.created_at_unix_ms) || !isCount(e.updated_at_unix_ms) ||
    !isCount(e.value_bytes) || !isKey(e.key)
  ) {
    return undefined;
  }
  return new ScopeEntry(scope, e.key, e.created_at_unix_ms, e.updated_at_unix_ms, e.value_bytes);
}

/** Serialises a version 2 snapshot; entries are sorted by key here. */
export function encodeSnapshot(scope: string, generation: number, entries: Iterable<IndexEntry>): Uint8Array {
  const rows = [...entries].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((e) => [e.key, e.created_at_unix_ms, e.updated_at_unix_ms, e.value_bytes]);
  return utf8(JSON.stringify({ version: 2, scope, generation, entries: rows }));
}

/** A scope's index as read: its entries and what a writer must know about the files. */
export interface ScopeState {
  scope: string;
  /** The snapshot's version (0: there is none) and generation (0 for version 1 or none). */
  snapshotVersion: 0 | 1 | 2;
  generation: number;
  entries: Map<string, ScopeEntry>;
  /** The log that follows the snapshot: its records and torn bytes; `undefined` when absent or stale. */
  log: { records: number; tornBytes: number } | undefined;
}

/** Reads a file of the index, or `undefined` when it does not exist. */
async function readPart(fs: FileSystem, path: string): Promise<Uint8Array | undefined> {
  try {
    return await fs.readFile(path, MAX_INDEX_BYTES);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    if (errnoCode(e) === "EFBIG") throw corruptIndex(path, `it is larger than ${MAX_INDEX_BYTES} bytes`, e);
    throw fsError("read index", path, e);
  }
}

/** A writer compacting between a reader's two reads: retried this often before the log counts as stale. */
const STALE_RETRIES = 3;

/**
 * Reads a scope's index from its folder: the log first, then the snapshot,
 * so that a compaction between the two reads shows as a log older than the
 * snapshot (read again) and never as a snapshot missing the log's changes.
 * With `scope` undefined, the scope is the one the files name. `undefined`
 * when the folder holds neither file.
 */
export async function loadScopeIndex(
  fs: FileSystem,
  dir: string,
  scope: string | undefined,
): Promise<ScopeState | undefined> {
  const snapshotPath = join(dir, FILES.scopeIndex);
  const logPath = join(dir, FILES.scopeLog);
  for (let attempt = 0;; attempt++) {
    const logBytes = await readPart(fs, logPath);
    const snapshotBytes = await readPart(fs, snapshotPath);
    const snapshot = snapshotBytes === undefined ? undefined : parseSnapshot(snapshotPath, scope, snapshotBytes);
    if (snapshot === undefined && logBytes === undefined) return undefined;
    const named = scope ?? snapshot?.scope;
    const log = logBytes === undefined ? undefined : parseLog(
      logBytes,
      (why) => corruptIndex(logPath, why),
      (s) => {
        const c = canonicalScope(s);
        return c !== undefined && (named === undefined || c === named) ? c : undefined;
      },
      isKey,
    );
    const generation = snapshot?.generation ?? 0;
    if (log !== undefined && log.generation > generation) {
      throw corruptIndex(
        logPath,
        `it follows generation ${log.generation} of metadata.json, which is ${
          snapshot === undefined ? "missing" : `generation ${generation}`
        }`,
      );
    }
    if (log !== undefined && log.generation < generation && attempt < STALE_RETRIES) continue;
    const current = log !== undefined && log.generation === generation ? log : undefined;
    const entries = new Map<string, ScopeEntry>();
    const s = (snapshot?.scope ?? log?.scope)!;
    for (const e of snapshot?.entries ?? []) entries.set(e.key, e);
    for (const r of current?.records ?? []) apply(entries, s, r);
    return {
      scope: s,
      snapshotVersion: snapshot?.version ?? 0,
      generation,
      entries,
      log: current === undefined ? undefined : { records: current.records.length, tornBytes: current.tornBytes },
    };
  }
}

/** Applies one log record; an overwrite keeps the entry's `created_at_unix_ms`, as writers record it. */
export function apply(entries: Map<string, ScopeEntry>, scope: string, r: LogRecord): void {
  if (r.op === "delete") entries.delete(r.key);
  else entries.set(r.key, new ScopeEntry(scope, r.key, r.created, r.updated, r.bytes));
}
