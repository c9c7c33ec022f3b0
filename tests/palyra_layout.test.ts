/**
 * Palyra's vault layout (docs/FORMAT.md §6): the bytes it writes, its lock as
 * the daemon keeps it, failures in the middle of a write, detection, and
 * migration both ways, with SIGKILLs at random points.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { migrateVault, Vault } from "../src/vault.ts";
import { diagnose } from "../src/doctor.ts";
import { defaultFileSystem, type FileSystem } from "../src/platform/fs.ts";
import { objectId, scopeDirName } from "../src/crypto/ids.ts";
import { kekId } from "../src/crypto/kdf.ts";
import { sealEnvelope } from "../src/crypto/envelope.ts";
import { runnerWithEnv } from "../src/platform/subprocess.ts";
import {
  emulatorPath,
  hex,
  randomBytes,
  rejectsWith,
  ROOT,
  RUNTIME_NAMES,
  RUNTIMES,
  tempDir,
  testKek,
} from "./helpers.ts";

const KEK = testKek(4);
const SCOPES = ["global", "principal:alice", "channel:slack:T01:U02", "skill:web.search"];

function failingFs(failWhen: (path: string) => boolean): FileSystem {
  return {
    ...defaultFileSystem,
    writeFileAtomic(path, data) {
      if (failWhen(path)) return Promise.reject(Object.assign(new Error("injected ENOSPC"), { code: "ENOSPC" }));
      return defaultFileSystem.writeFileAtomic(path, data);
    },
  };
}

const objectsStore = (root: string) => JSON.parse(readFileSync(join(root, "objects", "objects.store.json"), "utf8"));

/** A pid that belonged to a process that has exited. */
/**
 * A file system on which a scoped writer's lock folder appears in a scope folder of the retired layout
 * (`.scopes.migrated/s_…`) each time the migration has listed it, up to `times` times.
 */
function lockFolderInOldLayout(times: number) {
  let planted = 0;
  const fs: FileSystem = {
    ...defaultFileSystem,
    async readDir(p) {
      const names = await defaultFileSystem.readDir(p);
      if (planted < times && /[\\/]\.scopes\.migrated[\\/]s_[0-9a-f]{32}$/.test(p)) {
        planted++;
        mkdirSync(join(p, `.metadata.lock.${String(planted).padStart(16, "0")}.tmp`));
      }
      return names;
    },
  };
  return { fs, planted: () => planted };
}

function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

describe("Palyra's layout: bytes on disk", () => {
  test("metadata.json: tagged scopes, insertion order, an overwrite keeps its place and created_at", async () => {
    const root = join(tempDir("pl"), "vault");
    const vault = await Vault.open({ root, kek: KEK, backend: "encrypted_file", layout: "palyra" });
    assert.equal(vault.layout, "palyra");
    await vault.putSecret("skill:web.search", "z_key", "1");
    await vault.putSecret("global", "a_key", "2");
    const first = await vault.putSecret("channel:slack:T01:U02", "m_key", "3");
    await new Promise((r) => setTimeout(r, 5));
    const again = await vault.putSecret("channel:slack:T01:U02", "m_key", "33");
    assert.equal(again.createdAtUnixMs, first.createdAtUnixMs);
    assert.ok(again.updatedAtUnixMs > first.updatedAtUnixMs);
    const text = readFileSync(join(root, "metadata.json"), "utf8");
    assert.ok(!text.endsWith("\n"), "no trailing newline");
    const doc = JSON.parse(text);
    assert.equal(text, JSON.stringify(doc, null, 2), "pretty-printed with a 2-space indent");
    assert.deepEqual(Object.keys(doc), ["version", "entries"]);
    assert.deepEqual(doc.entries.map((e: { scope: unknown; key: string }) => [e.scope, e.key]), [
      [{ kind: "skill", skill_id: "web.search" }, "z_key"],
      [{ kind: "global" }, "a_key"],
      [{ kind: "channel", channel_name: "slack", account_id: "T01:U02" }, "m_key"],
    ]);
    assert.deepEqual(Object.keys(doc.entries[0]), [
      "scope",
      "key",
      "object_id",
      "created_at_unix_ms",
      "updated_at_unix_ms",
      "value_bytes",
    ]);
    assert.equal(doc.entries[2].object_id, objectId("channel:slack:T01:U02", "m_key"));
    assert.equal(doc.entries[2].value_bytes, 2);
    // The objects store: compact, keys sorted, each envelope as byte values.
    const raw = readFileSync(join(root, "objects", "objects.store.json"), "utf8");
    const store = JSON.parse(raw);
    assert.equal(raw, JSON.stringify(store));
    const ids = Object.keys(store);
    assert.deepEqual(ids, [...ids].sort());
    const envelope = JSON.parse(new TextDecoder().decode(Uint8Array.from(store[doc.entries[2].object_id])));
    assert.equal(envelope.algorithm, "chacha20_poly1305");
    assert.equal("kek_id" in envelope, false, "the daemon's envelopes carry no kek_id");
    assert.deepEqual(readdirSync(root).sort(), ["backend.kind", "metadata.json", "objects"]);
    assert.equal(readFileSync(join(root, "backend.kind"), "utf8"), "encrypted_file");
    for (const f of ["metadata.json", "backend.kind", join("objects", "objects.store.json")]) {
      assert.equal(statSync(join(root, f)).mode & 0o777, 0o600, f);
    }
    // Deleting takes the entry and its object away, and leaves the other entries in order.
    assert.equal(await vault.deleteSecret("global", "a_key"), true);
    const after = JSON.parse(readFileSync(join(root, "metadata.json"), "utf8"));
    assert.deepEqual(after.entries.map((e: { key: string }) => e.key), ["z_key", "m_key"]);
    assert.equal(objectId("global", "a_key") in objectsStore(root), false);
  });

  test("ws: and pr: scopes are refused with invalid_scope naming migrate; nothing is written", async () => {
    const root = join(tempDir("pl-ws"), "vault");
    const vault = await Vault.open({ root, kek: KEK, backend: "encrypted_file", layout: "palyra" });
    await vault.putSecret("global", "k", "v");
    const before = readFileSync(join(root, "metadata.json"));
    for (const scope of ["ws:acme", "pr:alice"]) {
      const e = await rejectsWith(() => vault.putSecret(scope, "k", "v"), "invalid_scope", /Palyra's layout/);
      assert.match(e.hint ?? "", /palyra-secrets migrate --to scoped/);
    }
    assert.deepEqual(readFileSync(join(root, "metadata.json")), before);
  });

  test("a legacy obj_ file is read; the objects store wins over it; delete removes both", async () => {
    const root = join(tempDir("pl-legacy"), "vault");
    const vault = await Vault.open({ root, kek: KEK, backend: "encrypted_file", layout: "palyra" });
    await vault.putSecret("global", "in_store", "from-store");
    await vault.putSecret("global", "legacy", "placeholder");
    // Move "legacy" out of the store into a per-object file, as an older daemon kept it.
    const store = objectsStore(root);
    const legacyId = objectId("global", "legacy");
    delete store[legacyId];
    writeFileSync(join(root, "objects", "objects.store.json"), JSON.stringify(store));
    writeFileSync(
      join(root, "objects", legacyId),
      sealEnvelope(KEK, "global", "legacy", new TextEncoder().encode("old")),
    );
    // A stale per-object copy of a key that the store also holds loses to the store.
    const storeId = objectId("global", "in_store");
    writeFileSync(
      join(root, "objects", storeId),
      sealEnvelope(KEK, "global", "in_store", new TextEncoder().encode("x")),
    );
    const reopened = await Vault.open({ root, kek: KEK });
    assert.equal((await reopened.getSecret("global", "legacy")).text(), "old");
    assert.equal((await reopened.getSecret("global", "in_store")).text(), "from-store");
    assert.equal(await reopened.deleteSecret("global", "legacy"), true);
    assert.equal(existsSync(join(root, "objects", legacyId)), false);
    await rejectsWith(() => reopened.getSecret("global", "legacy"), "not_found");
  });

  test("the objects store is capped at 32 MiB: a bigger one is refused before it is read, a put that would pass it writes nothing", async () => {
    const root = join(tempDir("pl-cap"), "vault");
    const vault = await Vault.open({
      root,
      kek: KEK,
      backend: "encrypted_file",
      layout: "palyra",
      maxSecretBytes: 16 << 20,
    });
    await vault.putSecret("global", "small", "v");
    const before = readFileSync(join(root, "objects", "objects.store.json"));
    await rejectsWith(() => vault.putSecret("global", "huge", randomBytes(8 << 20)), "value_too_large", /32/);
    assert.deepEqual(readFileSync(join(root, "objects", "objects.store.json")), before);
    assert.deepEqual((await vault.listSecrets()).map((m) => m.key), ["small"]);
    spawnSync("truncate", ["-s", String((32 << 20) + 1), join(root, "objects", "objects.store.json")]);
    await rejectsWith(() => vault.getSecret("global", "small"), "corrupt", /larger than 33554432 bytes/);
  });
});

describe("Palyra's layout: failures in the middle of a write", () => {
  /** A vault holding `global/k`, and the same vault opened through a file layer that fails once armed. */
  async function vaults(failWhen: (path: string) => boolean, value: string) {
    const root = join(tempDir("pl-fault"), "vault");
    const good = await Vault.open({ root, kek: KEK, backend: "encrypted_file", layout: "palyra" });
    await good.putSecret("global", "k", value);
    let armed = false;
    const bad = await Vault.open({ root, kek: KEK, host: { fs: failingFs((p) => armed && failWhen(p)) } });
    return { root, good, bad, arm: () => (armed = true) };
  }

  test("a failed metadata.json write puts the previous object back in the objects store", async () => {
    const { root, good, bad, arm } = await vaults((p) => p.endsWith("metadata.json"), "old");
    const store = readFileSync(join(root, "objects", "objects.store.json"));
    arm();
    await rejectsWith(() => bad.putSecret("global", "k", "new"), "io", /write index/);
    await rejectsWith(() => bad.putSecret("global", "fresh", "new"), "io", /write index/);
    assert.equal((await good.getSecret("global", "k")).text(), "old");
    assert.deepEqual(
      JSON.parse(readFileSync(join(root, "objects", "objects.store.json"), "utf8")),
      JSON.parse(
        new TextDecoder().decode(store),
      ),
    );
    assert.deepEqual((await good.listSecrets()).map((m) => m.key), ["k"]);
    assert.deepEqual(readdirSync(root).sort(), ["backend.kind", "metadata.json", "objects"], "no lock left behind");
  });

  test("a failed objects store write on delete restores metadata.json", async () => {
    const { root, good, bad, arm } = await vaults((p) => p.endsWith("objects.store.json"), "kept");
    const index = readFileSync(join(root, "metadata.json"));
    arm();
    await rejectsWith(() => bad.deleteSecret("global", "k"), "io", /write objects store/);
    assert.deepEqual(readFileSync(join(root, "metadata.json")), index);
    assert.equal((await good.getSecret("global", "k")).text(), "kept");
  });
});

describe("Palyra's layout: the daemon's metadata.lock", () => {
  const lockFile = (root: string) => join(root, "metadata.lock");

  async function vaultWithLock(content: string, ageMs: number) {
    const root = join(tempDir("pl-lock"), "vault");
    const vault = await Vault.open({ root, kek: KEK, backend: "encrypted_file", layout: "palyra", lockTimeoutMs: 400 });
    await vault.putSecret("global", "k", "v");
    writeFileSync(lockFile(root), content, { mode: 0o600 });
    const t = (Date.now() - ageMs) / 1000;
    utimesSync(lockFile(root), t, t);
    return { root, vault };
  }

  test("a live holder's lock holds writers and readers off, however old it is", async () => {
    const sleeper = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      const { root, vault } = await vaultWithLock(`pid=${sleeper.pid} ts_ms=${Date.now()}\n`, 120_000);
      const e = await rejectsWith(() => vault.putSecret("global", "k2", "v"), "lock_timeout", /held by process/);
      assert.ok(e.message.includes(String(sleeper.pid)), e.message);
      await rejectsWith(() => vault.getSecret("global", "k"), "lock_timeout");
      await rejectsWith(() => vault.listSecrets(), "lock_timeout");
      assert.ok(existsSync(lockFile(root)), "the holder's lock is left alone");
    } finally {
      sleeper.kill();
    }
  });

  test("a dead holder's lock is waited for while younger than 30 s, and reclaimed once older", async () => {
    const pid = deadPid();
    const { root, vault } = await vaultWithLock(`pid=${pid} ts_ms=${Date.now()}\n`, 0);
    await rejectsWith(() => vault.putSecret("global", "k2", "v"), "lock_timeout");
    const old = (Date.now() - 31_000) / 1000;
    utimesSync(lockFile(root), old, old);
    await vault.putSecret("global", "k2", "v");
    assert.equal((await vault.getSecret("global", "k2")).text(), "v");
    assert.equal(existsSync(lockFile(root)), false);
  });

  test("doctor reports a dead holder's lock as stale, and changes nothing", async () => {
    const { root, vault } = await vaultWithLock(`pid=${deadPid()} ts_ms=${Date.now()}\n`, 0);
    vault.close();
    const before = readdirSync(root).map((n) => `${n} ${statSync(join(root, n)).mtimeMs}`);
    const report = await diagnose({ root, identityRoot: join(root, "..", "identity") });
    assert.equal(report.layout, "palyra");
    const stale = report.problems.filter((p) => p.code === "stale_lock");
    assert.deepEqual(stale.map((p) => p.path), [lockFile(root)]);
    assert.match(stale[0]!.hint, /30 s/);
    assert.deepEqual(readdirSync(root).map((n) => `${n} ${statSync(join(root, n)).mtimeMs}`), before);
  });

  test("a lock whose content does not parse is reclaimed once 30 s old, not before", async () => {
    const { root, vault } = await vaultWithLock("garbage", 5_000);
    await rejectsWith(() => vault.getSecret("global", "k"), "lock_timeout");
    const old = (Date.now() - 30_500) / 1000;
    utimesSync(lockFile(root), old, old);
    assert.equal((await vault.getSecret("global", "k")).text(), "v");
    assert.equal(existsSync(lockFile(root)), false);
  });
});

describe("layout detection", () => {
  test("a daemon's vault without backend.kind keeps its objects store where auto would pick a keychain", async () => {
    const root = join(tempDir("pl-nokind"), "vault");
    const vault = await Vault.open({ root, kek: KEK, backend: "encrypted_file", layout: "palyra" });
    await vault.putSecret("global", "k", "v");
    rmSync(join(root, "backend.kind"));
    const keychain = tempDir("fake-mac");
    writeFileSync(join(keychain, "log.jsonl"), "");
    const run = runnerWithEnv({
      PATH: emulatorPath(),
      FAKE_KEYCHAIN_DIR: keychain,
      FAKE_KEYCHAIN_LOG: join(keychain, "log.jsonl"),
    });
    // As on a Mac, where `auto` chooses the keychain for a new vault.
    const fresh = await Vault.open({
      root: join(tempDir("pl-mac"), "vault"),
      kek: KEK,
      backend: "auto",
      host: {
        platform: "darwin",
        run,
      },
    });
    assert.equal(fresh.backendKind, "macos_keychain");
    const daemons = await Vault.open({ root, kek: KEK, backend: "auto", host: { platform: "darwin", run } });
    assert.equal(daemons.backendKind, "encrypted_file");
    assert.equal((await daemons.getSecret("global", "k")).text(), "v");
    await daemons.putSecret("global", "k2", "v2");
    assert.deepEqual(readdirSync(root).sort(), ["metadata.json", "objects"], "nothing added to the daemon's folder");
  });

  test("a folder with both layouts is corrupt; asking for the other layout is a conflict naming migrate", async () => {
    const root = join(tempDir("detect"), "vault");
    const scoped = await Vault.open({ root, kek: KEK, backend: "encrypted_file" });
    await scoped.putSecret("global", "k", "v");
    const e = await rejectsWith(() => Vault.open({ root, kek: KEK, layout: "palyra" }), "conflict", /scoped layout/);
    assert.match(e.hint ?? "", /migrate --to palyra/);
    writeFileSync(join(root, "metadata.json"), '{"version":1,"entries":[]}');
    await rejectsWith(() => Vault.open({ root, kek: KEK }), "corrupt", /both layouts/);
  });
});

describe("migrate", () => {
  async function populate(root: string, identityRoot: string, n: number) {
    const vault = await Vault.open({ root, identityRoot, backend: "encrypted_file" });
    const values = new Map<string, Uint8Array>();
    for (let i = 0; i < n; i++) {
      const scope = SCOPES[i % SCOPES.length]!;
      const value = i === 0 ? new Uint8Array(0) : i === 1 ? randomBytes(65_536) : randomBytes(1 + (i * 37) % 300);
      await vault.putSecret(scope, `key.${i}`, value);
      values.set(`${scope}/key.${i}`, value);
    }
    return values;
  }

  async function verify(root: string, identityRoot: string, values: Map<string, Uint8Array>) {
    const vault = await Vault.open({ root, identityRoot, staleAfterMs: 0 });
    const listed = await vault.listSecrets();
    assert.deepEqual(listed.map((m) => `${m.scope}/${m.key}`).sort(), [...values.keys()].sort());
    for (const [ref, value] of values) {
      using got = await vault.resolve(ref);
      assert.equal(hex(got.bytes), hex(value), ref);
    }
    return vault;
  }

  test("scoped → palyra → scoped keeps every secret and its times; a second run has nothing to do", async () => {
    const dir = tempDir("mig");
    const root = join(dir, "vault");
    const identityRoot = join(dir, "identity");
    const values = await populate(root, identityRoot, 9);
    const times = (await (await Vault.open({ root, identityRoot })).listSecrets()).map((m) => [
      m.scope,
      m.key,
      m.createdAtUnixMs,
      m.updatedAtUnixMs,
      m.valueBytes,
    ]);
    const r = await migrateVault({ root, identityRoot, to: "palyra" });
    assert.deepEqual(r, { from: "scoped", to: "palyra", secrets: 9, alreadyDone: false, resumed: false });
    assert.deepEqual(readdirSync(root).sort(), ["backend.kind", "metadata.json", "objects"]);
    assert.deepEqual(readdirSync(join(root, "objects")), ["objects.store.json"]);
    const palyra = await verify(root, identityRoot, values);
    assert.equal(palyra.layout, "palyra");
    assert.deepEqual(
      (await palyra.listSecrets()).map((m) => [m.scope, m.key, m.createdAtUnixMs, m.updatedAtUnixMs, m.valueBytes]),
      times,
    );
    assert.equal((await migrateVault({ root, identityRoot, to: "palyra" })).alreadyDone, true);
    const back = await migrateVault({ root, identityRoot, to: "scoped" });
    assert.equal(back.secrets, 9);
    assert.deepEqual(readdirSync(root).sort(), ["backend.kind", "kek.id", "objects", "scopes"]);
    const vault = await verify(root, identityRoot, values);
    assert.equal(vault.layout, "scoped");
    // The key record came back with the scoped layout (docs/FORMAT.md §5.7): a writer with another key is refused.
    const kek = await (await Vault._parts(vault, "read the key")).kek();
    assert.equal(readFileSync(join(root, "kek.id"), "utf8"), kekId(kek));
    const other = await Vault.open({ root, kek: new Uint8Array(32).fill(3) });
    await rejectsWith(() => other.putSecret("global", "other", "x"), "identity", /kek_id/);
  });

  test("a writer's lock folder that lands in the old layout while the migration removes it does not fail it", async () => {
    // Linux finishes a path lookup that began before the commit's rename inside the renamed folder: a scoped writer
    // racing the commit can make its lock's folder in the old layout after the migration listed it (seen with real
    // writers in tests/concurrency.test.ts; here made to happen at that moment).
    const dir = tempDir("mig-straggler");
    const root = join(dir, "vault");
    const identityRoot = join(dir, "identity");
    const values = await populate(root, identityRoot, 4);
    const straggler = lockFolderInOldLayout(1);
    const r = await migrateVault({ root, identityRoot, to: "palyra", host: { fs: straggler.fs } });
    assert.equal(straggler.planted(), 1, "the folder was planted while the old layout was removed");
    assert.deepEqual(r, { from: "scoped", to: "palyra", secrets: 4, alreadyDone: false, resumed: false });
    assert.deepEqual(
      readdirSync(root).sort(),
      ["backend.kind", "metadata.json", "objects"],
      "old layout and marker gone",
    );
    assert.equal((await verify(root, identityRoot, values)).layout, "palyra");
  });

  test("a stale scoped writer's scope folder in Palyra's layout when a migration or doctor looks: they wait, it is not corrupt", async () => {
    // A writer whose handle predates a migration to Palyra's layout makes its scope's folder to take its lock, then
    // finds the vault migrated and removes it (docs/FORMAT.md §6.6). A migration that looked in that moment called the
    // vault corrupt for holding both layouts (seen once in tests/concurrency.test.ts on a loaded machine).
    const dir = tempDir("mig-stale-folder");
    const root = join(dir, "vault");
    const identityRoot = join(dir, "identity");
    const values = await populate(root, identityRoot, 3);
    await migrateVault({ root, identityRoot, to: "palyra" });
    const vault = await Vault.open({ root, identityRoot });
    const parts = await Vault._parts(vault, "migrate vault");
    // The folder the stale writer makes, after this handle looked at the vault and before the migration does.
    const folder = join(root, "scopes", scopeDirName("global"));
    const leave = () =>
      new Promise((r) => setTimeout(r, 60)).then(() => rmSync(join(root, "scopes"), { recursive: true }));
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    await Promise.all([
      leave(),
      (async () => {
        // doctor, run in that moment, names the layout rather than "unknown (… both layouts)".
        assert.equal((await diagnose({ root, identityRoot })).layout, "palyra");
      })(),
    ]);
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    const gone = leave();
    const { migrate } = await import("../src/store/migrate.ts");
    const r = await migrate(parts, "scoped");
    await gone;
    assert.deepEqual(r, { from: "palyra", to: "scoped", secrets: 3, alreadyDone: false, resumed: false });
    vault.close();
    assert.equal((await verify(root, identityRoot, values)).layout, "scoped");
  });

  test("an old layout that cannot be removed after the commit: an io error that says the vault moved and how to finish", async () => {
    const dir = tempDir("mig-stuck");
    const root = join(dir, "vault");
    const identityRoot = join(dir, "identity");
    const values = await populate(root, identityRoot, 4);
    // A lock folder that comes back every time the old layout is listed.
    const straggler = lockFolderInOldLayout(Infinity);
    const e = await rejectsWith(
      () => migrateVault({ root, identityRoot, to: "palyra", host: { fs: straggler.fs } }),
      "io",
      /failed after it moved to the palyra layout: remove the old layout failed/,
    );
    assert.match(e.hint ?? "", /every secret; run palyra-secrets migrate --to palyra again/);
    assert.ok(straggler.planted() > 1, "listed again before giving up");
    assert.equal((await verify(root, identityRoot, values)).layout, "palyra");
    const again = await migrateVault({ root, identityRoot, to: "palyra" });
    assert.deepEqual(again, { from: "scoped", to: "palyra", secrets: 4, alreadyDone: false, resumed: true });
    assert.deepEqual(readdirSync(root).sort(), ["backend.kind", "metadata.json", "objects"]);
  });

  test("a vault holding ws: or pr: scopes cannot move to Palyra's layout: invalid_scope, nothing changes", async () => {
    const dir = tempDir("mig-ws");
    const root = join(dir, "vault");
    const identityRoot = join(dir, "identity");
    const values = await populate(root, identityRoot, 3);
    const vault = await Vault.open({ root, identityRoot });
    await vault.putSecret("ws:acme", "token", "t");
    values.set("ws:acme/token", new TextEncoder().encode("t"));
    const before = readdirSync(root).sort();
    await rejectsWith(() => migrateVault({ root, identityRoot, to: "palyra" }), "invalid_scope", /ws:acme/);
    assert.deepEqual(readdirSync(root).sort(), before, "no marker, nothing of the other layout");
    await verify(root, identityRoot, values);
    await vault.putSecret("ws:acme", "token", "t");
  });

  test("writers are held off while a migration is unfinished, and told how to finish it", async () => {
    const dir = tempDir("mig-w");
    const root = join(dir, "vault");
    const identityRoot = join(dir, "identity");
    await populate(root, identityRoot, 2);
    const vault = await Vault.open({ root, identityRoot });
    writeFileSync(join(root, ".migrating"), "palyra", { mode: 0o600 });
    const e = await rejectsWith(() => vault.putSecret("global", "new", "v"), "conflict", /migration to the palyra/);
    assert.match(e.hint ?? "", /migrate --to palyra/);
    await migrateVault({ root, identityRoot, to: "palyra" });
    // A writer that opened the vault before the migration is refused, and leaves no scopes/ behind.
    await rejectsWith(() => vault.putSecret("global", "late", "v"), "conflict", /layout changed|migrated/);
    assert.deepEqual(readdirSync(root).sort(), ["backend.kind", "metadata.json", "objects"]);
    await (await Vault.open({ root, identityRoot })).putSecret("global", "late", "v");
  });

  test("a migration interrupted before its commit is undone by asking for the old layout", async () => {
    const dir = tempDir("mig-undo");
    const root = join(dir, "vault");
    const identityRoot = join(dir, "identity");
    const values = await populate(root, identityRoot, 4);
    const before = readdirSync(root).sort();
    // What a crash between writing the new layout and the commit leaves.
    writeFileSync(join(root, ".migrating"), "palyra", { mode: 0o600 });
    writeFileSync(join(root, "metadata.json"), '{"version":1,"entries":[]}');
    await verify(root, identityRoot, values);
    const r = await migrateVault({ root, identityRoot, to: "scoped" });
    assert.deepEqual(r, { from: "palyra", to: "scoped", secrets: 4, alreadyDone: false, resumed: true });
    assert.deepEqual(readdirSync(root).sort(), before);
    await (await verify(root, identityRoot, values)).putSecret("global", "after", "v");
  });

  test("SIGKILL at random points, both ways, on all three runtimes: the vault always opens with every secret", async () => {
    const dir = tempDir("mig-kill");
    const root = join(dir, "vault");
    const identityRoot = join(dir, "identity");
    const values = await populate(root, identityRoot, 30);
    const migrateIn = (runtime: (typeof RUNTIME_NAMES)[number], to: string, killAfterMs: number | undefined) => {
      const argv = [
        ...RUNTIMES[runtime](join(ROOT, "tests/workers/vault_worker.ts")),
        "migrate",
        root,
        identityRoot,
        to,
      ];
      const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      let timer: ReturnType<typeof setTimeout> | undefined;
      let readyAt = 0;
      child.stdout.on("data", (c: Uint8Array) => {
        out += new TextDecoder().decode(c);
        if (readyAt === 0 && out.includes("ready")) {
          readyAt = Date.now();
          if (killAfterMs !== undefined) timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
        }
      });
      child.stderr.on("data", (c: Uint8Array) => (err += new TextDecoder().decode(c)));
      return new Promise<{ out: string; err: string; signal: string | null; ms: number }>((resolve) => {
        child.on("close", (_code, signal) => {
          clearTimeout(timer);
          resolve({ out, err, signal, ms: Date.now() - readyAt });
        });
      });
    };
    // One uninterrupted run measures how long a migration takes here, to spread the kills over it.
    const full = await migrateIn("bun", "palyra", undefined);
    assert.match(full.out, /done 30/, full.err);
    await verify(root, identityRoot, values);
    // Spread over a little more than a whole migration, so some rounds finish and the direction changes.
    const span = Math.max(50, full.ms * 1.4);
    let goal = "scoped";
    let kills = 0;
    let midway = 0;
    let finished = 0;
    for (let round = 0; round < 9; round++) {
      const r = await migrateIn(RUNTIME_NAMES[round % 3]!, goal, Math.random() * span);
      if (r.signal === "SIGKILL") {
        kills++;
        if (existsSync(join(root, ".migrating"))) {
          midway++;
          // doctor says the migration is unfinished and how to finish it, also of the lock it left.
          const target = readFileSync(join(root, ".migrating"), "utf8").trim();
          const { problems } = await diagnose({ root, identityRoot });
          const finish = new RegExp(`migrate --to ${target}`);
          const unfinished = problems.find((p) => p.code === "migration_unfinished");
          assert.match(unfinished?.hint ?? "", finish, JSON.stringify(problems));
          // Killed while it took the lock (after reclaiming a dead one, before its own was in place), it left none.
          if (existsSync(join(root, ".kek.lock"))) {
            const lock = problems.find((p) => p.code === "stale_lock" && p.path === join(root, ".kek.lock"));
            assert.match(lock?.hint ?? "", finish, JSON.stringify(problems));
          }
        }
      } else {
        assert.match(r.out, /done 30/, r.err);
        finished++;
        goal = goal === "scoped" ? "palyra" : "scoped";
      }
      await verify(root, identityRoot, values);
    }
    assert.ok(kills >= 2, `expected several migrations to be killed, got ${kills}`);
    assert.ok(midway >= 1, `expected a kill in the middle of a migration (marker left), got ${midway} of ${kills}`);
    // A second run finishes whatever was interrupted.
    const last = await migrateIn("node", goal, undefined);
    assert.match(last.out, /done 30/, last.err);
    const vault = await verify(root, identityRoot, values);
    assert.equal(vault.layout, goal);
    assert.equal(existsSync(join(root, ".migrating")), false);
    assert.equal(finished + kills, 9);
  });
});
