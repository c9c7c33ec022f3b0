/**
 * Interoperability with an independent implementation of docs/FORMAT.md
 * (tests/interop/palyra_vault_ref.py, Python with `cryptography`): each side
 * reads what the other writes, in the same vault folder, with the same identity.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { Vault } from "../src/vault.ts";
import { scopeDirName } from "../src/crypto/ids.ts";
import { kekId } from "../src/crypto/kdf.ts";
import { rekeyVault } from "../src/rekey.ts";
import { randomBytes, rejectsWith, run, tempDir } from "./helpers.ts";

const REF = "tests/interop/palyra_vault_ref.py";

/** A Python that has `cryptography` (.ci/run installs Debian's python3-cryptography). */
function findPython(): string {
  for (const py of ["python3", "/usr/bin/python3"]) {
    const r = spawnSync(py, ["-c", "import cryptography"], { stdio: "ignore" });
    if (r.status === 0) return py;
  }
  throw new Error("no python3 with the cryptography package: apt-get install python3-cryptography");
}

describe("interop with the Python reference implementation", () => {
  const python = findPython();
  const ref = (root: string, idDir: string, args: string[], input?: Uint8Array) =>
    run([python, REF, "--root", root, "--identity-dir", idDir, ...args], input === undefined ? {} : { input });

  test("Python reads and lists what the library writes", async () => {
    const dir = tempDir("interop");
    const root = join(dir, "vault");
    const idDir = join(dir, "identity");
    const vault = await Vault.open({ root, identityRoot: idDir });
    const values = new Map<string, Uint8Array>([
      ["global/openai_api_key", new TextEncoder().encode("sk-interop")],
      ["ws:日本語 チーム/token", randomBytes(300)],
      ["pr:alice/empty", new Uint8Array(0)],
      ["ws:acme/big", randomBytes(65_536)],
    ]);
    for (const [r, v] of values) {
      const [scope, key] = [r.slice(0, r.lastIndexOf("/")), r.slice(r.lastIndexOf("/") + 1)];
      await vault.putSecret(scope, key, v);
    }
    for (const [r, v] of values) {
      const [scope, key] = [r.slice(0, r.lastIndexOf("/")), r.slice(r.lastIndexOf("/") + 1)];
      const got = await ref(root, idDir, ["get", scope, key]);
      assert.equal(got.code, 0, got.stderr);
      assert.deepEqual(got.stdout, v, r);
    }
    const listed = await run([python, REF, "--root", root, "list"]);
    assert.equal(listed.code, 0, listed.stderr);
    const theirs = JSON.parse(new TextDecoder().decode(listed.stdout));
    const ours = await vault.listSecrets();
    assert.deepEqual(
      theirs.map((
        e: Record<string, unknown>,
      ) => [e.scope, e.key, e.created_at_unix_ms, e.updated_at_unix_ms, e.value_bytes]),
      ours.map((m) => [m.scope, m.key, m.createdAtUnixMs, m.updatedAtUnixMs, m.valueBytes]),
    );
  });

  test("the library reads, lists, overwrites and deletes what Python writes", async () => {
    const dir = tempDir("interop");
    const root = join(dir, "vault");
    const idDir = join(dir, "identity");
    // The library creates the identity (with its first write); Python uses it.
    const vault = await Vault.open({ root, identityRoot: idDir });
    await vault.putSecret("global", "first", "x");
    const value = randomBytes(1000);
    const put = await ref(root, idDir, ["put", "ws:acme", "github_token"], value);
    assert.equal(put.code, 0, put.stderr);
    const put2 = await ref(root, idDir, ["put", "ws:acme", "another"], new TextEncoder().encode("x"));
    assert.equal(put2.code, 0, put2.stderr);
    using got = await vault.getSecret("ws:acme", "github_token");
    assert.deepEqual(got.bytes, value);
    assert.deepEqual((await vault.listSecrets("ws:acme")).map((m) => [m.key, m.valueBytes]), [
      ["another", 1],
      ["github_token", 1000],
    ]);
    const created = (await vault.listSecrets("ws:acme"))[1]!.createdAtUnixMs;
    const meta = await vault.putSecret("ws:acme", "github_token", "replaced");
    assert.equal(meta.createdAtUnixMs, created);
    const back = await ref(root, idDir, ["get", "ws:acme", "github_token"]);
    assert.equal(new TextDecoder().decode(back.stdout), "replaced");
    assert.equal(await vault.deleteSecret("ws:acme", "another"), true);
    const gone = await ref(root, idDir, ["get", "ws:acme", "another"]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /not_found/);
  });

  test("the scope index log: each side reads the other's records and compactions, and both ignore a torn tail", async () => {
    const dir = tempDir("interop");
    const root = join(dir, "vault");
    const idDir = join(dir, "identity");
    const scope = "ws:log";
    const vault = await Vault.open({ root, identityRoot: idDir });
    const pyList = async () => {
      const r = await run([python, REF, "--root", root, "list"]);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(new TextDecoder().decode(r.stdout)) as Record<string, unknown>[])
        .map((e) => [e.scope, e.key, e.created_at_unix_ms, e.updated_at_unix_ms, e.value_bytes]);
    };
    const ours = async () =>
      (await (await Vault.open({ root, identityRoot: idDir })).listSecrets())
        .map((m) => [m.scope, m.key, m.createdAtUnixMs, m.updatedAtUnixMs, m.valueBytes]);
    for (const k of ["a", "b", "c"]) await vault.putSecret(scope, k, `value-${k}`);
    assert.ok(await vault.deleteSecret(scope, "b"));
    await vault.putSecret(scope, "a", "longer value of a");
    assert.deepEqual(await pyList(), await ours(), "Python replays the library's records (CRC-32 by zlib)");
    const put = await ref(root, idDir, ["put", scope, "d"], new TextEncoder().encode("from python"));
    assert.equal(put.code, 0, put.stderr);
    const logPath = join(root, "scopes", scopeDirName(scope), "metadata.log");
    assert.match(readFileSync(logPath, "utf8"), /\["put","d",\d+,\d+,11\]\n$/, "Python appended a record");
    using d = await (await Vault.open({ root, identityRoot: idDir })).getSecret(scope, "d");
    assert.equal(d.text(), "from python");
    const listed = await ours();
    assert.deepEqual(listed.map((e) => e[1]), ["a", "c", "d"]);
    assert.deepEqual(await pyList(), listed);
    appendFileSync(logPath, '0123abcd ["put","zz",1,');
    assert.deepEqual(await pyList(), listed, "Python ignores the torn tail");
    assert.deepEqual(await ours(), listed, "the library ignores the torn tail");
    const put2 = await ref(root, idDir, ["put", scope, "e"], new TextEncoder().encode("e"));
    assert.equal(put2.code, 0, put2.stderr);
    assert.deepEqual((await ours()).map((e) => e[1]), ["a", "c", "d", "e"], "Python folded the torn log away");
    for (let i = 0; i < 300; i++) await vault.putSecret(scope, `n${i % 40}`, `v${i}`);
    assert.ok(
      JSON.parse(readFileSync(join(root, "scopes", scopeDirName(scope), "metadata.json"), "utf8")).generation >= 3,
    );
    assert.deepEqual(await pyList(), await ours(), "Python reads the library's compacted snapshot and new log");
  });

  test("the key record (docs/FORMAT.md §5.7): each side refuses to seal under a key the vault does not record", async () => {
    const root = join(tempDir("interop-kek"), "vault");
    const [k1, k2, k3] = [1, 2, 3].map((n) => new Uint8Array(32).fill(n)) as [Uint8Array, Uint8Array, Uint8Array];
    const py = (kek: Uint8Array, args: string[], input?: Uint8Array) =>
      run(
        [python, REF, "--root", root, "--kek-hex", Buffer.from(kek).toString("hex"), ...args],
        input === undefined ? {} : { input },
      );
    // Python creates the vault and records its key; the library takes the record.
    const made = await py(k1, ["put", "global", "from_python"], new TextEncoder().encode("p1"));
    assert.equal(made.code, 0, made.stderr);
    assert.equal(readFileSync(join(root, "kek.id"), "utf8").trim(), kekId(k1));
    const other = await Vault.open({ root, kek: k2 });
    await rejectsWith(() => other.putSecret("global", "from_k2", "x"), "identity", /kek_id/);
    const vault = await Vault.open({ root, kek: k1 });
    await vault.putSecret("global", "from_library", "l1");
    // The library re-keys; Python with the old key is refused, with the new one it reads and writes.
    await rekeyVault(vault, { toKek: k3 });
    const stale = await py(k1, ["put", "global", "late"], new TextEncoder().encode("late"));
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /identity/);
    const fresh = await py(k3, ["put", "global", "late"], new TextEncoder().encode("late"));
    assert.equal(fresh.code, 0, fresh.stderr);
    const got = await py(k3, ["get", "global", "from_library"]);
    assert.equal(new TextDecoder().decode(got.stdout), "l1");
    const reopened = await Vault.open({ root, kek: k3 });
    assert.deepEqual((await reopened.listSecrets()).map((m) => m.key), ["from_library", "from_python", "late"]);
    for (const v of [other, vault, reopened]) v.close();
  });

  test("an object Python moved to another key is rejected by the library", async () => {
    const dir = tempDir("interop");
    const root = join(dir, "vault");
    const idDir = join(dir, "identity");
    const vault = await Vault.open({ root, identityRoot: idDir });
    await vault.putSecret("global", "b", "B");
    await ref(root, idDir, ["put", "global", "a"], new TextEncoder().encode("A"));
    const { objectId } = await import("../src/crypto/ids.ts");
    const { copyFileSync } = await import("node:fs");
    copyFileSync(join(root, "objects", objectId("global", "a")), join(root, "objects", objectId("global", "b")));
    await rejectsWith(() => vault.getSecret("global", "b"), "crypto");
  });

  test("the library and the Python reference exclude each other through the lock folder", async () => {
    const dir = tempDir("interop-lock");
    const root = join(dir, "vault");
    const idDir = join(dir, "identity");
    const vault = await Vault.open({ root, identityRoot: idDir });
    await vault.putSecret("ws:acme", "seed", "x");
    const { acquireLock } = await import("../src/store/scope_lock.ts");
    const { defaultFileSystem } = await import("../src/platform/fs.ts");
    const { scopeDirName } = await import("../src/crypto/ids.ts");
    const lockPath = join(root, "scopes", scopeDirName("ws:acme"), ".metadata.lock");
    const held = await acquireLock(defaultFileSystem, lockPath, { timeoutMs: 5_000, staleAfterMs: 30_000, what: "t" });
    const blocked = await ref(root, idDir, ["--lock-timeout-ms", "300", "put", "ws:acme", "k"], new Uint8Array([1]));
    assert.equal(blocked.code, 1);
    assert.match(blocked.stderr, /lock_timeout/);
    await held.release();
    // Both at once: every put of either side lands.
    const theirs = Array.from(
      { length: 6 },
      (_, i) => ref(root, idDir, ["--lock-timeout-ms", "60000", "put", "ws:acme", `py${i}`], new Uint8Array([i])),
    );
    const ours = Array.from({ length: 20 }, (_, i) => vault.putSecret("ws:acme", `ts${i}`, new Uint8Array([i])));
    for (const r of await Promise.all(theirs)) assert.equal(r.code, 0, r.stderr);
    await Promise.all(ours);
    const keys = (await vault.listSecrets("ws:acme")).map((m) => m.key);
    assert.equal(keys.length, 1 + 6 + 20, keys.join(" "));
  });
});
