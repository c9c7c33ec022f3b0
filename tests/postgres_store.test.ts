/**
 * The PostgreSQL store (docs/FORMAT.md §10; README, "PostgreSQL store")
 * against a real server this process starts: the shared vault suite, versions
 * and check-and-set, devices joining and leaving, what a dump holds, rows
 * moved by hand, and connections killed mid-write.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import postgres from "postgres";
import { gcm } from "@noble/ciphers/aes.js";
import { Decrypter } from "age-encryption";
import { Vault } from "../src/vault.ts";
import type { BlobBackend } from "../src/backends/backend.ts";
import { objectId } from "../src/crypto/ids.ts";
import { decodeEnvelope } from "../src/crypto/envelope_codec.ts";
import { defaultFileSystem } from "../src/platform/fs.ts";
import { loadOrCreateItem } from "../src/store/identity_store.ts";
import { vaultSuite } from "./backend_suite.ts";
import { hex, rejectsWith, tempDir } from "./helpers.ts";
import { databaseOf, type PgServer, postgresServer } from "./postgres_server.ts";

const opened: { end(): unknown }[] = [];
after(async () => {
  for (const o of opened) await o.end();
});

/** A vault on `url` for the device whose identity folder is `identityRoot`, closed when the file ends. */
async function openOn(url: string, identityRoot: string, extra: { keepVersions?: number } = {}): Promise<Vault> {
  const vault = await Vault.open({ store: url, identityRoot, ...extra });
  opened.push({ end: () => vault.close() });
  return vault;
}

/** A client of the test's own, as an operator (or an attacker with the database) would use. */
function client(pg: PgServer, url: string): postgres.Sql {
  const database = databaseOf(url);
  const sql = postgres({
    path: `${pg.socketDir}/.s.PGSQL.${pg.port}`,
    port: pg.port,
    username: "postgres",
    database,
    onnotice: () => {},
  });
  opened.push({ end: () => sql.end({ timeout: 1 }) });
  return sql;
}

/** The table seen as objects by id, so the suite can copy and cut what is stored. */
function tableView(sql: postgres.Sql): BlobBackend {
  const live = async (id: string) => {
    const rows = await sql`SELECT DISTINCT ON (scope, key) scope, key, version, envelope, deleted_at FROM vault_secrets
      ORDER BY scope, key, version DESC`;
    return rows.find((r) => r.deleted_at === null && objectId(r.scope, r.key) === id);
  };
  return {
    kind: "postgres-table",
    async get(id) {
      const row = await live(id);
      if (row === undefined) {
        const { VaultError } = await import("../src/errors.ts");
        throw new VaultError("not_found", `read object "${id}" failed: no live row`);
      }
      return new Uint8Array(row.envelope);
    },
    async put(id, bytes) {
      const row = await live(id);
      assert.ok(row !== undefined, `the suite only replaces rows that exist (${id})`);
      await sql`UPDATE vault_secrets SET envelope = ${Buffer.from(bytes)}
        WHERE scope = ${row.scope} AND key = ${row.key} AND version = ${row.version}`;
    },
    delete() {
      return Promise.reject(new Error("the suite does not delete rows behind the vault's back"));
    },
  };
}

vaultSuite("postgres (real server)", async () => {
  const pg = await postgresServer();
  const url = await pg.database();
  const dir = tempDir("pg-suite");
  const vault = await openOn(url, join(dir, "identity"));
  return {
    vault,
    backend: tableView(client(pg, url)),
    openWithOtherKey: () => openOn(url, join(dir, "identity2")),
    otherIdentityFails: { code: "permission", message: /is not a member of the shared vault/ },
    assertEmpty: async (v) => assert.deepEqual(await v.listSecrets(), []),
  };
}, { blobBackend: false, versions: true });

/** Two devices on one new database: `a` created it, `b` is not a member yet. */
async function twoDevices(extra: { keepVersions?: number } = {}) {
  const pg = await postgresServer();
  const url = await pg.database();
  const dir = tempDir("pg-devices");
  const a = await openOn(url, join(dir, "a"), extra);
  const b = await openOn(url, join(dir, "b"), extra);
  return { pg, url, dir, a, b, sql: client(pg, url) };
}

describe("postgres store: versions and check-and-set", () => {
  test("each put is a new version; get reads any kept version; rollback makes an old value live", async () => {
    const { a } = await twoDevices({ keepVersions: 3 });
    for (const v of ["one", "two", "three", "four"]) await a.putSecret("global", "token", v);
    using live = await a.getSecret("global", "token");
    assert.equal(live.text(), "four");
    using second = await a.getSecret("global", "token", { version: 2 });
    assert.equal(second.text(), "two");
    // Three versions kept: the first is gone.
    await rejectsWith(() => a.getSecret("global", "token", { version: 1 }), "not_found", /version 1/);
    assert.deepEqual((await a.versions("global", "token")).map((m) => m.version), [4, 3, 2]);
    const back = await a.rollback("global", "token", 2);
    assert.equal(back.version, 5);
    using rolled = await a.getSecret("global", "token");
    assert.equal(rolled.text(), "two");
    assert.equal((await a.listSecrets("global"))[0]?.version, 5);
    // Delete marks the live version; a rollback brings a value back.
    assert.equal(await a.deleteSecret("global", "token"), true);
    assert.equal(await a.deleteSecret("global", "token"), false);
    await rejectsWith(() => a.getSecret("global", "token"), "not_found");
    assert.deepEqual(await a.listSecrets(), []);
    await a.rollback("global", "token", 4);
    using again = await a.getSecret("global", "token");
    assert.equal(again.text(), "four");
    await rejectsWith(() => a.rollback("global", "token", 1), "not_found", /not kept/);
  });

  test("check-and-set: of two writers racing on one key exactly one wins, the other gets conflict", async () => {
    const { a, b } = await twoDevices();
    await a.addDevice(b.device!.recipient, { label: "b" });
    const first = await a.putSecret("ws:race", "k", "start");
    let expected = first.version!;
    for (let round = 0; round < 15; round++) {
      const results = await Promise.allSettled([
        a.putSecret("ws:race", "k", `a${round}`, { ifVersion: expected }),
        b.putSecret("ws:race", "k", `b${round}`, { ifVersion: expected }),
      ]);
      const won = results.filter((r) => r.status === "fulfilled");
      const lost = results.filter((r) => r.status === "rejected");
      assert.equal(won.length, 1, `round ${round}: exactly one writer wins`);
      assert.equal((lost[0] as PromiseRejectedResult).reason.code, "conflict");
      const winner = (won[0] as PromiseFulfilledResult<{ version?: number }>).value;
      assert.equal(winner.version, expected + 1);
      expected = winner.version!;
    }
    // A check-and-set on a key that must not exist yet.
    const made = await Promise.allSettled([
      a.putSecret("ws:race", "new", "a", { ifVersion: 0 }),
      b.putSecret("ws:race", "new", "b", { ifVersion: 0 }),
    ]);
    assert.equal(made.filter((r) => r.status === "fulfilled").length, 1);
    assert.equal((made.find((r) => r.status === "rejected") as PromiseRejectedResult).reason.code, "conflict");
    await rejectsWith(() => a.putSecret("ws:race", "k", "stale", { ifVersion: 1 }), "conflict", /expected version 1/);
  });

  test("plain puts racing on one key all land: 16 at once from two devices, versions 1..n each once", async () => {
    // Found by the 6-process test failing once in CI: a writer waiting on the live row's lock read that row again
    // after the other committed (READ COMMITTED re-checks the locked row, it does not look for a newer one), chose
    // the same next version, and gave up after a few unique-key collisions.
    const { a, b } = await twoDevices({ keepVersions: 1000 });
    await a.addDevice(b.device!.recipient, { label: "b" });
    const versions: number[] = [];
    for (let round = 0; round < 6; round++) {
      const results = await Promise.allSettled(
        Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? a : b).putSecret("ws:race", "hot", `r${round}-${i}`)),
      );
      for (const r of results) {
        if (r.status === "rejected") assert.fail(`round ${round}: a plain put failed: ${r.reason}`);
        versions.push(r.value.version!);
      }
    }
    versions.sort((x, y) => x - y);
    assert.deepEqual(versions, versions.map((_, i) => i + 1));
  });

  test("a delete racing puts marks the version live when it commits (announced in commit order)", async () => {
    // The same stale re-read let a delete that waited on a put mark the version that put had just replaced,
    // and report success while the put's value stayed live.
    const { a, b, sql } = await twoDevices({ keepVersions: 1000 });
    await a.addDevice(b.device!.recipient, { label: "b" });
    const changes: { op: string; version: number }[] = [];
    const listening = await sql.listen("palyra_vault", (payload) => changes.push(JSON.parse(payload)));
    await a.putSecret("ws:race", "del", "start");
    for (let round = 0; round < 12; round++) {
      await Promise.all([
        a.putSecret("ws:race", "del", `a${round}`),
        b.deleteSecret("ws:race", "del"),
        a.putSecret("ws:race", "del", `c${round}`),
        b.deleteSecret("ws:race", "del"),
      ]);
    }
    const last = await a.putSecret("ws:race", "del", "end");
    for (let i = 0; i < 200 && changes.at(-1)?.version !== last.version; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await listening.unlisten();
    // Replayed in commit order: each delete names the version that was live at that point.
    let live: number | undefined;
    for (const [i, c] of changes.entries()) {
      if (c.op === "put") live = c.version;
      else {
        assert.equal(c.version, live, `change ${i}: a delete of version ${c.version} while ${live} was live`);
        live = undefined;
      }
    }
    assert.equal(changes.at(-1)?.version, last.version);
  });

  test("list is in code-point order whatever the database's collation (here ICU en-US)", async () => {
    const pg = await postgresServer();
    const name = `vault_icu_${process.pid}`;
    await pg.psql(`CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`);
    // The collation really differs: ICU puts punctuation before digits ("a_b" before "a0"); code points do not.
    assert.equal(
      await pg.psql(`SELECT string_agg(k, ',' ORDER BY k) FROM (VALUES ('a0'), ('a_b')) v(k)`, name),
      "a_b,a0",
    );
    const vault = await openOn(pg.url(name), join(tempDir("pg-icu"), "id"));
    for (const k of ["ab", "a-c", "a.d", "a_b", "a0"]) await vault.putSecret("ws:x-y", k, "v");
    await vault.putSecret("ws:xy", "k", "v");
    const keys = ["a-c", "a.d", "a0", "a_b", "ab"];
    assert.deepEqual((await vault.listSecrets("ws:x-y")).map((m) => m.key), keys);
    assert.deepEqual((await vault.listSecrets()).map((m) => `${m.scope}/${m.key}`), [
      ...keys.map((k) => `ws:x-y/${k}`),
      "ws:xy/k",
    ]);
  });

  test("a file vault refuses what only the PostgreSQL store does, with a typed error", async () => {
    const dir = tempDir("pg-file");
    const vault = await Vault.open({ root: join(dir, "v"), identityRoot: join(dir, "id") });
    await vault.putSecret("global", "k", "v");
    await rejectsWith(() => vault.putSecret("global", "k", "w", { ifVersion: 1 }), "invalid_config", /PostgreSQL/);
    await rejectsWith(() => vault.getSecret("global", "k", { version: 1 }), "invalid_config");
    await rejectsWith(() => vault.listDevices(), "invalid_config");
    await rejectsWith(() => Vault.open({ store: "mysql://x", identityRoot: join(dir, "id") }), "invalid_config");
    await assert.rejects(() => Vault.open({ store: "postgres:///x", root: dir }), TypeError);
  });
});

/** The vault key of the current epoch as `identityRoot`'s device unwraps it from the table. */
async function vaultKeyOf(sql: postgres.Sql, identityRoot: string): Promise<Uint8Array> {
  const doc = await loadOrCreateItem({ fs: defaultFileSystem }, identityRoot, "vault/device.age-identity", () => {
    throw new Error("no identity");
  });
  const [row] = await sql`SELECT k.wrapped_key FROM vault_keys k JOIN vault_meta m ON k.epoch = m.current_epoch
    JOIN vault_devices d USING (device_id) WHERE d.label = 'first device'`;
  const d = new Decrypter();
  d.addIdentity(doc.identity as string);
  return await d.decrypt(new Uint8Array(row!.wrapped_key));
}

describe("postgres store: devices", () => {
  test("a device that is not a member is told which command adds it; once added it reads every secret", async () => {
    const { a, b } = await twoDevices();
    await a.putSecret("global", "openai_api_key", "sk-one");
    await a.putSecret("ws:acme", "github_token", "ghp-two");
    const refused = await rejectsWith(() => b.getSecret("global", "openai_api_key"), "permission");
    assert.ok(refused.hint?.includes(`palyra-secrets devices add ${b.device!.recipient}`), refused.hint);
    await rejectsWith(() => b.addDevice(b.device!.recipient), "permission", /not a member/);
    await a.addDevice(b.device!.recipient, { label: "laptop" });
    using one = await b.getSecret("global", "openai_api_key");
    using two = await b.getSecret("ws:acme", "github_token");
    assert.deepEqual([one.text(), two.text()], ["sk-one", "ghp-two"]);
    await b.putSecret("global", "from_b", "written by b");
    using back = await a.getSecret("global", "from_b");
    assert.equal(back.text(), "written by b");
    const devices = await a.listDevices();
    assert.deepEqual(devices.map((d) => [d.label, d.self]), [["first device", true], ["laptop", false]]);
    await rejectsWith(() => a.addDevice("age1notarecipient"), "invalid_config", /not an age X25519 recipient/);
  });

  test("a removed device reads nothing written after its removal, even with a dump and its own identity", async () => {
    const { pg, url, dir, a, b, sql } = await twoDevices();
    await a.addDevice(b.device!.recipient);
    for (let i = 0; i < 450; i++) await a.putSecret("ws:many", `k${i}`, `before-${i}`);
    using seen = await b.getSecret("ws:many", "k1");
    assert.equal(seen.text(), "before-1");
    const progress: number[] = [];
    const rewrapped = await a.removeDevice(b.device!.id, { onProgress: (p) => progress.push(p.done) });
    assert.equal(rewrapped, 450);
    assert.deepEqual([progress[0], progress.at(-1)], [0, 450]);
    // Every envelope is under the new epoch, and only members hold its key.
    assert.deepEqual(await sql`SELECT DISTINCT epoch FROM vault_secrets`.then((r) => r.map((x) => x.epoch)), [2]);
    await a.putSecret("global", "after", "written after the removal");
    using stillA = await a.getSecret("ws:many", "k449");
    assert.equal(stillA.text(), "before-449");
    // b, still open with the old key in memory, and b opened again: neither reads the new secret.
    await rejectsWith(() => b.getSecret("global", "after"), "permission");
    const bAgain = await openOn(url, join(dir, "b"));
    await rejectsWith(() => bAgain.getSecret("global", "after"), "permission");
    await rejectsWith(() => bAgain.getSecret("ws:many", "k1"), "permission");
    // With the whole database and b's age identity: no wrapped key in the dump opens with it.
    const dump = await pg.dump(url);
    const doc = await loadOrCreateItem({ fs: defaultFileSystem }, join(dir, "b"), "vault/device.age-identity", () => {
      throw new Error("b has an identity");
    });
    const wrapped = [...dump.matchAll(/\\\\x(6167652d656e6372797074696f6e2e6f72672f7631[0-9a-f]+)/g)].map((m) => m[1]!);
    assert.ok(wrapped.length >= 1, "the dump holds the wrapped vault keys");
    for (const w of wrapped) {
      const d = new Decrypter();
      d.addIdentity(doc.identity as string);
      await assert.rejects(() => d.decrypt(Uint8Array.from(w.match(/../g)!.map((x) => parseInt(x, 16)))));
    }
    await rejectsWith(() => a.removeDevice(a.device!.id), "invalid_config", /this device/);
    await rejectsWith(() => a.removeDevice("d_0000000000000000"), "not_found");
    // Removing again is a no-op that finds nothing left to rewrap.
    assert.equal(await a.removeDevice(b.device!.id), 0);
  });

  test("a rewrap interrupted by a crash is finished by running the removal again", async () => {
    const { a, b, sql } = await twoDevices();
    await a.addDevice(b.device!.recipient);
    for (let i = 0; i < 30; i++) await a.putSecret("global", `k${i}`, `v${i}`);
    // The crash: the removal's first transaction committed, the rewrap never ran.
    const failing = a.removeDevice(b.device!.id, {
      onProgress: (p) => {
        if (p.done === 0) throw new Error("crash after the epoch change");
      },
    });
    await assert.rejects(failing, /crash after the epoch change/);
    assert.equal(Number((await sql`SELECT count(*) AS n FROM vault_secrets WHERE epoch = 1`)[0]!.n), 30);
    using readable = await a.getSecret("global", "k3"); // still readable mid-way
    assert.equal(readable.text(), "v3");
    assert.equal(await a.removeDevice(b.device!.id), 30);
    assert.equal(Number((await sql`SELECT count(*) AS n FROM vault_secrets WHERE epoch = 1`)[0]!.n), 0);
    assert.equal(Number((await sql`SELECT count(*) AS n FROM vault_keys WHERE epoch = 1`)[0]!.n), 0);
  });

  test("a removal whose commit fails leaves no key cached for the epoch that never was", async () => {
    const { url, dir, a, b, sql } = await twoDevices();
    const c = await openOn(url, join(dir, "c"));
    await a.addDevice(b.device!.recipient);
    await a.addDevice(c.device!.recipient);
    // A deferred constraint trigger makes the removal's COMMIT itself fail, after everything in it ran.
    await sql.unsafe(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'refused at commit'; END $$`);
    await sql.unsafe(`CREATE CONSTRAINT TRIGGER refuse_epoch AFTER UPDATE ON vault_meta
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse()`);
    await rejectsWith(() => a.removeDevice(c.device!.id), "io", /refused at commit/);
    await sql.unsafe("DROP TRIGGER refuse_epoch ON vault_meta");
    // Epoch 2 is made by b, with a key of its own; a must seal under that one, not one it made for nothing.
    await b.removeDevice(c.device!.id);
    await a.putSecret("global", "after", "from a");
    using v = await b.getSecret("global", "after");
    assert.equal(v.text(), "from a");
  });

  test("a dump holds no plaintext, no data key and no vault key in the clear", async () => {
    const { pg, url, dir, a, sql } = await twoDevices();
    const values = ["sk-live-4f9a8b7c6d5e", "ghp_0123456789abcdefghij", "correct horse battery staple"];
    for (const [i, v] of values.entries()) await a.putSecret("global", `k${i}`, v);
    const dump = await pg.dump(url);
    const lower = dump.toLowerCase();
    const forms = (bytes: Uint8Array) => [hex(bytes), btoa(String.fromCharCode(...bytes)).replace(/=+$/, "")];
    for (const v of values) {
      const bytes = new TextEncoder().encode(v);
      assert.ok(!dump.includes(v), "a value in the clear");
      for (const f of forms(bytes)) {
        assert.ok(!lower.includes(f.toLowerCase()) && !dump.includes(f), "an encoded value");
      }
    }
    const vaultKey = await vaultKeyOf(sql, join(dir, "a"));
    for (const f of forms(vaultKey)) assert.ok(!dump.includes(f) && !lower.includes(f.toLowerCase()), "the vault key");
    const rows = await sql`SELECT scope, key, envelope FROM vault_secrets`;
    assert.equal(rows.length, values.length);
    for (const row of rows) {
      const env = decodeEnvelope(row.scope, row.key, new Uint8Array(row.envelope));
      const dek = gcm(vaultKey, env.dekNonce, env.aad).decrypt(env.dekSealed);
      assert.equal(dek.length, 32);
      for (const f of forms(dek)) assert.ok(!dump.includes(f) && !lower.includes(f.toLowerCase()), "a data key");
    }
  });

  test("a row moved to another scope or key by hand is refused as crypto", async () => {
    const { a, sql } = await twoDevices();
    await a.putSecret("ws:acme", "db_password", "hunter2");
    await a.putSecret("ws:other", "db_password", "other");
    await sql`UPDATE vault_secrets SET scope = 'ws:evil' WHERE scope = 'ws:acme'`;
    await rejectsWith(() => a.getSecret("ws:evil", "db_password"), "crypto");
    await sql`UPDATE vault_secrets SET scope = 'ws:acme', key = 'api_key' WHERE scope = 'ws:evil'`;
    await rejectsWith(() => a.getSecret("ws:acme", "api_key"), "crypto");
    // Another row's envelope copied over a key's.
    await sql`UPDATE vault_secrets SET envelope = (SELECT envelope FROM vault_secrets WHERE scope = 'ws:acme')
      WHERE scope = 'ws:other'`;
    await rejectsWith(() => a.getSecret("ws:other", "db_password"), "crypto");
  });

  test("LISTEN/NOTIFY: another device's put and delete reach a watcher", async () => {
    const { a, b } = await twoDevices();
    await a.addDevice(b.device!.recipient);
    const seen: string[] = [];
    const got = new Promise<void>((resolve) => {
      void b.watch((c) => {
        seen.push(`${c.op} ${c.scope}/${c.key} ${c.version}`);
        if (seen.length === 2) resolve();
      }).then((stop) => opened.push({ end: stop }));
    });
    await new Promise((r) => setTimeout(r, 300));
    await a.putSecret("global", "watched", "x");
    await a.deleteSecret("global", "watched");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`saw only ${seen}`)), 20_000)));
    await Promise.race([got, late]).finally(() => clearTimeout(timer));
    assert.deepEqual(seen, ["put global/watched 1", "delete global/watched 1"]);
    // Closed here: a vault closed while it reconnects has a test of its own below.
    a.close();
    b.close();
  });
});

describe("postgres store: connections lost", () => {
  test("connections killed during writes lose nothing acknowledged and leave no half-written row", async () => {
    const { a, sql } = await twoDevices({ keepVersions: 1000 });
    const acknowledged = new Map<string, string>();
    let failed = 0;
    let stop = false;
    const killer = (async () => {
      let kills = 0;
      while (!stop) {
        // Only the vault's connections that are in the middle of a write: in a transaction, or holding a row.
        const r = await sql`SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
          WHERE application_name = 'palyra-vault' AND (state = 'idle in transaction' OR backend_xid IS NOT NULL)`;
        kills += Number(r[0]!.n);
        await new Promise((res) => setTimeout(res, 40 + Math.random() * 80));
      }
      return kills;
    })();
    for (let i = 0; i < 150; i++) {
      const value = `value-${i}-${Math.random()}`;
      try {
        const r = await a.putSecret("ws:kill", `k${i % 10}`, value);
        acknowledged.set(`k${i % 10}@${r.version}`, value);
      } catch (e) {
        assert.equal((e as { code?: string }).code, "backend_unavailable", String(e));
        failed++;
      }
    }
    stop = true;
    const kills = await killer;
    assert.ok(kills > 0, "the killer terminated connections");
    assert.ok(acknowledged.size > 0, "some writes were acknowledged");
    for (const [at, value] of acknowledged) {
      const [key, version] = at.split("@");
      using got = await a.getSecret("ws:kill", key!, { version: Number(version) });
      assert.equal(got.text(), value, `acknowledged ${at}`);
    }
    // Every row there is opens: no half-written row, and versions have no holes.
    const rows = await sql`SELECT key, version FROM vault_secrets ORDER BY key, version`;
    const byKey = new Map<string, number[]>();
    for (const r of rows) byKey.set(r.key, [...(byKey.get(r.key) ?? []), Number(r.version)]);
    for (const [key, versions] of byKey) {
      assert.deepEqual(versions, versions.map((_, i) => i + 1), `versions of ${key}`);
      for (const v of versions) (await a.getSecret("ws:kill", key, { version: v })).dispose();
    }
    assert.equal(acknowledged.size + failed, 150, "every write either was acknowledged or failed typed");
  });

  test("a vault closed while it reconnects to a restarted server leaves no connection behind", async () => {
    // Found as a Node test process that never exited: the client, ended while it waited to reconnect for a
    // pending LISTEN, still reconnected when its timer fired and kept that connection open for good.
    const { pg, a, url } = await twoDevices();
    const sql = client(pg, url);
    const database = databaseOf(url);
    await a.putSecret("global", "k", "v");
    await a.watch(() => {});
    await pg.stop();
    await new Promise((r) => setTimeout(r, 2500)); // the watcher's reconnect waits grow meanwhile
    await pg.start();
    a.close();
    const mine = async () =>
      Number(
        (await sql`SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = ${database} AND application_name = 'palyra-vault'`)[0]!.n,
      );
    // Longer than the longest wait between reconnects (3 s).
    for (let i = 0; i < 16; i++) {
      await new Promise((r) => setTimeout(r, 250));
      assert.equal(await mine(), 0, `a connection of the closed vault, ${(i + 1) * 250} ms after close`);
    }
  });

  test("a server restart: reads during the outage fail typed, then work again without reopening", async () => {
    const { pg, a } = await twoDevices();
    await a.putSecret("global", "k", "v");
    await pg.stop();
    try {
      await rejectsWith(() => a.getSecret("global", "k"), "backend_unavailable", /connection/);
      await rejectsWith(() => a.putSecret("global", "k", "w"), "backend_unavailable");
    } finally {
      await pg.start();
    }
    using back = await a.getSecret("global", "k");
    assert.equal(back.text(), "v");
    await a.putSecret("global", "k", "after restart");
  });
});
