/**
 * Writing one scope's index in the scoped layout (docs/FORMAT.md §5.1), and
 * what else of the index the layout uses: `scoped_layout.ts` loads this
 * module on first use, so that a `get`, which reads one object, loads none of
 * the index's code.
 */
import { FILES } from "./layout.ts";
import { join } from "../platform/path.ts";
import { fsError } from "../errors.ts";
import type { FileSystem } from "../platform/fs.ts";
import { encodeSnapshot, type IndexEntry, loadScopeIndex, ScopeEntry, type ScopeState } from "./scope_index.ts";
import { encodeLogHeader, encodeLogRecord, type LogRecord } from "./scope_log.ts";
import { concatBytes } from "../crypto/encoding.ts";
import type { ChangeOutcome, IndexView } from "./layout.ts";

export { acquireLock } from "./scope_lock.ts";
export { loadScopeIndex, readScopeEntries } from "./scope_index.ts";

/** A log holds at least this many records before it is folded into a new snapshot. */
const COMPACT_MIN_RECORDS = 256;

/** The state of a scope with no index yet. */
export function emptyState(scope: string): ScopeState {
  return { scope, snapshotVersion: 0, generation: 0, entries: new Map(), log: undefined };
}

/**
 * Writes one scope's index under its lock (docs/FORMAT.md §5.1): a change is
 * one record appended to the log, durable before it returns. The log is
 * folded into a new snapshot when it has grown to a quarter of the entries
 * (so the work is constant per write, averaged), when its tail was torn, and
 * for the first write to a scope or to an index of version 1.
 */
export class IndexWriter implements IndexView {
  #last: { key: string; before: ScopeEntry | undefined; after: ScopeEntry | undefined } | undefined;
  /** Set when a write failed: what is on disk is then read again before the next change. */
  #unsure = false;

  constructor(
    readonly fs: FileSystem,
    readonly dir: string,
    public state: ScopeState,
    /** Called after every change: with the state when it is what the disk holds, `undefined` when unsure. */
    readonly settled: (state: ScopeState | undefined) => Promise<void>,
  ) {}

  find(_scope: string, key: string): IndexEntry | undefined {
    return this.state.entries.get(key);
  }

  put(_scope: string, e: IndexEntry): Promise<void> {
    const s = this.state.scope;
    return this.#change(e.key, new ScopeEntry(s, e.key, e.created_at_unix_ms, e.updated_at_unix_ms, e.value_bytes));
  }

  delete(_scope: string, key: string): Promise<void> {
    return this.#change(key, undefined);
  }

  undo(): Promise<void> {
    const last = this.#last!;
    return this.#change(last.key, last.before);
  }

  async outcome(): Promise<ChangeOutcome> {
    const last = this.#last!;
    let now: ScopeEntry | undefined;
    try {
      now = (await loadScopeIndex(this.fs, this.dir, this.state.scope))?.entries.get(last.key);
    } catch {
      return "unknown";
    }
    return same(now, last.after) ? "done" : same(now, last.before) ? "not_done" : "unknown";
  }

  async #change(key: string, after: ScopeEntry | undefined): Promise<void> {
    if (this.#unsure) {
      this.state = await loadScopeIndex(this.fs, this.dir, this.state.scope) ?? emptyState(this.state.scope);
      this.#unsure = false;
    }
    const { state, fs, dir } = this;
    const before = state.entries.get(key);
    this.#last = { key, before, after };
    if (after === undefined) state.entries.delete(key);
    else state.entries.set(key, after);
    const record: LogRecord = after === undefined ? { op: "delete", key } : {
      op: "put",
      key,
      created: after.created_at_unix_ms,
      updated: after.updated_at_unix_ms,
      bytes: after.value_bytes,
    };
    const log = state.log;
    const snapshotPath = join(dir, FILES.scopeIndex);
    const logPath = join(dir, FILES.scopeLog);
    let path = logPath;
    try {
      if (
        state.snapshotVersion !== 2 || (log !== undefined && log.tornBytes > 0) ||
        (log !== undefined && log.records + 1 >= Math.max(COMPACT_MIN_RECORDS, state.entries.size / 4))
      ) {
        path = snapshotPath;
        await fs.writeFileAtomic(
          snapshotPath,
          encodeSnapshot(state.scope, state.generation + 1, state.entries.values()),
        );
        state.snapshotVersion = 2;
        state.generation++;
        state.log = undefined;
        // A log left behind is older than the snapshot, which readers ignore; the next write replaces it.
        await fs.remove(logPath).catch(() => false);
      } else if (log === undefined) {
        await fs.writeFileAtomic(
          logPath,
          concatBytes(encodeLogHeader(state.scope, state.generation), encodeLogRecord(record)),
        );
        state.log = { records: 1, tornBytes: 0 };
      } else {
        await fs.appendFile(logPath, encodeLogRecord(record));
        log.records++;
      }
    } catch (e) {
      if (before === undefined) state.entries.delete(key);
      else state.entries.set(key, before);
      this.#unsure = true;
      await this.settled(undefined);
      throw fsError(`write index of scope ${JSON.stringify(state.scope)}`, path, e);
    }
    await this.settled(state);
  }
}

function same(a: ScopeEntry | undefined, b: ScopeEntry | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.key === b.key && a.created_at_unix_ms === b.created_at_unix_ms &&
    a.updated_at_unix_ms === b.updated_at_unix_ms && a.value_bytes === b.value_bytes;
}
