/**
 * Re-keying (docs/FORMAT.md §5.5): every data key is wrapped under the new key and the values'
 * ciphertext is left byte for byte; afterwards every secret opens with the new key only. A
 * `palyra-secrets rekey` killed with SIGKILL at a random point leaves each secret under one of the
 * two keys, and a second `rekey` finishes, on each CLI target.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import process from "node:process";
import { migrateVault, Vault } from "../src/vault.ts";
import { defaultFileSystem, type FileSystem } from "../src/platform/fs.ts";
import { type RekeyResult, rekeyVault } from "../src/rekey.ts";
import { kekId } from "../src/crypto/kdf.ts";
import { CLI_TARGETS, ownTargets } from "./cli_targets.ts";
import { cliEnv, randomBytes, rejectsWith, run, seedIdentity, tempDir, testKek } from "./helpers.ts";

const value = (i: number) => `value-${i}-${"x".repeat(i % 7)}`;

/** Every envelope file of the vault, by name. */
function envelopes(root: string): Map<string, Record<string, unknown>> {
  const dir = join(root, "objects");
  return new Map(
    readdirSync(dir).filter((n) => n.startsWith("obj_")).map((n) => [
      n,
      JSON.parse(readFileSync(join(dir, n), "utf8")),
    ]),
  );
}

/** Which of the two keys each secret opens with: "old", "new", or "neither". */
async function whichKey(
  root: string,
  oldKek: Uint8Array,
  newKek: Uint8Array,
  n: number,
  scope = "ws:acme",
): Promise<string[]> {
  const old = await Vault.open({ root, kek: oldKek });
  const neu = await Vault.open({ root, kek: newKek });
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const opens = async (v: Vault) => {
      try {
        using got = await v.getSecret(scope, `k${i}`);
        assert.equal(got.text(), value(i));
        return true;
      } catch (e) {
        if (e instanceof Error && "code" in e && e.code === "crypto") return false;
        throw e;
      }
    };
    const [o, w] = [await opens(old), await opens(neu)];
    out.push(o && w ? "both" : o ? "old" : w ? "new" : "neither");
  }
  old.close();
  neu.close();
  return out;
}

/**
 * A file layer that holds the first atomic write of a file matching `path`, just `before` it or just `after` it,
 * until `release()`; `reached` resolves when it is held.
 */
function gatedFs(path: RegExp, when: "before" | "after") {
  let held!: () => void;
  const reached = new Promise<void>((resolve) => (held = resolve));
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let done = false;
  const fs: FileSystem = {
    ...defaultFileSystem,
    async writeFileAtomic(p, data, mode) {
      const hold = !done && path.test(p);
      if (hold) done = true;
      if (hold && when === "before") {
        held();
        await gate;
      }
      await defaultFileSystem.writeFileAtomic(p, data, mode);
      if (hold && when === "after") {
        held();
        await gate;
      }
    },
  };
  return { fs, reached, release };
}

/**
 * A vault of four secrets whose handle's re-key is held just before it records its key (it has taken what it takes
 * first and read the record): `rekeyHeld` starts it, runs `other` (another process), and lets the re-key go on when
 * `other` has ended or 3 s have passed (it may be waiting for the re-key).
 */
async function heldRekeyVault(name: string) {
  const dir = tempDir(name);
  const env = cliEnv(dir);
  await seedIdentity(env.PALYRA_IDENTITY_DIR);
  const { fs, reached, release } = gatedFs(/[\\/]kek\.id$/, "before");
  const vault = await Vault.open({ root: env.PALYRA_VAULT_DIR, identityRoot: env.PALYRA_IDENTITY_DIR, host: { fs } });
  // A scope both layouts hold, so that a migration may move them.
  for (let i = 0; i < 4; i++) await vault.putSecret("skill:acme", `k${i}`, value(i));
  const rekeyHeld = async <T>(toKek: Uint8Array, other: () => Promise<T>): Promise<[RekeyResult | Error, T]> => {
    const first = rekeyVault(vault, { toKek }).then((r) => r, (e: unknown) => e as Error);
    await reached;
    const second = other();
    await Promise.race([second, new Promise((r) => setTimeout(r, 3000))]);
    release();
    return [await first, await second];
  };
  return { dir, env, vault, rekeyHeld };
}

describe("rekey (library)", () => {
  test("wraps every data key under the new key; values' ciphertext untouched; old key opens nothing", async () => {
    const root = join(tempDir("rekey"), "vault");
    const oldKek = testKek(1);
    const newKek = testKek(2);
    const vault = await Vault.open({ root, kek: oldKek, backend: "encrypted_file" });
    for (let i = 0; i < 5; i++) await vault.putSecret("ws:acme", `k${i}`, value(i));
    await vault.putSecret("global", "big", randomBytes(64 * 1024));
    const before = envelopes(root);
    const done = await rekeyVault(vault, { toKek: newKek });
    assert.equal(done.secrets, 6);
    assert.equal(done.rewrapped, 6);
    assert.equal(done.alreadyDone, 0);
    const after = envelopes(root);
    assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
    for (const [name, env] of after) {
      const old = before.get(name)!;
      for (const f of ["aad_b64", "secret_nonce_b64", "secret_ciphertext_b64", "secret_mac_b64", "algorithm"]) {
        assert.equal(env[f], old[f], `${name} ${f}`);
      }
      assert.notEqual(env.dek_ciphertext_b64, old.dek_ciphertext_b64);
      assert.notEqual(env.dek_nonce_b64, old.dek_nonce_b64);
      assert.equal(env.kek_id, done.kekId);
      assert.notEqual(old.kek_id, done.kekId);
    }
    assert.deepEqual(await whichKey(root, oldKek, newKek, 5), Array(5).fill("new"));
    // A second run finds everything done and changes no file.
    const again = await rekeyVault(vault, { toKek: newKek });
    assert.deepEqual([again.rewrapped, again.alreadyDone], [0, 6]);
    assert.deepEqual(envelopes(root), after);
  });

  test("to an identity folder: an identity is made there, and the vault opens with it", async () => {
    const dir = tempDir("rekey-id");
    const root = join(dir, "vault");
    await seedIdentity(join(dir, "old-id"));
    const vault = await Vault.open({ root, identityRoot: join(dir, "old-id"), backend: "encrypted_file" });
    await vault.putSecret("global", "token", "tok-1d");
    await rekeyVault(vault, { toIdentity: join(dir, "new-id") });
    const reopened = await Vault.open({ root, identityRoot: join(dir, "new-id") });
    using got = await reopened.getSecret("global", "token");
    assert.equal(got.text(), "tok-1d");
    const old = await Vault.open({ root, identityRoot: join(dir, "old-id") });
    await rejectsWith(() => old.getSecret("global", "token"), "crypto", /kek_id/);
  });

  test("a handle that still holds the old key refuses to seal a secret once another process re-keyed the vault", async () => {
    const dir = tempDir("rekey-stale");
    const env = cliEnv(dir);
    await seedIdentity(env.PALYRA_IDENTITY_DIR);
    // A long-lived handle (a daemon) opened with the identity before the re-key.
    const stale = await Vault.open({ root: env.PALYRA_VAULT_DIR, identityRoot: env.PALYRA_IDENTITY_DIR });
    for (let i = 0; i < 3; i++) await stale.putSecret("ws:acme", `k${i}`, value(i));
    const newKek = randomBytes(32);
    const kekFile = join(dir, "kek.hex");
    writeFileSync(kekFile, Buffer.from(newKek).toString("hex") + "\n");
    const cli = await CLI_TARGETS[ownTargets()[0]!]();
    const problems = async () => {
      const r = await run([...cli, "doctor", "--json"], { env });
      return (JSON.parse(new TextDecoder().decode(r.stdout)).problems as { code: string; message: string }[]);
    };
    assert.deepEqual(await problems(), []);
    const rekeyed = await run([...cli, "rekey", "--to-kek-file", kekFile], { env });
    assert.equal(rekeyed.code, 0, rekeyed.stderr);
    // doctor says why the identity no longer reads or writes.
    const after = await problems();
    assert.deepEqual(after.map((p) => p.code), ["identity_key_mismatch"]);
    assert.match(after[0]!.message, new RegExp(`kek_id "${kekId(newKek)}"`));
    // Its writes, into a scope the re-key went through or into a new one, would be sealed under the old key.
    await rejectsWith(() => stale.putSecret("ws:acme", "k0", "rotated token"), "identity", /re-keyed|kek_id/);
    await rejectsWith(() => stale.putSecret("ws:acme", "late", "late token"), "identity", /kek_id/);
    await rejectsWith(() => stale.putSecret("skill:new", "late", "late token"), "identity", /kek_id/);
    // So does the CLI run with the identity the vault was re-keyed away from; with the new key it writes.
    const oldSet = await run([...cli, "set", "ws:acme", "cli_late"], { env, input: "from the cli" });
    assert.equal(oldSet.code, 1, oldSet.stderr);
    assert.match(oldSet.stderr, /identity: .*kek_id/);
    assert.match(oldSet.stderr, /--kek-file|--identity-dir/);
    const newSet = await run([...cli, "set", "ws:acme", "cli_new", "--kek-file", kekFile], { env, input: "fresh" });
    assert.equal(newSet.code, 0, newSet.stderr);
    // Every secret the vault holds opens with the new key; nothing the stale handle tried was kept.
    const fresh = await Vault.open({ root: env.PALYRA_VAULT_DIR, kek: newKek });
    const listed = (await fresh.listSecrets()).map((m) => `${m.scope}/${m.key}`);
    assert.deepEqual(listed, ["ws:acme/cli_new", "ws:acme/k0", "ws:acme/k1", "ws:acme/k2"]);
    for (const ref of listed) (await fresh.resolve(ref)).dispose();
    using k0 = await fresh.getSecret("ws:acme", "k0");
    assert.equal(k0.text(), value(0));
    // A delete seals nothing: the stale handle may still remove a secret.
    assert.equal(await stale.deleteSecret("ws:acme", "k2"), true);
    stale.close();
    fresh.close();
  });

  test("a vault refuses writes sealed with a key other than its own, and takes the key's record from rekey", async () => {
    const root = join(tempDir("rekey-other"), "vault");
    const vault = await Vault.open({ root, kek: testKek(5), backend: "encrypted_file" });
    await vault.putSecret("global", "a", "made with key 5");
    const kekRecord = join(root, "kek.id");
    // The vault records its key's id when it is created.
    assert.equal(readFileSync(kekRecord, "utf8"), kekId(testKek(5)));
    assert.equal(statSync(kekRecord).mode & 0o777, 0o600);
    const other = await Vault.open({ root, kek: testKek(6) });
    await rejectsWith(() => other.putSecret("global", "b", "made with key 6"), "identity", /kek_id/);
    // A migration through that key would seal nothing its own key opens: refused before anything is written.
    await rejectsWith(() => migrateVault({ root, kek: testKek(6), to: "palyra" }), "identity", /migrate vault.*kek_id/);
    assert.deepEqual(readdirSync(root).sort(), ["backend.kind", "kek.id", "objects", "scopes"]);
    assert.equal((await vault.listSecrets()).length, 1);
    // A record that names no key is corrupt: nothing is written until it is fixed.
    writeFileSync(kekRecord, "not a key id");
    await rejectsWith(() => vault.putSecret("global", "b", "x"), "corrupt", /kek\.id/);
    writeFileSync(kekRecord, kekId(testKek(5)).toUpperCase() + "\n"); // letter case and white space are not part of it
    await vault.putSecret("global", "b", "made with key 5");
    await vault.deleteSecret("global", "b");
    // A vault written before the record existed takes writes as it did; its first rekey records the key.
    const older = join(tempDir("rekey-older"), "vault");
    const v1 = await Vault.open({ root: older, kek: testKek(5), backend: "encrypted_file" });
    await v1.putSecret("global", "a", "made with key 5");
    rmSync(join(older, "kek.id"));
    const v2 = await Vault.open({ root: older, kek: testKek(5) });
    await v2.putSecret("global", "b", "still key 5");
    assert.equal(existsSync(join(older, "kek.id")), false);
    const done = await rekeyVault(v2, { toKek: testKek(7) });
    assert.equal(readFileSync(join(older, "kek.id"), "utf8"), done.kekId);
    await rejectsWith(() => v1.putSecret("global", "c", "key 5 again"), "identity", /kek_id/);
    // A re-key from a key that is neither the vault's nor the target refuses before it changes anything.
    const third = await rejectsWith(() => rekeyVault(other, { toKek: testKek(8) }), "identity", /kek_id/);
    // It may be a re-key to that key that stopped midway (its secrets split between the two): the hint says so.
    assert.match(third.hint ?? "", /re-key from there/);
    assert.match(third.hint ?? "", /stopped midway, finish it first with this key/);
    assert.equal(readFileSync(kekRecord, "utf8"), kekId(testKek(5)).toUpperCase() + "\n");
    using a = await vault.getSecret("global", "a");
    assert.equal(a.text(), "made with key 5");
    for (const v of [vault, other, v1, v2]) v.close();
  });

  test("two re-keys to different keys at once: the second is refused, and every secret opens with the recorded key", async () => {
    const { dir, env, vault, rekeyHeld } = await heldRekeyVault("rekey-two");
    const kekA = randomBytes(32);
    const kekB = randomBytes(32);
    const fileB = join(dir, "kek-b.hex");
    writeFileSync(fileB, Buffer.from(kekB).toString("hex") + "\n");
    // Another operator re-keys to another key with the real CLI while the library's re-key is held.
    const cli = await CLI_TARGETS[ownTargets()[0]!]();
    const [a, b] = await rekeyHeld(kekA, () => run([...cli, "rekey", "--to-kek-file", fileB], { env }));
    // The first to record its key re-keys the vault; the other is told the vault moved to another key.
    assert.ok(!(a instanceof Error), String(a));
    assert.equal(b.code, 1, `the second re-key exited ${b.code}: ${b.stderr}`);
    assert.match(b.stderr, /identity: .*kek_id|lock_timeout: .*re-key/);
    assert.equal(readFileSync(join(env.PALYRA_VAULT_DIR, "kek.id"), "utf8"), kekId(kekA));
    assert.deepEqual(await whichKey(env.PALYRA_VAULT_DIR, kekA, kekB, 4, "skill:acme"), Array(4).fill("old"));
    // The recorded key writes.
    const now = await Vault.open({ root: env.PALYRA_VAULT_DIR, kek: kekA });
    await now.putSecret("skill:acme", "after", "v");
    now.close();
    vault.close();
  });

  test("a re-key and a migration at once: the migration waits, and the re-key's report is what happened", async () => {
    const { env, vault, rekeyHeld } = await heldRekeyVault("rekey-migrate");
    const kekA = randomBytes(32);
    // The real CLI migrates the vault to Palyra's layout (whose key is the identity's) while the re-key is held.
    const cli = await CLI_TARGETS[ownTargets()[0]!]();
    const [a, m] = await rekeyHeld(kekA, () => run([...cli, "migrate", "--to", "palyra"], { env }));
    // The re-key moved every secret to the new key, and the vault is still in the layout that records it.
    assert.ok(!(a instanceof Error), String(a));
    assert.equal(a.secrets, 4, "the re-key's report names every secret");
    assert.equal(m.code, 1, `the migration exited ${m.code}: ${m.stderr}`);
    assert.match(m.stderr, /identity: .*kek_id|lock_timeout: .*re-key/);
    assert.equal(readFileSync(join(env.PALYRA_VAULT_DIR, "kek.id"), "utf8"), kekId(kekA));
    assert.deepEqual(
      await whichKey(env.PALYRA_VAULT_DIR, kekA, randomBytes(32), 4, "skill:acme"),
      Array(4).fill("old"),
    );
    const now = await Vault.open({ root: env.PALYRA_VAULT_DIR, kek: kekA });
    assert.equal(now.layout, "scoped");
    now.close();
    vault.close();
  });

  test("doctor while a re-key or a migration runs in another process: it says so, and to wait", async () => {
    const dir = tempDir("rekey-running");
    const env = cliEnv(dir);
    await seedIdentity(env.PALYRA_IDENTITY_DIR);
    const opts = { root: env.PALYRA_VAULT_DIR, identityRoot: env.PALYRA_IDENTITY_DIR };
    const seed = await Vault.open(opts);
    for (let i = 0; i < 3; i++) await seed.putSecret("skill:acme", `k${i}`, value(i));
    seed.close();
    const cli = await CLI_TARGETS[ownTargets()[0]!]();
    const doctor = async () => {
      const r = await run([...cli, "doctor", "--json"], { env });
      return JSON.parse(new TextDecoder().decode(r.stdout)).problems as Array<
        { code: string; message: string; hint: string }
      >;
    };
    // A re-key held just after it recorded the new key: this process holds its lock, and is alive.
    const rekeying = gatedFs(/[\\/]kek\.id$/, "after");
    const vault = await Vault.open({ ...opts, host: { fs: rekeying.fs } });
    const newKek = randomBytes(32);
    const done = rekeyVault(vault, { toKek: newKek });
    await rekeying.reached;
    const during = await doctor();
    rekeying.release();
    await done;
    const mismatch = during.find((p) => p.code === "identity_key_mismatch");
    assert.match(mismatch?.message ?? "", /re-key .* is running/, JSON.stringify(during));
    assert.match(mismatch!.hint, /wait for it/);
    assert.equal(during.some((p) => p.code === "stale_lock"), false, JSON.stringify(during));
    vault.close();
    // A migration held just after it wrote its marker.
    const migrating = gatedFs(/[\\/]\.migrating$/, "after");
    const moved = migrateVault({ root: env.PALYRA_VAULT_DIR, kek: newKek, to: "palyra", host: { fs: migrating.fs } });
    await migrating.reached;
    const meanwhile = await doctor();
    migrating.release();
    await moved;
    const unfinished = meanwhile.find((p) => p.code === "migration_unfinished");
    assert.match(unfinished?.message ?? "", /migration to the palyra layout is running/, JSON.stringify(meanwhile));
    assert.match(unfinished!.hint, /wait for it/);
    assert.equal(meanwhile.some((p) => p.code === "stale_lock"), false, JSON.stringify(meanwhile));
    // The identity is not the key the vault records (it was re-keyed above), and no re-key is running.
    const plain = meanwhile.find((p) => p.code === "identity_key_mismatch");
    assert.match(plain?.message ?? "", /can neither read its secrets nor write/, JSON.stringify(meanwhile));
  });

  test("a damaged envelope is named, the others are re-keyed; bad options are refused", async () => {
    const root = join(tempDir("rekey-bad"), "vault");
    const vault = await Vault.open({ root, kek: testKek(3), backend: "encrypted_file" });
    for (let i = 0; i < 3; i++) await vault.putSecret("ws:acme", `k${i}`, value(i));
    const objects = join(root, "objects");
    const victim = readdirSync(objects).find((n) => n.startsWith("obj_"))!;
    const env = JSON.parse(readFileSync(join(objects, victim), "utf8"));
    env.dek_mac_b64 = env.dek_mac_b64.replace(/^./, (c: string) => (c === "A" ? "B" : "A"));
    writeFileSync(join(objects, victim), JSON.stringify(env));
    const e = await rejectsWith(() => rekeyVault(vault, { toKek: testKek(4) }), "crypto", /1 secret does not open/);
    assert.match(e.message, /ws:acme\/k\d/);
    const kinds = await whichKey(root, testKek(3), testKek(4), 3);
    assert.deepEqual(kinds.filter((k) => k === "new").length, 2);
    await assert.rejects(() => rekeyVault(vault, {}), TypeError);
    await assert.rejects(() => rekeyVault(vault, { toKek: new Uint8Array(16) }), TypeError);
  });
});

const SECRETS = 120;

for (const target of ownTargets()) {
  describe(`rekey on ${target}`, () => {
    test("SIGKILL at a random point, then a second rekey finishes; the new key only opens every secret", async () => {
      for (let round = 0; round < 2; round++) {
        const dir = tempDir("rekey-kill");
        const env = cliEnv(dir);
        await seedIdentity(env.PALYRA_IDENTITY_DIR);
        const vault = await Vault.open({ root: env.PALYRA_VAULT_DIR, identityRoot: env.PALYRA_IDENTITY_DIR });
        for (let i = 0; i < SECRETS; i++) await vault.putSecret("ws:acme", `k${i}`, value(i));
        const oldKek = await (await Vault._parts(vault, "read the old key")).kek();
        const newKek = randomBytes(32);
        const kekFile = join(dir, "kek.hex");
        writeFileSync(kekFile, Buffer.from(newKek).toString("hex") + "\n");
        const objects = join(env.PALYRA_VAULT_DIR, "objects");
        const mtime = statSync(objects).mtimeMs;
        const cmd = [...(await CLI_TARGETS[target]()), "rekey", "--to-kek-file", kekFile];
        const child = spawn(cmd[0]!, cmd.slice(1), { env: { ...process.env, ...env }, stdio: "ignore" });
        const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
        let ended = false;
        void exited.then(() => (ended = true));
        // Wait for the first envelope to be replaced (the objects folder changes), then a random while more.
        const deadline = Date.now() + 60_000;
        while (!ended && statSync(objects).mtimeMs === mtime && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 2));
        }
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 40)));
        child.kill("SIGKILL");
        await exited;
        const mid = await whichKey(env.PALYRA_VAULT_DIR, oldKek, newKek, SECRETS);
        assert.ok(mid.every((k) => k === "old" || k === "new"), `after the kill: ${mid.join(",")}`);
        if (mid.includes("old")) {
          // Killed midway, holding the re-key's lock: doctor names it and says how to finish.
          const doctor = await run([...(await CLI_TARGETS[target]()), "doctor", "--json"], { env });
          const problems = JSON.parse(new TextDecoder().decode(doctor.stdout)).problems as Array<
            { code: string; path: string; message: string; hint: string }
          >;
          const lock = join(env.PALYRA_VAULT_DIR, ".kek.lock");
          const stale = problems.find((p) => p.code === "stale_lock" && p.path === lock);
          assert.ok(stale, JSON.stringify(problems));
          assert.match(stale.hint, /rekey again/);
          // The identity it was run with is not the recorded key, and doctor says why: the re-key is unfinished.
          const mismatch = problems.find((p) => p.code === "identity_key_mismatch")!;
          assert.match(mismatch.message, /stopped before it finished/);
          assert.match(mismatch.hint, /rekey again with this identity/);
        }
        const second = await run([...(await CLI_TARGETS[target]()), "rekey", "--to-kek-file", kekFile, "--json"], {
          env,
        });
        assert.equal(second.code, 0, second.stderr);
        const report = JSON.parse(new TextDecoder().decode(second.stdout));
        assert.equal(report.secrets, SECRETS);
        assert.equal(report.already_done, mid.filter((k) => k === "new").length);
        assert.equal(report.rewrapped, mid.filter((k) => k === "old").length);
        assert.deepEqual(await whichKey(env.PALYRA_VAULT_DIR, oldKek, newKek, SECRETS), Array(SECRETS).fill("new"));
        // The CLI opens it with the new key, and not with the identity any more.
        const got = await run([
          ...(await CLI_TARGETS[target]()),
          "get",
          "ws:acme/k7",
          "--reveal",
          "--kek-file",
          kekFile,
        ], {
          env,
        });
        assert.equal(got.code, 0, got.stderr);
        assert.equal(new TextDecoder().decode(got.stdout), value(7));
        const old = await run([...(await CLI_TARGETS[target]()), "get", "ws:acme/k7"], { env });
        assert.equal(old.code, 1);
        assert.match(old.stderr, /crypto/);
        vault.close();
        oldKek.fill(0);
      }
    });
  });
}
