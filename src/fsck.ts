/**
 * `fsck` (docs/FORMAT.md §5.6): every index entry has an object that opens
 * for its scope and key, every object is named by an index, and nothing is
 * left over from a crash. A repair rebuilds index entries from the envelopes'
 * AAD, moves unreadable files aside as `<name>.corrupt-<n>`, removes
 * leftovers older than a minute, and never deletes a readable secret.
 */
import { errnoCode, fsError, VaultError } from "./errors.ts";
import type { EnvelopeCipher } from "./crypto/envelope_async.ts";
import { vaultCipher } from "./store/cipher.ts";
import { envelopePlace, openFailureOf } from "./crypto/envelope_codec.ts";
import { kekId } from "./crypto/kdf.ts";
import { objectId, scopeDirName } from "./crypto/ids.ts";
import { formatScope, parseScope, validateKey } from "./scope.ts";
import type { FileSystem } from "./platform/fs.ts";
import { join } from "./platform/path.ts";
import { FILES, LEFTOVER_RE, SCOPE_DIR_RE, type VaultLayout } from "./store/layout.ts";
import { loadScopeIndex, type ScopeEntry, scopeEntry } from "./store/scope_index.ts";
import { holderState } from "./store/scope_lock.ts";
import { createKekRecord, readKekRecord } from "./store/kek_record.ts";
import { Vault } from "./vault.ts";

/**
 * What `fsck` found:
 * - `index_corrupt`: a scope's index files do not parse (or name another scope);
 * - `missing_object`: an index entry whose object does not exist (a repair puts back a replacement's temporary copy
 *   that opens for it: `object_restored`);
 * - `unreadable_object`: an object that is not an envelope, is stored under another scope or key's name, or does not
 *   authenticate under the vault's key (its data key, when it names this vault's `kek_id` or none; or its value);
 * - `foreign_key`: an object whose data key does not authenticate under the vault's key and that names another
 *   `kek_id` or none, or that names another `kek_id` and an envelope version this vault does not know: left alone,
 *   since another key may open it;
 * - `orphan_object`: an object that no index entry names (a put that stopped before its index write, or a lost index);
 * - `size_mismatch`: an entry whose `value_bytes` differs from the value;
 * - `leftover`: a temporary file or folder left by a process that stopped mid-write.
 *
 * @example
 * ```ts
 * import type { FsckCode } from "@palyra/vault";
 * const code: FsckCode = "orphan_object";
 * ```
 */
export type FsckCode =
  | "index_corrupt"
  | "missing_object"
  | "unreadable_object"
  | "foreign_key"
  | "orphan_object"
  | "size_mismatch"
  | "leftover"
  | "key_record_missing";

/** What a repair did about a finding: `none` without `repair`; `left` when it is not safe to change. */
export type FsckRepair =
  | "none"
  | "left"
  | "entry_added"
  | "entry_removed"
  | "entry_fixed"
  | "moved_aside"
  | "removed"
  | "index_rebuilt"
  | "record_written"
  | "object_restored";

/** One thing `fsck` found, and what a repair did about it. */
export interface FsckFinding {
  /** What kind of problem it is. */
  code: FsckCode;
  /** The file or folder it is about. */
  path: string;
  /** The scope involved, when known. */
  scope: string | null;
  /** The key involved, when known. */
  key: string | null;
  /** What is wrong, in words. Never a value. */
  message: string;
  /** What a repair did about it. */
  repair: FsckRepair;
}

/** What `checkVault` found and did. */
export interface FsckReport {
  /** Index entries checked. */
  secrets: number;
  /** Object files looked at (encrypted_file backend in the scoped layout; otherwise the objects the entries name). */
  objects: number;
  /** Everything found, in the order found. */
  findings: FsckFinding[];
  /** Findings a repair resolved. */
  repaired: number;
  /** Findings still standing (all of them without `repair`). */
  unresolved: number;
}

/**
 * Options of `checkVault`.
 *
 * @example
 * ```ts
 * import type { FsckOptions } from "@palyra/vault";
 * const options: FsckOptions = { repair: true };
 * ```
 */
export interface FsckOptions {
  /** Repair what can be repaired safely. Default `false`: only report. */
  repair?: boolean;
}

/** A leftover younger than this may belong to a writer still running, and is left alone. */
const LEFTOVER_MIN_AGE_MS = 60_000;

/** What one object file holds, as far as fsck could tell. */
interface ObjectState {
  path: string;
  name: string;
  /** Its place by its AAD when that matches its file name. */
  place: { scope: string; key: string } | undefined;
  /** `ok`: opens (size known); `foreign`: sealed with another key; `bad`: unreadable; `unchecked`: no key to try. */
  status: "ok" | "foreign" | "bad" | "unchecked";
  why: string;
  valueBytes: number;
  mtimeMs: number;
  referenced: boolean;
}

interface Context {
  fs: FileSystem;
  root: string;
  /** Opens objects under the vault's KEK; `undefined` when fsck has no key (doctor). */
  cipher: EnvelopeCipher | undefined;
  /** The `kek_id` of that KEK, computed once (hashing the KEK per object would copy it per object). */
  kekId: string | undefined;
  maxObjectBytes: number;
  findings: FsckFinding[];
  /** How many objects name each `kek_id` (`""` for none), counted when set. */
  kekIds?: Map<string, number>;
}

/**
 * Why an envelope did not open under this vault's key (`ours`), `named` being
 * the `kek_id` it names: `foreign` when another key, or a newer writer, may
 * open it (a re-key half done, another identity), which fsck never judges
 * unreadable. Only a data key that did not authenticate says so, or a version
 * or algorithm this vault does not know beside another key's `kek_id`. An
 * envelope no reader could open, or a value whose data key this vault's key
 * opened, is unreadable whatever its `kek_id` says: a damaged one may name
 * none. Any error that is no judgement of the envelope (a wiped key, a failed
 * read) is thrown again: it stops fsck.
 */
function judgeFailure(e: unknown, named: string | undefined, ours: string): { foreign: boolean; why: string } {
  const failure = openFailureOf(e);
  if (failure === undefined) throw e;
  const unknown = failure.step === "unsupported";
  if (named !== ours && (failure.step === "data_key" || (unknown && named !== undefined))) {
    const version = unknown ? ` (${failure.why})` : "";
    return {
      foreign: true,
      why: named === undefined
        ? `it does not open with this vault's key and names no key (kek_id)${version}`
        : `it is sealed with kek_id ${JSON.stringify(named)}, not this vault's ${JSON.stringify(ours)}${version}`,
    };
  }
  return {
    foreign: false,
    why: failure.step === "form" || unknown
      ? `it is not a well-formed envelope (${failure.why})`
      : "it does not authenticate under this vault's key (it was modified)",
  };
}

/**
 * Reads an object file and judges it, without keeping its bytes. `id` is the object the file should be: its own
 * name, or for a replacement's temporary copy the object it was to replace.
 */
async function judgeObject(ctx: Context, dir: string, name: string, id = name): Promise<ObjectState> {
  const path = join(dir, name);
  const info = await ctx.fs.lstat(path);
  const state: ObjectState = {
    path,
    name,
    place: undefined,
    status: "bad",
    why: "",
    valueBytes: 0,
    mtimeMs: info?.mtimeMs ?? 0,
    referenced: false,
  };
  if (info === undefined || !info.isFile) {
    state.why = "it is not a regular file";
    return state;
  }
  let bytes: Uint8Array;
  try {
    bytes = await ctx.fs.readFile(path, ctx.maxObjectBytes);
  } catch (e) {
    if ((e as { code?: string }).code === "EFBIG") {
      state.why = "it is larger than any envelope this vault writes";
      return state;
    }
    throw e;
  }
  const place = envelopePlace(bytes);
  if (place === undefined) {
    state.why = "it is not an envelope (its JSON or AAD does not parse)";
    return state;
  }
  ctx.kekIds?.set(place.kekId ?? "", (ctx.kekIds.get(place.kekId ?? "") ?? 0) + 1);
  let scope: string;
  try {
    scope = formatScope(parseScope(place.scope));
    validateKey(place.key);
  } catch {
    state.why = "its AAD names no valid scope and key";
    return state;
  }
  if (scope !== place.scope || objectId(scope, place.key) !== id) {
    state.why = "its AAD names another scope or key than its file name";
    return state;
  }
  state.place = { scope, key: place.key };
  if (ctx.cipher === undefined) {
    state.status = "unchecked";
    return state;
  }
  try {
    const value = await ctx.cipher.open(scope, place.key, bytes);
    state.valueBytes = value.length;
    value.fill(0);
    state.status = "ok";
  } catch (e) {
    const judged = judgeFailure(e, place.kekId, ctx.kekId!);
    state.status = judged.foreign ? "foreign" : "bad";
    state.why = judged.why;
  }
  return state;
}

/**
 * The newest temporary copy in `objects/` of a replacement of `id` (`.<id>.<16 hex>.tmp`, docs/FORMAT.md §5.2) whose
 * envelope opens with the vault's key for `scope` and `key`; `undefined` without one, or without the key.
 */
async function restorableCopy(
  ctx: Context,
  dir: string,
  id: string,
  scope: string,
  key: string,
): Promise<ObjectState | undefined> {
  if (ctx.cipher === undefined) return undefined;
  const copyName = new RegExp(`^\\.${id}\\.[0-9a-f]{16}\\.tmp$`);
  let best: ObjectState | undefined;
  for (const name of (await names(ctx.fs, dir)).filter((n) => copyName.test(n))) {
    // Judged without counting its kek_id: it is not an object yet.
    const { kekIds: _, ...uncounted } = ctx;
    const copy = await judgeObject(uncounted, dir, name, id);
    if (copy.status !== "ok" || copy.place?.scope !== scope || copy.place.key !== key) continue;
    if (best === undefined || copy.mtimeMs > best.mtimeMs) best = copy;
  }
  return best;
}

/** A folder's names, sorted; none when it does not exist. Any other failure stops fsck: a folder that could
 * not be read must never look empty to a repair. */
async function names(fs: FileSystem, dir: string): Promise<string[]> {
  try {
    return (await fs.readDir(dir)).sort();
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return [];
    throw fsError("list folder", dir, e);
  }
}

/** `<path>.corrupt-<n>` with the first free `n`. */
async function moveAside(fs: FileSystem, dir: string, name: string): Promise<void> {
  for (let n = 1;; n++) {
    const target = join(dir, `${name}.corrupt-${n}`);
    if ((await fs.lstat(target)) !== undefined) continue;
    await fs.rename(join(dir, name), target);
    await fs.syncDir(dir);
    return;
  }
}

/** Removes a leftover file, or a leftover folder with the files in it. */
async function removeLeftover(fs: FileSystem, path: string): Promise<void> {
  const info = await fs.lstat(path);
  if (info === undefined) return;
  if (info.isDirectory) {
    for (const n of await names(fs, path)) await fs.remove(join(path, n));
    await fs.rmdir(path);
  } else {
    await fs.remove(path);
  }
}

/**
 * The findings that need no key (docs/FORMAT.md §5.6): corrupt indexes,
 * entries without objects, objects without entries or under the wrong name,
 * leftovers. `doctor` reports these; it opens no secret. `kekIds` counts the
 * objects that name each key, as their envelopes say in the clear.
 *
 * @internal
 */
export async function inspectFolder(
  fs: FileSystem,
  root: string,
  maxObjectBytes: number,
): Promise<{ findings: FsckFinding[]; kekIds: Map<string, number> }> {
  const kekIds = new Map<string, number>();
  const ctx: Context = { fs, root, cipher: undefined, kekId: undefined, maxObjectBytes, findings: [], kekIds };
  await scan(ctx, undefined, false);
  return { findings: ctx.findings, kekIds };
}

/** The scan of a scoped vault folder with its objects in `objects/`, and the repair of what it found. */
async function scan(ctx: Context, layout: VaultLayout | undefined, repair: boolean): Promise<number> {
  const { fs, root, findings } = ctx;
  const scopesDir = join(root, FILES.scopesDir);
  const objectsDir = join(root, FILES.objectsDir);
  const found = (f: Omit<FsckFinding, "repair">): FsckFinding => {
    const finding: FsckFinding = { ...f, repair: "none" };
    findings.push(finding);
    return finding;
  };
  // Leftovers, everywhere a writer makes temporary names.
  const scopeFolders = (await names(fs, scopesDir)).filter((n) => SCOPE_DIR_RE.test(n));
  const leftovers: FsckFinding[] = [];
  for (const dir of [root, scopesDir, objectsDir, ...scopeFolders.map((n) => join(scopesDir, n))]) {
    for (const name of await names(fs, dir)) {
      if (!LEFTOVER_RE.test(name)) continue;
      leftovers.push(found({
        code: "leftover",
        path: join(dir, name),
        scope: null,
        key: null,
        message: "a temporary file or folder left by a process that stopped mid-write",
      }));
    }
  }
  // The indexes.
  const indexes = new Map<string, { scope: string; entries: Map<string, ScopeEntry> }>();
  const corrupt = new Map<string, FsckFinding>();
  for (const name of scopeFolders) {
    const dir = join(scopesDir, name);
    try {
      const state = await loadScopeIndex(fs, dir, undefined);
      if (state === undefined) continue;
      if (scopeDirName(state.scope) !== name) {
        throw new VaultError("corrupt", `its scope ${JSON.stringify(state.scope)} does not match its folder`);
      }
      indexes.set(name, { scope: state.scope, entries: state.entries });
    } catch (e) {
      if (!VaultError.is(e, "corrupt")) throw e;
      corrupt.set(
        name,
        found({
          code: "index_corrupt",
          path: dir,
          scope: null,
          key: null,
          message: `the scope's index cannot be read: ${e.message}`,
        }),
      );
    }
  }
  // Locks whose holder is gone (a process killed while writing): the next writer reclaims them.
  const staleLocks: Array<[string, FsckFinding]> = [];
  for (const name of scopeFolders) {
    const path = join(scopesDir, name, FILES.scopeLock);
    const held = await holderState(fs, path);
    if (held?.state !== "dead") continue;
    staleLocks.push([
      name,
      found({
        code: "leftover",
        path,
        scope: indexes.get(name)?.scope ?? null,
        key: null,
        message: `a lock whose holder (pid ${held.info?.pid} on ${held.info?.host}) is gone`,
      }),
    ]);
  }
  // The objects.
  const objects = new Map<string, ObjectState>();
  for (const name of await names(fs, objectsDir)) {
    if (/^obj_[0-9a-f]{64}$/.test(name)) objects.set(name, await judgeObject(ctx, objectsDir, name));
  }
  // fsck looks without a lock, so a writer in another process may have changed an index since it was read above:
  // an entry without its object, or an object without its entry, is judged again against the index as it is once
  // the objects were listed (`null`: that index cannot be read now, so the first reading stands).
  const reread = new Map<string, Promise<Map<string, ScopeEntry> | null>>();
  const entryNow = async (scope: string, key: string): Promise<ScopeEntry | undefined | null> => {
    const name = scopeDirName(scope);
    let entries = reread.get(name);
    if (entries === undefined) {
      entries = loadScopeIndex(fs, join(scopesDir, name), scope).then((s) => s?.entries ?? new Map(), () => null);
      reread.set(name, entries);
    }
    const now = await entries;
    return now === null ? null : now.get(key);
  };
  /** Findings a writer's own change explained after all (a set or a delete in flight): left out of the report. */
  const explained = new Set<FsckFinding>();
  const orphanOf = new Map<ObjectState, FsckFinding>();
  // Entries against objects.
  type Plan = {
    add: ObjectState[];
    remove: Array<[string, FsckFinding]>;
    restore: Array<[ScopeEntry, ObjectState, FsckFinding]>;
    fix: Array<[ScopeEntry, number, FsckFinding]>;
    rebuild: boolean;
  };
  const plans = new Map<string, Plan>();
  const plan = (scope: string): Plan => {
    let p = plans.get(scope);
    if (p === undefined) plans.set(scope, p = { add: [], remove: [], restore: [], fix: [], rebuild: false });
    return p;
  };
  const repairs = new Map<FsckFinding, () => void>();
  const asideFirst: ObjectState[] = [];
  const unnamed: string[] = [];
  /** Temporary copies a repair moves into place: no leftovers to remove. */
  const restored = new Set<string>();
  let secrets = 0;
  for (const { scope, entries } of indexes.values()) {
    for (const entry of entries.values()) {
      secrets++;
      const obj = objects.get(entry.object_id);
      const where = { scope, key: entry.key };
      if (obj === undefined) {
        // Deleted since the index was read, or written since the objects were listed.
        const now = await entryNow(scope, entry.key);
        if (now === undefined || (now !== null && (await fs.lstat(join(objectsDir, entry.object_id))) !== undefined)) {
          continue;
        }
        // A file system whose rename removes the file it replaces first (exFAT through FUSE) loses the object when
        // it stops between the two steps; the replacement's temporary copy then holds the value being written.
        const copy = await restorableCopy(ctx, objectsDir, entry.object_id, scope, entry.key);
        const f = found({
          code: "missing_object",
          path: join(objectsDir, entry.object_id),
          ...where,
          message: "the index names this secret, but its object does not exist" +
            (copy === undefined
              ? ""
              : `; "${copy.name}", the copy a replacement was moving into place, holds a value that opens`),
        });
        if (copy === undefined) {
          plan(scope).remove.push([entry.key, f]);
          repairs.set(f, () => (f.repair = "entry_removed"));
        } else {
          plan(scope).restore.push([entry, copy, f]);
          restored.add(copy.path);
        }
        continue;
      }
      obj.referenced = true;
      if (obj.status === "bad") {
        const f = found({ code: "unreadable_object", path: obj.path, ...where, message: obj.why });
        plan(scope).remove.push([entry.key, f]);
        asideFirst.push(obj);
        repairs.set(f, () => (f.repair = "moved_aside"));
      } else if (obj.status === "foreign") {
        found({ code: "foreign_key", path: obj.path, ...where, message: obj.why }).repair = repair ? "left" : "none";
      } else if (obj.status === "ok" && obj.valueBytes !== entry.value_bytes) {
        // Overwritten or deleted since the index was read: the entry as it is now may agree.
        const now = await entryNow(scope, entry.key);
        if (now !== null && (now === undefined || now.value_bytes === obj.valueBytes)) continue;
        const f = found({
          code: "size_mismatch",
          path: obj.path,
          ...where,
          message: `the index says ${entry.value_bytes} bytes, the value has ${obj.valueBytes}`,
        });
        plan(scope).fix.push([entry, obj.valueBytes, f]);
        repairs.set(f, () => (f.repair = "entry_fixed"));
      }
    }
  }
  for (const [name, f] of corrupt) {
    // Rebuilt from the objects whose AAD names a scope of this folder.
    const scope = [...objects.values()].find((o) => o.place !== undefined && scopeDirName(o.place.scope) === name)
      ?.place?.scope;
    if (scope === undefined) {
      // No object of this folder opens: there is nothing to rebuild from. Writers refuse an index they cannot
      // read, so none is changing it; the files are kept beside it and the scope starts empty.
      repairs.set(f, () => (f.repair = "moved_aside"));
      unnamed.push(name);
      continue;
    }
    f.scope = scope;
    plan(scope).rebuild = true;
    repairs.set(f, () => (f.repair = "index_rebuilt"));
  }
  for (const obj of objects.values()) {
    if (obj.referenced) continue;
    // A put whose index write landed after the index was read.
    if (obj.status !== "bad" && obj.place !== undefined) {
      const now = await entryNow(obj.place.scope, obj.place.key);
      if (now !== null && now?.object_id === obj.name) continue;
    }
    const where = { scope: obj.place?.scope ?? null, key: obj.place?.key ?? null };
    if (obj.status === "bad") {
      const f = found({ code: "unreadable_object", path: obj.path, ...where, message: obj.why });
      asideFirst.push(obj);
      repairs.set(f, () => (f.repair = "moved_aside"));
      continue;
    }
    const f = found({
      code: "orphan_object",
      path: obj.path,
      ...where,
      message: obj.status === "foreign"
        ? `no index entry names it, and ${obj.why}`
        : "no index entry names it (a write that stopped before its index was written, or a lost index)",
    });
    if (obj.status === "ok") {
      plan(obj.place!.scope).add.push(obj);
      orphanOf.set(obj, f);
      repairs.set(f, () => (f.repair = "entry_added"));
    } else if (repair) {
      f.repair = "left";
    }
  }
  // The key record (§5.7): a vault written before it existed has none, and takes writes through any key. It is
  // written only once every object is proven to be the vault's: one of another key leaves it unproven which is.
  let recordMissing: FsckFinding | undefined;
  if (objects.size > 0 && (await readKekRecord(fs, root).catch(() => null)) === undefined) {
    const foreign = [...objects.values()].some((o) => o.status === "foreign");
    recordMissing = found({
      code: "key_record_missing",
      path: join(root, FILES.kekRecord),
      scope: null,
      key: null,
      message: "the vault does not record the key it is sealed under, so a write through another key is not refused" +
        (foreign ? "; objects sealed with another key leave it unproven which key is the vault's" : ""),
    });
    if (repair && (foreign || ctx.kekId === undefined)) recordMissing.repair = "left";
  }
  if (!repair || layout === undefined) return secrets;
  if (recordMissing !== undefined && recordMissing.repair === "none") {
    await createKekRecord(fs, root, ctx.kekId!);
    recordMissing.repair = "record_written";
  }
  // Repairs: unreadable objects aside, then each scope's index under its lock, then old leftovers.
  for (const obj of asideFirst) await moveAside(fs, objectsDir, obj.name);
  for (const name of unnamed) {
    const dir = join(scopesDir, name);
    for (const file of [FILES.scopeIndex, FILES.scopeLog]) {
      if ((await fs.lstat(join(dir, file))) !== undefined) await moveAside(fs, dir, file);
    }
  }
  for (const [scope, p] of [...plans].sort(([a], [b]) => (a < b ? -1 : 1))) {
    await layout.locked(scope, "write", async () => {
      const dir = join(scopesDir, scopeDirName(scope));
      if (p.rebuild) {
        for (const file of [FILES.scopeIndex, FILES.scopeLog]) {
          if ((await fs.lstat(join(dir, file))) !== undefined) await moveAside(fs, dir, file);
        }
      }
      const index = await layout.readIndex(scope);
      for (const [e, copy, f] of p.restore) {
        // Under the lock no replacement is in flight: a writer that put the object back meanwhile wins.
        const target = join(objectsDir, e.object_id);
        if (index.find(scope, e.key) === undefined || (await fs.lstat(target)) !== undefined) {
          explained.add(f);
          restored.delete(copy.path); // an old leftover now, like any other
          continue;
        }
        await fs.rename(copy.path, target);
        await fs.syncDir(objectsDir);
        if (copy.valueBytes !== e.value_bytes) {
          // The index still has the replaced value's entry: the restored one is the write that was under way.
          await index.put(scope, {
            key: e.key,
            object_id: e.object_id,
            created_at_unix_ms: e.created_at_unix_ms,
            updated_at_unix_ms: Math.trunc(copy.mtimeMs),
            value_bytes: copy.valueBytes,
          });
        }
        f.repair = "object_restored";
      }
      for (const [key, f] of p.remove) {
        if (index.find(scope, key) === undefined) {
          // A writer deleted it meanwhile: its entry is gone, and a missing object is no longer anything wrong.
          if (f.code === "missing_object") explained.add(f);
          continue;
        }
        // Only an entry whose object is still absent (or was moved aside above) loses it: one a writer put
        // back meanwhile keeps its entry.
        if ((await fs.lstat(join(objectsDir, objectId(scope, key)))) !== undefined) {
          repairs.set(f, () => (f.repair = "left"));
          continue;
        }
        await index.delete(scope, key);
      }
      for (const [e, bytes, f] of p.fix) {
        // An entry a writer changed meanwhile is the writer's: the size judged here was of an older value.
        const cur = index.find(scope, e.key);
        if (
          cur === undefined || cur.value_bytes !== e.value_bytes || cur.updated_at_unix_ms !== e.updated_at_unix_ms
        ) {
          explained.add(f);
          continue;
        }
        await index.put(scope, {
          key: e.key,
          object_id: e.object_id,
          created_at_unix_ms: e.created_at_unix_ms,
          updated_at_unix_ms: e.updated_at_unix_ms,
          value_bytes: bytes,
        });
      }
      for (const obj of p.add) {
        const key = obj.place!.key;
        // A writer named it meanwhile (its own entry stands), or deleted it: it was a write in flight, no orphan.
        if (index.find(scope, key) !== undefined || (await fs.lstat(obj.path)) === undefined) {
          explained.add(orphanOf.get(obj)!);
          continue;
        }
        const t = Math.trunc(obj.mtimeMs);
        await index.put(scope, {
          key,
          object_id: obj.name,
          created_at_unix_ms: t,
          updated_at_unix_ms: t,
          value_bytes: obj.valueBytes,
        });
      }
    });
  }
  for (const mark of repairs.values()) mark();
  for (const [name, f] of staleLocks) {
    const scope = indexes.get(name)?.scope ?? f.scope;
    if (scope === null) {
      f.repair = "left";
      continue;
    }
    // Taking the lock reclaims a dead holder's (docs/FORMAT.md §5.4), exactly as a writer would.
    await layout.locked(scope, "write", () => Promise.resolve());
    f.repair = "removed";
  }
  const now = Date.now();
  for (const f of leftovers) {
    if (restored.has(f.path)) {
      if (repair) f.repair = "object_restored";
      continue;
    }
    const info = await fs.lstat(f.path);
    if (info === undefined) {
      explained.add(f); // a write in flight that finished meanwhile
      continue;
    }
    if (now - info.mtimeMs < LEFTOVER_MIN_AGE_MS) {
      f.repair = "left";
      continue;
    }
    await removeLeftover(fs, f.path);
    f.repair = "removed";
  }
  for (const f of explained) findings.splice(findings.indexOf(f), 1);
  return secrets;
}

/**
 * Checks a vault (docs/FORMAT.md §5.6): every index entry has an object that
 * opens for its scope and key with the vault's key, every object is named by
 * an index, sizes agree, and nothing is left over from a crash. With
 * `repair`, entries are rebuilt from the envelopes' AAD (a lost or corrupt
 * index included), unreadable files are moved aside as `<name>.corrupt-<n>`,
 * leftovers older than a minute are removed; a secret that opens is never
 * moved or deleted, and an object sealed with another key is left alone.
 *
 * Orphans, leftovers and index rebuilding need the `encrypted_file` backend in
 * the scoped layout; elsewhere the entries and their objects are checked, and
 * `repair` is refused.
 *
 * @throws {VaultError} `not_found` when there is no vault; `backend_unavailable` for `repair` outside the
 * encrypted_file backend in the scoped layout.
 * @example
 * ```ts
 * import { checkVault, Vault } from "@palyra/vault";
 * using vault = await Vault.open();
 * const report = await checkVault(vault);
 * for (const f of report.findings) console.log(f.code, f.scope, f.key, f.message);
 * ```
 */
export async function checkVault(vault: Vault, options: FsckOptions = {}): Promise<FsckReport> {
  const parts = await Vault._parts(vault, "check vault");
  const repair = options.repair === true;
  if (!parts.exists) {
    throw new VaultError("not_found", `check vault failed: there is no vault at "${parts.root}"`, {
      hint: "check the vault folder (--vault-dir, PALYRA_VAULT_DIR)",
    });
  }
  const kek = await parts.kek();
  const ours = kekId(kek);
  const ctx: Context = {
    fs: parts.fs,
    root: parts.root,
    cipher: vaultCipher(kek, parts.kekEngine, ours),
    kekId: ours,
    maxObjectBytes: parts.maxObjectBytes,
    findings: [],
  };
  const files = parts.layout.name === "scoped" && parts.backendKind === "encrypted_file";
  let secrets: number;
  let objects: number;
  if (files) {
    secrets = await scan(ctx, parts.layout, repair);
    objects = (await names(parts.fs, join(parts.root, FILES.objectsDir))).filter((n) => /^obj_[0-9a-f]{64}$/.test(n))
      .length;
  } else {
    if (repair) {
      throw new VaultError(
        "backend_unavailable",
        `check vault failed: --repair works on the encrypted_file backend in the scoped layout, not on this ${parts.backendKind} vault in the ${parts.layout.name} layout`,
        { hint: "run it without --repair to see what is wrong" },
      );
    }
    const entries = await parts.layout.list(scopeEntry);
    for (const e of entries) {
      let bytes: Uint8Array;
      const where = { path: e.object_id, scope: e.scope, key: e.key, repair: "none" as const };
      try {
        bytes = await parts.layout.objects.get(e.object_id);
      } catch (err) {
        if (!VaultError.is(err, "not_found")) throw err;
        ctx.findings.push({
          code: "missing_object",
          ...where,
          message: "the index names this secret, but its object does not exist",
        });
        continue;
      }
      try {
        const value = await ctx.cipher!.open(e.scope, e.key, bytes);
        if (value.length !== e.value_bytes) {
          ctx.findings.push({
            code: "size_mismatch",
            ...where,
            message: `the index says ${e.value_bytes} bytes, the value has ${value.length}`,
          });
        }
        value.fill(0);
      } catch (err) {
        const judged = judgeFailure(err, envelopePlace(bytes)?.kekId, ours);
        ctx.findings.push({
          code: judged.foreign ? "foreign_key" : "unreadable_object",
          ...where,
          message: judged.why,
        });
      }
    }
    secrets = entries.length;
    objects = entries.length;
  }
  const standing = (f: FsckFinding) => f.repair === "none" || f.repair === "left";
  return {
    secrets,
    objects,
    findings: ctx.findings,
    repaired: ctx.findings.filter((f) => !standing(f)).length,
    unresolved: ctx.findings.filter(standing).length,
  };
}
