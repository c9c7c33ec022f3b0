/**
 * `fsck` (docs/FORMAT.md §5.6) on a vault folder damaged the ways a disk, a crash or a person damage
 * it: a deleted index is rebuilt from the envelopes, a corrupt object is moved aside and reported,
 * leftovers are removed once old, and a secret that opens is never moved or deleted — checked by
 * hand-made damage and by a fast-check property over random damage. The CLI runs on each target.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import process from "node:process";
import { lockHostName } from "../src/store/scope_lock.ts";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { Vault } from "../src/vault.ts";
import { MemoryBackend } from "../src/backends/memory.ts";
import { checkVault } from "../src/fsck.ts";
import { diagnose } from "../src/doctor.ts";
import { objectId, scopeDirName } from "../src/crypto/ids.ts";
import { kekId } from "../src/crypto/kdf.ts";
import { CLI_TARGETS, ownTargets } from "./cli_targets.ts";
import { cliEnv, randomBytes, rejectsWith, run, seedIdentity, tempDir, testKek } from "./helpers.ts";
import { defaultFileSystem, type FileSystem } from "../src/platform/fs.ts";

const KEK = testKek(9);
const SEED: Array<[string, string, Uint8Array]> = [
  ["global", "openai_api_key", new TextEncoder().encode("sk-fsck-1")],
  ["global", "big", randomBytes(64 * 1024)],
  ["ws:acme", "github_token", new TextEncoder().encode("ghp-fsck-2")],
  ["ws:acme", "db_url", new TextEncoder().encode("postgres://fsck-3")],
  ["pr:bob", "token", new TextEncoder().encode("tok-fsck-4")],
];

async function seeded(label: string, kek = KEK) {
  const root = join(tempDir(label), "vault");
  const vault = await Vault.open({ root, kek, backend: "encrypted_file" });
  for (const [s, k, v] of SEED) await vault.putSecret(s, k, v);
  return { root, vault };
}

const OUR_KEK_ID = kekId(KEK);
const objectPath = (root: string, scope: string, key: string) => join(root, "objects", objectId(scope, key));
const scopeDir = (root: string, scope: string) => join(root, "scopes", scopeDirName(scope));
const codes = (r: { findings: Array<{ code: string }> }) => r.findings.map((f) => f.code).sort();

async function values(vault: Vault): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const m of await vault.listSecrets()) {
    using v = await vault.getSecret(m.scope, m.key);
    out.set(`${m.scope}/${m.key}`, Buffer.from(v.bytes).toString("hex"));
  }
  return out;
}

describe("fsck (library)", () => {
  test("a healthy vault has no findings", async () => {
    const { vault } = await seeded("clean");
    const r = await checkVault(vault);
    assert.deepEqual(r, { secrets: 5, objects: 5, findings: [], repaired: 0, unresolved: 0 });
  });

  test("a deleted index is rebuilt exactly from the objects (one scope's files, then the whole scopes/ folder)", async () => {
    const { root, vault } = await seeded("deleted");
    const before = await vault.listSecrets();
    const valuesBefore = await values(vault);
    for (const f of ["metadata.json", "metadata.log"]) rmSync(join(scopeDir(root, "ws:acme"), f), { force: true });
    const seen = await checkVault(vault);
    assert.deepEqual(codes(seen), ["orphan_object", "orphan_object"]);
    assert.equal(seen.unresolved, 2);
    assert.equal((await vault.listSecrets("ws:acme")).length, 0);
    const fixed = await checkVault(vault, { repair: true });
    assert.deepEqual(fixed.findings.map((f) => f.repair), ["entry_added", "entry_added"]);
    assert.equal(fixed.unresolved, 0);
    const strip = (l: typeof before) => l.map(({ scope, key, valueBytes }) => ({ scope, key, valueBytes }));
    assert.deepEqual(strip(await vault.listSecrets()), strip(before));
    rmSync(join(root, "scopes"), { recursive: true });
    assert.equal((await checkVault(vault, { repair: true })).findings.length, 5);
    assert.deepEqual(strip(await vault.listSecrets()), strip(before));
    assert.deepEqual(await values(vault), valuesBefore);
    // The times come from the object files: the write's own time, to within the write.
    const after = await vault.listSecrets("pr:bob");
    const was = before.find((m) => m.scope === "pr:bob")!;
    assert.ok(Math.abs(after[0]!.updatedAtUnixMs - was.updatedAtUnixMs) < 5_000);
    assert.deepEqual(await checkVault(vault), { secrets: 5, objects: 5, findings: [], repaired: 0, unresolved: 0 });
  });

  test("a corrupt index is moved aside and rebuilt", async () => {
    const { root, vault } = await seeded("corrupt-index");
    const dir = scopeDir(root, "global");
    writeFileSync(join(dir, "metadata.json"), "{ not json");
    const seen = await checkVault(vault);
    assert.ok(codes(seen).includes("index_corrupt"));
    const fixed = await checkVault(vault, { repair: true });
    assert.equal(fixed.unresolved, 0);
    assert.equal(readFileSync(join(dir, "metadata.json.corrupt-1"), "utf8"), "{ not json");
    assert.equal((await vault.listSecrets("global")).length, 2);
    using v = await vault.getSecret("global", "openai_api_key");
    assert.equal(v.text(), "sk-fsck-1");
  });

  test("a corrupt object is moved aside and reported; the others stay", async () => {
    const { root, vault } = await seeded("corrupt-object");
    const path = objectPath(root, "ws:acme", "github_token");
    const env = JSON.parse(readFileSync(path, "utf8"));
    env.secret_mac_b64 = env.secret_mac_b64.replace(/^./, (c: string) => (c === "A" ? "B" : "A"));
    const damaged = JSON.stringify(env);
    writeFileSync(path, damaged);
    const seen = await checkVault(vault);
    assert.deepEqual(seen.findings.map((f) => [f.code, f.scope, f.key]), [[
      "unreadable_object",
      "ws:acme",
      "github_token",
    ]]);
    assert.equal(readFileSync(path, "utf8"), damaged); // a check changes nothing
    const fixed = await checkVault(vault, { repair: true });
    assert.equal(fixed.findings[0]!.repair, "moved_aside");
    assert.equal(existsSync(path), false);
    assert.equal(readFileSync(`${path}.corrupt-1`, "utf8"), damaged);
    assert.deepEqual((await vault.listSecrets("ws:acme")).map((m) => m.key), ["db_url"]);
    assert.equal((await values(vault)).size, 4);
  });

  test("an object sealed with another key is reported and left; a missing object's entry is removed", async () => {
    const { root, vault } = await seeded("foreign");
    const other = await seeded("foreign-other", testKek(10));
    const theirs = readFileSync(objectPath(other.root, "pr:bob", "token"));
    writeFileSync(objectPath(root, "pr:bob", "token"), theirs);
    rmSync(objectPath(root, "global", "openai_api_key"));
    const fixed = await checkVault(vault, { repair: true });
    assert.deepEqual(fixed.findings.map((f) => [f.code, f.repair]).sort(), [
      ["foreign_key", "left"],
      ["missing_object", "entry_removed"],
    ]);
    assert.deepEqual(readFileSync(objectPath(root, "pr:bob", "token")), theirs);
    assert.equal(fixed.unresolved, 1);
    assert.equal((await vault.listSecrets("global")).length, 1);
  });

  test("regression: an object with no kek_id that no key could open is unreadable and moved aside, not left as another key's", async () => {
    // The property below found it (seed -852737823): an index lost, and two bits flipped in one object, turning
    // `"version"` into `"wersion"` and `"kek_id"` into `"jek_id"`. fsck took it for an object of another key (one that
    // names none, as Palyra's daemon writes them) and left it, so every later repair found it again.
    const { root, vault } = await seeded("broken-no-kek-id");
    const other = await seeded("broken-no-kek-id-other", testKek(10));
    const damage = (scope: string, key: string, change: (env: Record<string, string | number>) => void) => {
      const path = objectPath(root, scope, key);
      const env = JSON.parse(readFileSync(path, "utf8"));
      delete env.kek_id;
      change(env);
      writeFileSync(path, JSON.stringify(env));
      return path;
    };
    const noVersion = damage("global", "big", (env) => delete env.version);
    // The data key opens under this vault's key, so the object is this vault's, and its value was modified.
    const badValue = damage("global", "openai_api_key", (env) => {
      env.secret_mac_b64 = String(env.secret_mac_b64).replace(/^./, (c) => (c === "A" ? "B" : "A"));
    });
    // Another key's object that names no kek_id: still another key's, and left.
    const theirs = JSON.parse(readFileSync(objectPath(other.root, "ws:acme", "db_url"), "utf8"));
    delete theirs.kek_id;
    writeFileSync(objectPath(root, "ws:acme", "db_url"), JSON.stringify(theirs));
    // A version this vault does not know, beside another key's kek_id: perhaps a newer writer's, and left.
    const newer = JSON.parse(readFileSync(objectPath(root, "pr:bob", "token"), "utf8"));
    writeFileSync(
      objectPath(root, "pr:bob", "token"),
      JSON.stringify({ ...newer, version: 2, kek_id: "0123456789abcdef" }),
    );
    for (const scope of ["global", "ws:acme", "pr:bob"]) {
      for (const f of ["metadata.json", "metadata.log"]) rmSync(join(scopeDir(root, scope), f), { force: true });
    }
    const fixed = await checkVault(vault, { repair: true });
    assert.deepEqual(fixed.findings.map((f) => [f.code, f.scope, f.key, f.repair]).sort(), [
      ["orphan_object", "pr:bob", "token", "left"],
      ["orphan_object", "ws:acme", "db_url", "left"],
      ["orphan_object", "ws:acme", "github_token", "entry_added"],
      ["unreadable_object", "global", "big", "moved_aside"],
      ["unreadable_object", "global", "openai_api_key", "moved_aside"],
    ]);
    assert.match(fixed.findings.find((f) => f.key === "token")!.message, /kek_id "0123456789abcdef".*version 2/);
    assert.match(fixed.findings.find((f) => f.key === "big")!.message, /not a well-formed envelope.*version/);
    assert.match(fixed.findings.find((f) => f.key === "openai_api_key")!.message, /does not authenticate/);
    assert.equal(existsSync(`${noVersion}.corrupt-1`) && existsSync(`${badValue}.corrupt-1`), true);
    // A second repair finds only what it must leave: the objects another key or writer may open.
    const again = await checkVault(vault, { repair: true });
    assert.deepEqual(again.findings.map((f) => [f.code, f.key, f.repair]).sort(), [
      ["orphan_object", "db_url", "left"],
      ["orphan_object", "token", "left"],
    ]);
  });

  test("regression: on another backend fsck judges an object that does not open as it does on the file backend", async () => {
    // fsck without repairs, for backends other than the file one: it called any object naming no kek_id unreadable
    // (another key's, as Palyra's daemon writes them, among them) and any naming another kek_id another key's
    // (a malformed one among them).
    const backend = new MemoryBackend();
    const vault = await Vault.open({ root: join(tempDir("fsck-memory"), "vault"), kek: KEK, backend });
    const other = await Vault.open({
      root: join(tempDir("fsck-memory-other"), "vault"),
      kek: testKek(10),
      backend: "encrypted_file",
    });
    for (const [s, k, v] of SEED.slice(2)) await vault.putSecret(s, k, v);
    await other.putSecret("ws:acme", "github_token", "theirs");
    const edit = async (scope: string, key: string, from: Vault, change: (env: Record<string, unknown>) => void) => {
      const id = objectId(scope, key);
      const bytes = from === vault ? await backend.get(id) : readFileSync(join(from.root, "objects", id));
      const env = JSON.parse(new TextDecoder().decode(bytes));
      change(env);
      await backend.put(id, new TextEncoder().encode(JSON.stringify(env)));
    };
    await edit("ws:acme", "github_token", other, (env) => delete env.kek_id);
    await edit("ws:acme", "db_url", vault, (env) => {
      delete env.version;
      env.kek_id = "0123456789abcdef";
    });
    const seen = await checkVault(vault);
    assert.deepEqual(seen.findings.map((f) => [f.code, f.key]).sort(), [
      ["foreign_key", "github_token"],
      ["unreadable_object", "db_url"],
    ]);
    assert.match(seen.findings.find((f) => f.key === "db_url")!.message, /not a well-formed envelope.*version/);
    vault.close();
    other.close();
  });

  test("a size that disagrees with the value is fixed from the value", async () => {
    const { root, vault } = await seeded("size");
    const dir = scopeDir(root, "pr:bob");
    for (const f of ["metadata.json", "metadata.log"]) rmSync(join(dir, f), { force: true });
    // A version 2 snapshot written by hand from docs/FORMAT.md §5.1, with a wrong size.
    writeFileSync(
      join(dir, "metadata.json"),
      JSON.stringify({ version: 2, scope: "pr:bob", generation: 1, entries: [["token", 1, 2, 999]] }),
    );
    const fixed = await checkVault(vault, { repair: true });
    assert.deepEqual(fixed.findings.map((f) => [f.code, f.repair]), [["size_mismatch", "entry_fixed"]]);
    assert.equal((await vault.listSecrets("pr:bob"))[0]!.valueBytes, "tok-fsck-4".length);
  });

  test("leftovers are listed; a repair removes those older than a minute and leaves fresh ones", async () => {
    const { root, vault } = await seeded("leftovers");
    const old = join(root, "objects", ".obj_x.0123456789abcdef.tmp");
    const fresh = join(root, "objects", ".obj_y.0123456789abcdef.tmp");
    writeFileSync(old, "partial");
    writeFileSync(fresh, "partial");
    const past = (Date.now() - 120_000) / 1000;
    utimesSync(old, past, past);
    const fixed = await checkVault(vault, { repair: true });
    assert.deepEqual(fixed.findings.map((f) => [f.path, f.repair]).sort(), [[fresh, "left"], [old, "removed"]].sort());
    assert.equal(existsSync(old), false);
    assert.equal(existsSync(fresh), true);
  });

  test("regression: a folder that cannot be read stops fsck; a repair never reads it as empty", async () => {
    const { root } = await seeded("unreadable-dir");
    const failing: FileSystem = {
      ...defaultFileSystem,
      readDir: (path) =>
        path.endsWith("objects")
          ? Promise.reject(Object.assign(new Error("injected EIO"), { code: "EIO" }))
          : defaultFileSystem.readDir(path),
    };
    const vault = await Vault.open({ root, kek: KEK, backend: "encrypted_file", host: { fs: failing } });
    await rejectsWith(() => checkVault(vault, { repair: true }), "io", /list folder.*objects.*EIO/);
    // Before, the objects looked absent and the repair removed every entry.
    assert.equal((await vault.listSecrets()).length, 5);
  });

  test("a lock whose holder is gone is listed, and a repair reclaims it; a live holder's lock is not listed", async () => {
    const { root, vault } = await seeded("stale-lock");
    const dead = Number(new TextDecoder().decode((await run(["node", "-e", "console.log(process.pid)"])).stdout));
    const host = lockHostName();
    const plant = (scope: string, pid: number) => {
      const lock = join(scopeDir(root, scope), ".metadata.lock");
      mkdirSync(lock, { mode: 0o700 });
      writeFileSync(
        join(lock, "0123456789abcdef"),
        `pid=${pid} host=${host} ts_ms=${Date.now()} nonce=0123456789abcdef\n`,
      );
      return lock;
    };
    const stale = plant("ws:acme", dead);
    const live = plant("pr:bob", process.pid);
    const seen = await checkVault(vault);
    assert.deepEqual(seen.findings.map((f) => [f.code, f.scope, f.path]), [["leftover", "ws:acme", stale]]);
    const fixed = await checkVault(vault, { repair: true });
    assert.equal(fixed.findings[0]!.repair, "removed");
    assert.equal(existsSync(stale), false);
    assert.equal(existsSync(live), true);
    rmSync(live, { recursive: true });
  });

  test("doctor reports what fsck would find, opening no secret", async () => {
    const { root } = await seeded("doctor");
    rmSync(join(scopeDir(root, "ws:acme"), "metadata.json"), { force: true });
    rmSync(join(scopeDir(root, "ws:acme"), "metadata.log"), { force: true });
    const report = await diagnose({ root, identityRoot: join(root, "..", "no-identity") });
    assert.deepEqual(report.problems.map((p) => p.code), ["fsck_orphan_object", "fsck_orphan_object"]);
    assert.match(report.problems[0]!.message, /ws:acme\//);
  });

  test("a vault without a key record (written before it existed): reported, and a repair records the key once every object is the vault's", async () => {
    const dir = tempDir("no-record");
    const env = cliEnv(dir);
    await seedIdentity(env.PALYRA_IDENTITY_DIR);
    const root = env.PALYRA_VAULT_DIR;
    const vault = await Vault.open({ root, identityRoot: env.PALYRA_IDENTITY_DIR, backend: "encrypted_file" });
    for (const [s, k, v] of SEED) await vault.putSecret(s, k, v);
    const ours = kekId(await (await Vault._parts(vault, "read the key")).kek());
    rmSync(join(root, "kek.id"));
    // Without it, a write through another identity's key is taken: nothing says this vault is not its.
    const other = await seeded("no-record-other", testKek(10));
    writeFileSync(objectPath(root, "pr:bob", "token"), readFileSync(objectPath(other.root, "pr:bob", "token")));
    const cli = await CLI_TARGETS[ownTargets()[0]!]();
    const json = async (args: string[]) => {
      const r = await run([...cli, ...args, "--json"], { env });
      return { code: r.code, out: JSON.parse(new TextDecoder().decode(r.stdout)), stderr: r.stderr };
    };
    const doctor = await json(["doctor"]);
    assert.ok(
      doctor.out.problems.some((p: { code: string }) => p.code === "fsck_key_record_missing"),
      JSON.stringify(doctor.out.problems),
    );
    // An object of another key: which key is the vault's is not proven, so the repair leaves the record unwritten.
    const left = await json(["fsck", "--repair"]);
    assert.equal(left.code, 3, left.stderr);
    const pairs = (r: { findings: Array<{ code: string; repair: string }> }) =>
      r.findings.map((f) => [f.code, f.repair]).sort();
    assert.deepEqual(pairs(left.out), [["foreign_key", "left"], ["key_record_missing", "left"]]);
    assert.equal(existsSync(join(root, "kek.id")), false);
    // Once every object opens with the vault's key, the repair records it, and another key's writes are refused.
    await vault.putSecret("pr:bob", "token", "tok-fsck-4");
    const fixed = await json(["fsck", "--repair"]);
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.deepEqual(pairs(fixed.out), [["key_record_missing", "record_written"]]);
    assert.equal(readFileSync(join(root, "kek.id"), "utf8"), ours);
    const stranger = await Vault.open({ root, kek: testKek(10) });
    await rejectsWith(() => stranger.putSecret("global", "x", "y"), "identity", /kek_id/);
    const clean = await json(["fsck"]);
    assert.equal(clean.code, 0, clean.stderr);
    assert.deepEqual(clean.out.findings, []);
    for (const v of [vault, other.vault, stranger]) v.close();
  });

  test("property: after random damage, a repair never loses a secret whose object was not damaged", async () => {
    type Damage =
      | { kind: "drop_index"; scope: number }
      | { kind: "garble_index"; scope: number }
      | { kind: "flip_object"; secret: number; at: number }
      | { kind: "drop_object"; secret: number }
      | { kind: "swap_object"; from: number; to: number }
      | { kind: "leftover" };
    const scopes = ["global", "ws:acme", "pr:bob"];
    const damage = fc.oneof(
      fc.record({ kind: fc.constant("drop_index" as const), scope: fc.nat(2) }),
      fc.record({ kind: fc.constant("garble_index" as const), scope: fc.nat(2) }),
      fc.record({ kind: fc.constant("flip_object" as const), secret: fc.nat(4), at: fc.nat(400) }),
      fc.record({ kind: fc.constant("drop_object" as const), secret: fc.nat(4) }),
      fc.record({ kind: fc.constant("swap_object" as const), from: fc.nat(4), to: fc.nat(4) }),
      fc.record({ kind: fc.constant("leftover" as const) }),
    );
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(damage, { minLength: 1, maxLength: 4 }), async (damages: Damage[]) => {
        const { root, vault } = await seeded(`prop-${round++}`);
        const touched = new Set<number>();
        for (const d of damages) {
          if (d.kind === "drop_index" || d.kind === "garble_index") {
            const dir = scopeDir(root, scopes[d.scope]!);
            for (const f of ["metadata.json", "metadata.log"]) rmSync(join(dir, f), { force: true });
            if (d.kind === "garble_index") writeFileSync(join(dir, "metadata.json"), "[garbage");
          } else if (d.kind === "flip_object" || d.kind === "drop_object") {
            const [s, k] = SEED[d.secret]!;
            const p = objectPath(root, s, k);
            touched.add(d.secret);
            if (!existsSync(p)) continue;
            if (d.kind === "drop_object") rmSync(p);
            else {
              const bytes = readFileSync(p);
              const at = d.at % bytes.length;
              bytes[at] = bytes[at]! ^ 0x01;
              writeFileSync(p, bytes);
            }
          } else if (d.kind === "swap_object") {
            const [fs, fk] = SEED[d.from]!;
            const [ts, tk] = SEED[d.to]!;
            if (d.from === d.to || !existsSync(objectPath(root, fs, fk))) continue;
            touched.add(d.to);
            writeFileSync(objectPath(root, ts, tk), readFileSync(objectPath(root, fs, fk)));
          } else {
            writeFileSync(join(root, "objects", ".obj_z.0123456789abcdef.tmp"), "x");
          }
        }
        const before = new Set(readdirSync(join(root, "objects")));
        await checkVault(vault, { repair: true });
        // Every secret whose object was not damaged reads back whole.
        for (const [i, [s, k, v]] of SEED.entries()) {
          if (touched.has(i)) continue;
          using got = await vault.getSecret(s, k);
          assert.deepEqual(got.bytes, v);
          assert.ok((await vault.listSecrets(s)).some((m) => m.key === k), `${s}/${k} listed`);
        }
        // No file was deleted: what is gone from objects/ was moved aside (leftovers are too fresh to remove).
        const after = new Set(readdirSync(join(root, "objects")));
        for (const name of before) {
          assert.ok(after.has(name) || after.has(`${name}.corrupt-1`), `${name} kept`);
        }
        // A second repair finds only the fresh leftover, and objects whose damage left them naming another key or
        // none (kek_id), which another key may open and a repair leaves: never one that names this vault's own.
        const again = await checkVault(vault, { repair: true });
        for (const f of again.findings) {
          if (f.code === "leftover") continue;
          const left = f.code === "foreign_key" || (f.code === "orphan_object" && f.repair === "left");
          assert.ok(left, `${f.code} ${f.scope}/${f.key}: ${f.message}`);
          assert.ok(!readFileSync(f.path, "latin1").includes(`"kek_id":"${OUR_KEK_ID}"`), `${f.path} names our key`);
        }
        vault.close();
      }),
      { numRuns: 30 },
    );
  });
});

for (const target of ownTargets()) {
  describe(`fsck on ${target}`, () => {
    test("reports with exit 3, repairs, then exits 0; doctor lists the findings first", async () => {
      const dir = tempDir("fsck-cli");
      const env = cliEnv(dir);
      await seedIdentity(env.PALYRA_IDENTITY_DIR);
      const cmd = await CLI_TARGETS[target]();
      const cli = (args: string[], input?: string) =>
        run([...cmd, ...args], { env, cwd: dir, ...(input === undefined ? {} : { input }) });
      for (const [ref, value] of [["ws:acme/a", "va"], ["ws:acme/b", "vb"], ["global/c", "vc"]] as const) {
        assert.equal((await cli(["set", ref], value)).code, 0);
      }
      const root = env.PALYRA_VAULT_DIR;
      rmSync(join(root, "scopes", scopeDirName("ws:acme")), { recursive: true });
      const bad = objectPath(root, "global", "c");
      writeFileSync(bad, "{}");
      const doctor = await cli(["doctor", "--json"]);
      assert.equal(doctor.code, 0, doctor.stderr);
      assert.deepEqual(
        JSON.parse(new TextDecoder().decode(doctor.stdout)).problems.map((p: { code: string }) => p.code).sort(),
        ["fsck_orphan_object", "fsck_orphan_object", "fsck_unreadable_object"],
      );
      const check = await cli(["fsck"]);
      assert.equal(check.code, 3, check.stderr);
      assert.match(new TextDecoder().decode(check.stdout), /findings=3 repaired=0 unresolved=3\n$/);
      const repair = await cli(["fsck", "--repair", "--json"]);
      assert.equal(repair.code, 0, repair.stderr);
      const report = JSON.parse(new TextDecoder().decode(repair.stdout));
      assert.deepEqual(
        report.findings.map((f: { code: string; repair: string }) => `${f.code}:${f.repair}`).sort(),
        ["orphan_object:entry_added", "orphan_object:entry_added", "unreadable_object:moved_aside"],
      );
      const got = await cli(["get", "ws:acme/b", "--reveal"]);
      assert.equal(new TextDecoder().decode(got.stdout), "vb");
      assert.equal(existsSync(`${bad}.corrupt-1`), true);
      assert.equal((await cli(["fsck"])).code, 0);
    });

    test("a set, an overwrite and a delete that another process makes while fsck runs are no findings, and a repair reports nothing it did not do", async () => {
      const dir = tempDir("fsck-live");
      const env = cliEnv(dir);
      await seedIdentity(env.PALYRA_IDENTITY_DIR);
      const cmd = await CLI_TARGETS[target]();
      const cli = async (args: string[], input?: string) => {
        const r = await run([...cmd, ...args], { env, cwd: dir, ...(input === undefined ? {} : { input }) });
        assert.equal(r.code, 0, `palyra-secrets ${args.join(" ")}: ${r.stderr}`);
      };
      await cli(["set", "global/a"], "va");
      await cli(["set", "global/b"], "vb");
      const root = env.PALYRA_VAULT_DIR;
      // After fsck has read the indexes and before it lists the objects: a new secret (its object not yet in the
      // index fsck read) and a deleted one (its object gone from an index fsck read before the delete).
      let during: (() => Promise<void>) | undefined;
      let listings = 0;
      const fs: FileSystem = {
        ...defaultFileSystem,
        async readDir(p) {
          // The first listing of objects/ looks for leftovers, before the indexes are read; the second is the scan.
          if (p === join(root, "objects") && during !== undefined && ++listings % 2 === 0) {
            const run = during;
            during = undefined;
            await run();
          }
          return defaultFileSystem.readDir(p);
        },
      };
      const vault = await Vault.open({
        root,
        identityRoot: env.PALYRA_IDENTITY_DIR,
        backend: "encrypted_file",
        host: { fs },
      });
      during = async () => {
        await cli(["set", "global/c"], "vc");
        await cli(["delete", "global/b"]);
        await cli(["set", "global/a", "--force"], "a longer value than before");
      };
      const report = await checkVault(vault);
      assert.equal(during, undefined, "the other process ran during the check");
      assert.deepEqual(report.findings.map((f) => `${f.code} ${f.key}`), []);
      during = async () => {
        await cli(["set", "global/d"], "vd");
        await cli(["delete", "global/a"]);
        await cli(["set", "global/c", "--force"], "c, longer now");
      };
      const repaired = await checkVault(vault, { repair: true });
      assert.equal(during, undefined, "the other process ran during the repair");
      assert.deepEqual(repaired.findings.map((f) => `${f.code} ${f.key} ${f.repair}`), []);
      assert.deepEqual((await vault.listSecrets()).map((m) => m.key), ["c", "d"]);
      vault.close();
    });
  });
}
