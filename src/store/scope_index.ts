/**
 * The per-scope index (docs/FORMAT.md §5.1): a snapshot,
 * `scopes/<scope_dir>/metadata.json`, and the log of changes since it,
 * `metadata.log` (see `scope_log.ts`). A malformed index is an error, never an
 * empty scope: treating it as empty would let the next write drop every entry
 * it held. The folder is not trusted, so every scope and key in it is checked
 * against the grammar before anything shows it to a user.
 */
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { fromUtf8Loose, parseJsonObject, utf8 } from "../crypto/encoding.ts";
import { isObjectId, objectId } from "../crypto/ids.ts";
import { formatScope, isKey, parseScope } from "../scope.ts";
import type { FileSystem } from "../platform/fs.ts";
import { join } from "../platform/path.ts";
import { asciiText } from "../platform/text.ts";
import { FILES } from "./layout.ts";
import { type LogRecord, type ParsedLog, parseLog } from "./scope_log.ts";

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

/**
 * Makes the object an index entry is read into: a `ScopeEntry` for the store
 * itself, or directly what a caller hands out (a vault's list builds its
 * `SecretMetadata` here rather than copying every entry of a large scope).
 */
export type EntryMaker<E extends { key: string }> = (
  scope: string,
  key: string,
  created: number,
  updated: number,
  valueBytes: number,
  /** The object id, where the index stores one (Palyra's does) rather than deriving it. */
  storedObjectId?: string,
) => E;

/** An entry of an index that names its object (Palyra's), whose object id is taken as stored. */
class StoredIdEntry extends ScopeEntry {
  readonly #objectId: string;

  constructor(scope: string, key: string, created: number, updated: number, valueBytes: number, objectId: string) {
    super(scope, key, created, updated, valueBytes);
    this.#objectId = objectId;
  }

  override get object_id(): string {
    return this.#objectId;
  }
}

/** The store's own entries. */
export const scopeEntry: EntryMaker<ScopeEntry> = (scope, key, created, updated, valueBytes, storedObjectId) =>
  storedObjectId === undefined
    ? new ScopeEntry(scope, key, created, updated, valueBytes)
    : new StoredIdEntry(scope, key, created, updated, valueBytes, storedObjectId);

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

/** A snapshot as read: version 1 (every entry spelled out) or 2 (lean, with a generation). */
export interface Snapshot<E extends { key: string } = ScopeEntry> {
  version: 1 | 2;
  scope: string;
  /** 0 for version 1, which has none. */
  generation: number;
  entries: E[];
}

/**
 * Parses and checks a snapshot of either version: the scope it names (which
 * must be `scope` when given), every key against the key grammar, the order.
 * Each entry is made by `make`.
 */
export function parseSnapshot<E extends { key: string }>(
  path: string,
  scope: string | undefined,
  bytes: Uint8Array,
  make: EntryMaker<E>,
): Snapshot<E> {
  // The scan accepts ASCII only, but for the scope it names, where U+FFFD (malformed UTF-8 as read here) is refused.
  const text = asciiText?.(bytes) ?? fromUtf8Loose(bytes);
  return scanCanonical(text, scope, make) ?? parseSnapshotJson(path, scope, bytes, make);
}

/** `parseSnapshot` through `JSON.parse`, for every form a snapshot may take. */
export function parseSnapshotJson<E extends { key: string }>(
  path: string,
  scope: string | undefined,
  bytes: Uint8Array,
  make: EntryMaker<E>,
): Snapshot<E> {
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
  const entries = new Array<E>(raw.length);
  let previous: string | undefined;
  for (let i = 0; i < raw.length; i++) {
    const entry = d.version === 2 ? leanEntry(named, raw[i], make) : fullEntry(named, raw[i], make);
    if (entry === undefined) throw corruptIndex(path, `entry ${i} is malformed`);
    if (previous !== undefined && !(previous < entry.key)) {
      throw corruptIndex(path, "entries are not sorted by key, or repeat one");
    }
    previous = entry.key;
    entries[i] = entry;
  }
  return { version: d.version, scope: named, generation, entries };
}

const ENTRIES = ',"entries":[';
const MAX_KEY_LENGTH = 128;

/**
 * A version 2 snapshot in exactly the form writers produce, read without
 * building a JSON tree: listing a scope of 100 000 secrets is then mostly the
 * cost of its result. `undefined` for any text that strays from that form
 * (spaces, escapes, another field order, a bad entry), which `parseSnapshot`
 * then reads with `JSON.parse` and judges. Nothing it accepts holds U+FFFD,
 * so `text` may be a lenient reading of the file's UTF-8.
 */
export function scanCanonical<E extends { key: string }>(
  text: string,
  scope: string | undefined,
  make: EntryMaker<E>,
): Snapshot<E> | undefined {
  const at = text.indexOf(ENTRIES);
  if (at < 0 || !text.endsWith("]}")) return undefined;
  let head: { version?: unknown; scope?: unknown; generation?: unknown };
  try {
    head = JSON.parse(text.slice(0, at) + "}");
  } catch {
    return undefined;
  }
  const named = canonicalScope(head.scope);
  const generation = head.generation;
  if (
    head.version !== 2 || named === undefined || named.includes("\uFFFD") || (scope !== undefined && named !== scope) ||
    !isCount(generation) ||
    generation < 1 || JSON.stringify({ version: 2, scope: named, generation }) !== text.slice(0, at) + "}"
  ) {
    return undefined;
  }
  const end = text.length - 2; // the "]" closing the entries
  const entries: E[] = [];
  let p = at + ENTRIES.length;
  let previous = "";
  // One loop, its state in locals: reading the numbers through a closure over `p` cost 30% more on every runtime.
  while (p < end) {
    if (entries.length > 0 && text.charCodeAt(p++) !== 44) return undefined; // ,
    if (text.charCodeAt(p++) !== 91 || text.charCodeAt(p++) !== 34) return undefined; // ["
    const start = p;
    for (let c = text.charCodeAt(p); c !== 34; c = text.charCodeAt(++p)) {
      // The key alphabet: a-z 0-9 . _ -
      if (!((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 46 || c === 95 || c === 45)) return undefined;
    }
    if (p === start || p - start > MAX_KEY_LENGTH) return undefined;
    const key = text.slice(start, p++);
    if (entries.length > 0 && !(previous < key)) return undefined;
    previous = key;
    // Three numbers, each `,` and a non-negative safe integer without leading zeros.
    let created = 0;
    let updated = 0;
    let value = 0;
    for (let field = 0; field < 3; field++) {
      if (text.charCodeAt(p++) !== 44) return undefined; // ,
      const first = p;
      value = 0;
      for (let c = text.charCodeAt(p); c >= 48 && c <= 57; c = text.charCodeAt(++p)) value = value * 10 + (c - 48);
      const digits = p - first;
      if (
        digits === 0 || digits > 16 || (digits > 1 && text.charCodeAt(first) === 48) || value > Number.MAX_SAFE_INTEGER
      ) {
        return undefined;
      }
      if (field === 0) created = value;
      else if (field === 1) updated = value;
    }
    if (text.charCodeAt(p++) !== 93) return undefined; // ]
    entries.push(make(named, key, created, updated, value));
  }
  return p === end ? { version: 2, scope: named, generation, entries } : undefined;
}

/** Version 2: `[key, created_at_unix_ms, updated_at_unix_ms, value_bytes]`. */
function leanEntry<E extends { key: string }>(scope: string, raw: unknown, make: EntryMaker<E>): E | undefined {
  if (!Array.isArray(raw) || raw.length !== 4) return undefined;
  const [key, created, updated, bytes] = raw as unknown[];
  if (typeof key !== "string" || !isCount(created) || !isCount(updated) || !isCount(bytes) || !isKey(key)) {
    return undefined;
  }
  return make(scope, key, created, updated, bytes);
}

/** Version 1: an object with every field, `object_id` included (checked for its form, then derived again). */
function fullEntry<E extends { key: string }>(scope: string, raw: unknown, make: EntryMaker<E>): E | undefined {
  const e = raw as Record<string, unknown>;
  if (
    typeof e !== "object" || e === null || typeof e.key !== "string" || typeof e.object_id !== "string" ||
    !isObjectId(e.object_id) || !isCount(e.created_at_unix_ms) || !isCount(e.updated_at_unix_ms) ||
    !isCount(e.value_bytes) || !isKey(e.key)
  ) {
    return undefined;
  }
  return make(scope, e.key, e.created_at_unix_ms, e.updated_at_unix_ms, e.value_bytes);
}

const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/** Serialises a version 2 snapshot; entries are sorted by key here. */
export function encodeSnapshot(scope: string, generation: number, entries: Iterable<IndexEntry>): Uint8Array {
  const rows = [...entries].sort(byKey)
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

/** The two files of a scope index as read together: a snapshot and the log that follows it. */
interface IndexParts<E extends { key: string }> {
  scope: string;
  snapshot: Snapshot<E> | undefined;
  /** The log when it follows this snapshot; `undefined` when absent or stale. */
  log: ParsedLog | undefined;
}

/**
 * Reads a scope's index files: the log first, then the snapshot, so that a
 * compaction between the two reads shows as a log older than the snapshot
 * (read again) and never as a snapshot missing the log's changes. With
 * `scope` undefined, the scope is the one the files name. `undefined` when
 * the folder holds neither file.
 */
async function readParts<E extends { key: string }>(
  fs: FileSystem,
  dir: string,
  scope: string | undefined,
  make: EntryMaker<E>,
): Promise<IndexParts<E> | undefined> {
  const snapshotPath = join(dir, FILES.scopeIndex);
  const logPath = join(dir, FILES.scopeLog);
  for (let attempt = 0;; attempt++) {
    const logBytes = await readPart(fs, logPath);
    const snapshotBytes = await readPart(fs, snapshotPath);
    const snapshot = snapshotBytes === undefined ? undefined : parseSnapshot(snapshotPath, scope, snapshotBytes, make);
    if (snapshot === undefined && logBytes === undefined) return undefined;
    const named = scope ?? snapshot?.scope;
    const log = logBytes === undefined ? undefined : parseLog(
      logBytes,
      (why) => corruptIndex(logPath, why),
      (s) => {
        const c = canonicalScope(s);
        return c !== undefined && (named === undefined || c === named) ? c : undefined;
      },
    );
    const generation = snapshot?.generation ?? 0;
    if (log !== undefined && log.generation > generation) {
      // Gone between the two reads: another process's migration takes scopes/ away (§6.6). Read again; a folder
      // that holds a log without its snapshot each time is damaged.
      if (snapshot === undefined && attempt < STALE_RETRIES) continue;
      throw corruptIndex(
        logPath,
        `it follows generation ${log.generation} of metadata.json, which is ${
          snapshot === undefined ? "missing" : `generation ${generation}`
        }`,
      );
    }
    if (log !== undefined && log.generation < generation && attempt < STALE_RETRIES) continue;
    return {
      scope: (snapshot?.scope ?? log?.scope)!,
      snapshot,
      log: log !== undefined && log.generation === generation ? log : undefined,
    };
  }
}

/** Reads a scope's index for a writer (see `readParts`); `undefined` when the folder holds neither file. */
export async function loadScopeIndex(
  fs: FileSystem,
  dir: string,
  scope: string | undefined,
): Promise<ScopeState | undefined> {
  const parts = await readParts(fs, dir, scope, scopeEntry);
  return parts === undefined ? undefined : stateOf(parts);
}

function stateOf(parts: IndexParts<ScopeEntry>): ScopeState {
  const { snapshot, log } = parts;
  const entries = new Map<string, ScopeEntry>();
  for (const e of snapshot?.entries ?? []) entries.set(e.key, e);
  for (const r of log?.records ?? []) apply(entries, parts.scope, r);
  return {
    scope: parts.scope,
    snapshotVersion: snapshot?.version ?? 0,
    generation: snapshot?.generation ?? 0,
    entries,
    log: log === undefined ? undefined : { records: log.records.length, tornBytes: log.tornBytes },
  };
}

/**
 * The entries of a scope's index, for a reader, sorted by key, each made by
 * `make`; with no log records to apply, the snapshot's own list (no map of
 * the scope is built).
 */
export async function readScopeEntries<E extends { key: string }>(
  fs: FileSystem,
  dir: string,
  scope: string | undefined,
  make: EntryMaker<E>,
): Promise<{ scope: string; entries: E[] } | undefined> {
  const parts = await readParts(fs, dir, scope, make);
  if (parts === undefined) return undefined;
  if (parts.log === undefined || parts.log.records.length === 0) {
    return { scope: parts.scope, entries: parts.snapshot?.entries ?? [] };
  }
  // Only the keys the log changed need a map; the snapshot's other entries stand as they are.
  const changed = new Map<string, E | undefined>();
  for (const r of parts.log.records) {
    changed.set(r.key, r.op === "put" ? make(parts.scope, r.key, r.created, r.updated, r.bytes) : undefined);
  }
  const keys = [...changed.keys()].sort();
  // Each changed key is found in the sorted snapshot by bisection; the entries between them are copied as they are,
  // the snapshot's entry for a changed key dropped and its new entry (if any) put in its place. A log of a few hundred
  // records then costs a few hundred searches and one copy, not a comparison for each of 100 000 entries (on Node 20,
  // 11 ms of a list of 100 000). The copy is a loop into an array made at its largest size: `flat()` over the runs
  // between the changed keys took Node 20 18 ms for 100 000 entries, this loop 4 (and `concat(...runs)` refuses a
  // long log's 200 000 arguments).
  const snapshot = parts.snapshot?.entries ?? [];
  const entries: E[] = new Array(snapshot.length + keys.length);
  let n = 0;
  let from = 0;
  for (const key of keys) {
    const at = firstNotBefore(snapshot, key, from);
    while (from < at) entries[n++] = snapshot[from++]!;
    if (from < snapshot.length && snapshot[from]!.key === key) from++;
    const e = changed.get(key);
    if (e !== undefined) entries[n++] = e;
  }
  while (from < snapshot.length) entries[n++] = snapshot[from++]!;
  entries.length = n;
  return { scope: parts.scope, entries };
}

/** The first index from `from` on whose entry's key is not before `key`, in entries sorted by key. */
function firstNotBefore(entries: readonly { key: string }[], key: string, from: number): number {
  let lo = from;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid]!.key < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Applies one log record; an overwrite keeps the entry's `created_at_unix_ms`, as writers record it. */
export function apply(entries: Map<string, ScopeEntry>, scope: string, r: LogRecord): void {
  if (r.op === "delete") entries.delete(r.key);
  else entries.set(r.key, new ScopeEntry(scope, r.key, r.created, r.updated, r.bytes));
}
