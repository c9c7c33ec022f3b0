/**
 * Converting a vault folder between the scoped layout and Palyra's layout in
 * place (docs/FORMAT.md §6.6). The new layout is written beside the old one,
 * every secret is opened from it, and only then does one rename make it the
 * vault; the old layout is removed last. The marker `.migrating` (written
 * first, removed last) keeps writers out and tells a second run where to go
 * on, so a crash at any point leaves a vault that opens with every secret.
 * Before the commit, a migration that fails is undone, and asking for the
 * old layout undoes one that a crash interrupted.
 */
import { FILES, PALYRA_OBJECTS_STORE } from "./layout.ts";
import { join } from "../platform/path.ts";
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { utf8 } from "../crypto/encoding.ts";
import { openEnvelope, sealEnvelope } from "../crypto/envelope.ts";
import { isObjectId, objectId, scopeDirName } from "../crypto/ids.ts";
import { kekId } from "../crypto/kdf.ts";
import type { FileSystem } from "../platform/fs.ts";
import { secureDir } from "./folders.ts";
import { encodeSnapshot, type IndexEntry, MAX_INDEX_BYTES, scopeEntry } from "./scope_index.ts";
import { detectSettled } from "./detect.ts";
import { parseScope, toTaggedScope } from "../scope.ts";
import type { LayoutName, ScopedEntry, VaultLayout } from "./layout.ts";
import { encodePalyraIndex, parsePalyraIndex } from "./palyra_index.ts";
import { PalyraLayout } from "./palyra_layout.ts";
import { encodeObjectsStore, MAX_OBJECTS_STORE_BYTES, PalyraObjects } from "./palyra_objects.ts";
import { otherKeyError, readKekRecord, writeKekRecord } from "./kek_record.ts";
import { withKekLock } from "./kek_lock.ts";
import { drainScopeWriters, type LockLimits, ScopedLayout } from "./scoped_layout.ts";
import { EncryptedFileBackend } from "../backends/encrypted_file.ts";

/**
 * What a migration did.
 *
 * @example
 * ```ts
 * import { migrateVault, type MigrateResult } from "@palyra/vault";
 * const r: MigrateResult = await migrateVault({ to: "scoped" });
 * if (r.resumed) console.log("finished an interrupted migration");
 * ```
 */
export interface MigrateResult {
  /** The layout the vault was in. */
  from: LayoutName;
  /** The layout it is in now. */
  to: LayoutName;
  /** Secrets in the vault afterwards. */
  secrets: number;
  /** True when the vault was already in the target layout and nothing was done. */
  alreadyDone: boolean;
  /** True when this run finished a migration that an earlier run started. */
  resumed: boolean;
}

/** What a migration works with (taken from an open vault). */
export interface MigrationParts {
  fs: FileSystem;
  root: string;
  layout: VaultLayout;
  backendKind: string;
  kek: () => Promise<Uint8Array>;
  limits: LockLimits;
  maxObjectBytes: number;
}

/** Where the old layout goes at the commit rename, before it is removed. */
const RETIRED: Record<LayoutName, string> = { scoped: ".scopes.migrated", palyra: ".metadata.json.migrated" };

async function exists(fs: FileSystem, path: string): Promise<boolean> {
  return (await fs.lstat(path).catch(() => undefined)) !== undefined;
}

/**
 * Removes a file or a folder tree; absent is fine. Links are removed, never followed. A folder that is not
 * empty after its listing was removed is listed again, a few times: a scoped writer whose path lookup began
 * before the commit's rename can still make its lock's folder in the renamed tree (§6.6).
 */
async function removeTree(fs: FileSystem, path: string): Promise<void> {
  const info = await fs.lstat(path).catch((e) => {
    throw fsError("inspect the old layout", path, e);
  });
  if (info === undefined) return;
  if (!info.isDirectory) {
    await fs.remove(path).catch((e) => {
      throw fsError("remove the old layout", path, e);
    });
    return;
  }
  for (let attempt = 0;; attempt++) {
    const names = await fs.readDir(path).catch((e) => {
      if (errnoCode(e) === "ENOENT") return undefined;
      throw fsError("list the old layout", path, e);
    });
    if (names === undefined) return;
    for (const name of names) await removeTree(fs, join(path, name));
    try {
      await fs.rmdir(path);
      return;
    } catch (e) {
      const code = errnoCode(e);
      if (code === "ENOENT") return;
      if (code === "ENOTEMPTY" && attempt < 5) continue;
      throw fsError("remove the old layout", path, e);
    }
  }
}

/** Reads every secret's entry and envelope from the layout that holds them now. */
async function readSource(
  parts: MigrationParts,
  from: LayoutName,
): Promise<Array<ScopedEntry & { envelope: Uint8Array }>> {
  const { fs, root } = parts;
  if (from === "palyra") {
    // Read directly: the caller already holds metadata.lock.
    const path = join(root, FILES.palyraIndex);
    const bytes = await fs.readFile(path, MAX_INDEX_BYTES).catch((e) => {
      if (errnoCode(e) === "ENOENT") return undefined;
      throw fsError("read index", path, e);
    });
    const entries = bytes === undefined ? [] : parsePalyraIndex(path, bytes);
    const objects = new PalyraObjects(fs, root, parts.maxObjectBytes);
    const out = [];
    for (const e of entries) out.push({ ...e, envelope: await objects.get(e.object_id) });
    return out;
  }
  const layout = layoutOf(parts, "scoped");
  const out = [];
  for (const e of await layout.list(scopeEntry)) {
    // A ScopeEntry derives object_id on request, which a spread would not copy.
    out.push({ ...e, object_id: e.object_id, envelope: await layout.objects.get(e.object_id) });
  }
  return out;
}

async function writeTarget(
  parts: MigrationParts,
  to: LayoutName,
  entries: ReadonlyArray<ScopedEntry & { envelope: Uint8Array }>,
  id: string | undefined,
): Promise<void> {
  const { fs, root } = parts;
  if (to === "palyra") {
    const objects = new Map(entries.map((e) => [e.object_id, e.envelope]));
    const store = encodeObjectsStore(objects);
    if (store.length > MAX_OBJECTS_STORE_BYTES) {
      throw new VaultError(
        "value_too_large",
        `migrate vault "${root}" failed: its objects would take ${store.length} bytes; Palyra's layout keeps at most ` +
          `${MAX_OBJECTS_STORE_BYTES}`,
        { hint: "keep this vault in the scoped layout, or delete secrets it no longer needs first" },
      );
    }
    await secureDir(fs, join(root, FILES.objectsDir), "objects folder");
    // The objects first: an index never names an object that is not durable.
    await writeFile(fs, join(root, PALYRA_OBJECTS_STORE), store, "objects store");
    await writeFile(fs, join(root, FILES.palyraIndex), encodePalyraIndex(entries), "index");
    return;
  }
  const objects = new EncryptedFileBackend(root, fs, { maxObjectBytes: parts.maxObjectBytes });
  const byScope = new Map<string, IndexEntry[]>();
  for (const e of entries) {
    await objects.put(e.object_id, e.envelope);
    const { scope, envelope: _, ...entry } = e;
    byScope.set(scope, [...(byScope.get(scope) ?? []), entry]);
  }
  for (const [scope, list] of byScope) {
    const dir = join(root, FILES.scopesDir, scopeDirName(scope));
    await secureDir(fs, dir, `folder of scope ${JSON.stringify(scope)}`);
    await writeFile(
      fs,
      join(dir, FILES.scopeIndex),
      encodeSnapshot(scope, 1, list),
      `index of scope ${JSON.stringify(scope)}`,
    );
  }
  // The scoped layout records the key its envelopes name (§5.7); Palyra's layout has no such file.
  if (id !== undefined) await writeKekRecord(fs, root, id);
}

/** Replaces a file of the new layout, its failure typed with what it held (a full disk says so). */
async function writeFile(fs: FileSystem, path: string, data: Uint8Array, what: string): Promise<void> {
  try {
    await fs.writeFileAtomic(path, data);
  } catch (e) {
    throw fsError(`write ${what}`, path, e);
  }
}

/** Opens every secret through the new layout and checks it holds the value it had. */
async function verifyTarget(
  parts: MigrationParts,
  to: LayoutName,
  kek: Uint8Array,
  expected: ReadonlyArray<{ scope: string; key: string; value: Uint8Array }>,
): Promise<void> {
  const { root } = parts;
  const layout = layoutOf(parts, to);
  const listed = await layout.list(scopeEntry);
  if (listed.length !== expected.length) {
    throw new VaultError(
      "io",
      `migrate vault "${root}" failed: the new layout lists ${listed.length} secrets, not ${expected.length}`,
      {
        hint: "nothing was removed; run migrate again",
      },
    );
  }
  for (const { scope, key, value } of expected) {
    const got = openEnvelope(kek, scope, key, await layout.readObject(scope, key));
    const same = got.length === value.length && got.every((b, i) => b === value[i]);
    got.fill(0);
    if (!same) {
      throw new VaultError(
        "io",
        `migrate vault "${root}" failed: secret "${key}" of scope ${JSON.stringify(scope)} reads back differently`,
        {
          hint: "nothing was removed; run migrate again",
        },
      );
    }
  }
}

function layoutOf(parts: MigrationParts, name: LayoutName): VaultLayout {
  const { fs, root } = parts;
  return name === "palyra"
    ? new PalyraLayout(fs, root, new PalyraObjects(fs, root, parts.maxObjectBytes), parts.limits)
    : new ScopedLayout(
      fs,
      root,
      new EncryptedFileBackend(root, fs, { maxObjectBytes: parts.maxObjectBytes }),
      parts.limits,
    );
}

/**
 * Removes what is left of the old layout once the new one is the vault, then the marker. It runs after the commit:
 * a failure says the vault moved, with every secret, and that running `migrate` again finishes.
 */
async function retire(parts: MigrationParts, from: LayoutName, keep: ReadonlySet<string>): Promise<void> {
  const { fs, root } = parts;
  try {
    await removeTree(fs, join(root, RETIRED[from]));
    if (from === "palyra") await fs.remove(join(root, PALYRA_OBJECTS_STORE)).catch(() => false);
    else await fs.remove(join(root, FILES.kekRecord));
    // Object files no index names: the scoped layout's objects after a move to Palyra's, legacy ones after the reverse.
    const objectsDir = join(root, FILES.objectsDir);
    for (const name of await fs.readDir(objectsDir).catch(() => [] as string[])) {
      if (isObjectId(name) && !keep.has(name)) await fs.remove(join(objectsDir, name));
    }
    await fs.syncDir(objectsDir).catch(() => {});
    await fs.remove(join(root, FILES.migrationMarker));
    await fs.syncDir(root);
  } catch (e) {
    const to: LayoutName = from === "scoped" ? "palyra" : "scoped";
    const code = e instanceof VaultError ? e.code : "io";
    const why = e instanceof Error ? e.message : String(e);
    throw new VaultError(code, `migrate vault "${root}" failed after it moved to the ${to} layout: ${why}`, {
      hint: `the vault is in the ${to} layout with every secret; run palyra-secrets migrate --to ${to} again to ` +
        "remove what is left of the old one (writers are held off until then)",
      cause: e,
    });
  }
}

/**
 * Undoes a migration to `target` that has not reached its commit rename: the
 * new layout's partial files and then the marker go; the old layout, still
 * the vault, is untouched.
 */
async function abandon(parts: MigrationParts, target: LayoutName): Promise<void> {
  const { fs, root } = parts;
  if (target === "palyra") {
    await fs.remove(join(root, FILES.palyraIndex)).catch(() => false);
    await fs.remove(join(root, PALYRA_OBJECTS_STORE)).catch(() => false);
  } else {
    await removeTree(fs, join(root, FILES.scopesDir));
    await fs.remove(join(root, FILES.kekRecord));
  }
  await fs.remove(join(root, FILES.migrationMarker));
  await fs.syncDir(root);
}

/**
 * Converts the vault to `to`, or finishes a conversion a crash interrupted, holding the vault's key lock (§5.5)
 * throughout: a re-key that read the key record while the secrets moved to the other layout would report secrets
 * re-keyed that the migration had taken away, and record its key in a layout that has no record.
 */
export async function migrate(parts: MigrationParts, to: LayoutName): Promise<MigrateResult> {
  const { fs, root } = parts;
  if (parts.backendKind !== "encrypted_file") {
    throw new VaultError(
      "backend_unavailable",
      `migrate vault "${root}" failed: it keeps its objects in ${parts.backendKind}`,
      {
        hint: "migrate converts vaults of the encrypted_file backend; a keychain vault keeps its items where they are",
      },
    );
  }
  return await withKekLock(fs, root, parts.limits, () => migrateLocked(parts, to));
}

async function migrateLocked(parts: MigrationParts, to: LayoutName): Promise<MigrateResult> {
  const { fs, root } = parts;
  // A stale scoped writer may be making and removing its scope folder in Palyra's layout right now (§6.6).
  const detected = await detectSettled(fs, root);
  if (detected.migratingTo !== undefined && detected.migratingTo !== to && detected.layout === to) {
    // Interrupted before its commit: going back is undoing it.
    const back = detected.migratingTo;
    const undo = async () => {
      await abandon(parts, back);
      return {
        from: back,
        to,
        secrets: (await layoutOf(parts, to).list(scopeEntry)).length,
        alreadyDone: false,
        resumed: true,
      };
    };
    return to === "palyra" ? await layoutOf(parts, "palyra").locked("global", "write", undo) : await undo();
  }
  if (detected.migratingTo !== undefined && detected.migratingTo !== to) {
    throw new VaultError(
      "conflict",
      `migrate vault "${root}" failed: a migration to the ${detected.migratingTo} layout is unfinished`,
      { hint: `finish it first: palyra-secrets migrate --to ${detected.migratingTo}` },
    );
  }
  const from: LayoutName = to === "palyra" ? "scoped" : "palyra";
  const resumed = detected.migratingTo !== undefined;
  if (detected.layout === to) {
    if (!resumed) {
      return { from, to, secrets: (await layoutOf(parts, to).list(scopeEntry)).length, alreadyDone: true, resumed };
    }
    // Committed before the crash: only the old layout's remains and the marker are left to remove.
    const live = await layoutOf(parts, to).list(scopeEntry);
    await retire(parts, from, new Set(to === "scoped" ? live.map((e) => e.object_id) : []));
    return { from, to, secrets: live.length, alreadyDone: false, resumed };
  }
  if (to === "palyra") {
    // A scope Palyra's layout cannot hold stops the migration before anything is written.
    for (const e of await layoutOf(parts, "scoped").list(scopeEntry)) toTaggedScope(parseScope(e.scope));
  }
  const run = async (): Promise<MigrateResult> => {
    if (from === "scoped") {
      // Through a key the vault does not record (§5.7) nothing would open: say so before anything is written.
      const recorded = await readKekRecord(fs, root);
      if (recorded !== undefined) {
        const ours = kekId(await parts.kek());
        if (ours !== recorded) throw otherKeyError(root, recorded, ours, `migrate vault "${root}"`);
      }
    }
    await writeFile(fs, join(root, FILES.migrationMarker), utf8(to), "migration marker");
    let committed = false;
    const values: Array<{ scope: string; key: string; value: Uint8Array }> = [];
    // From the marker on, a failure before the commit undoes the migration: a writer's lock not had, a disk too full
    // for the drain's lock, a source that does not read all leave the old layout as it was, and writable.
    try {
      if (from === "scoped") await drainScopeWriters(fs, root, parts.limits);
      const source = await readSource(parts, from);
      const kek = source.length > 0 ? await parts.kek() : undefined;
      const id = kek === undefined ? undefined : kekId(kek);
      const target = source.map((e) => {
        const value = openEnvelope(kek!, e.scope, e.key, e.envelope, id);
        values.push({ scope: e.scope, key: e.key, value });
        const envelope = to === "palyra"
          ? sealEnvelope(kek!, e.scope, e.key, value, "chacha20_poly1305", null)
          : sealEnvelope(kek!, e.scope, e.key, value, "aes_256_gcm", id);
        return { ...e, object_id: objectId(e.scope, e.key), envelope };
      });
      await writeTarget(parts, to, target, id);
      if (kek !== undefined) await verifyTarget(parts, to, kek, values);
      if (to === "palyra" && target.length === 0) {
        await writeFile(fs, join(root, FILES.palyraIndex), encodePalyraIndex([]), "index");
      }
      // The commit: one rename takes the old layout's defining name away.
      const defining = from === "scoped" ? join(root, FILES.scopesDir) : join(root, FILES.palyraIndex);
      if (await exists(fs, defining)) {
        await fs.rename(defining, join(root, RETIRED[from])).catch((e) => {
          throw fsError("commit the migration: rename", defining, e);
        });
      }
      committed = true;
      await fs.syncDir(root).catch((e) => {
        throw fsError("commit the migration: sync", root, e);
      });
      await retire(parts, from, new Set(to === "scoped" ? target.map((e) => e.object_id) : []));
      return { from, to, secrets: target.length, alreadyDone: false, resumed };
    } catch (e) {
      // Failed before the commit: the old layout is still the vault; take the half-made new one away.
      if (!committed) await abandon(parts, to).catch(() => {});
      throw e;
    } finally {
      for (const v of values) v.value.fill(0);
    }
  };
  // Palyra's layout is guarded by one lock for the whole vault: hold it from the marker to the end.
  return from === "palyra" ? await layoutOf(parts, "palyra").locked("global", "write", run) : await run();
}
