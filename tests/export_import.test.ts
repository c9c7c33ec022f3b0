/**
 * Export and import in the age format (docs/FORMAT.md §9), checked against Debian's real `age` and
 * `age-keygen`: what `exportVault` writes, `age -d` opens; what `age -e` encrypts, `importVault`
 * reads. Passphrase files go through the library (the `age` tool asks for a passphrase only on a
 * terminal). Wrong keys import nothing, conflicts are decided before anything is written, and a
 * failure inside a scope puts that scope back as it was.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { Vault } from "../src/vault.ts";
import { ageRecipientTypes, EXPORT_FORMAT, exportVault, importVault } from "../src/export.ts";
import { defaultFileSystem, type FileSystem } from "../src/platform/fs.ts";
import { toBase64PaddedBytes } from "../src/crypto/encoding.ts";
import {
  cliEnv,
  DENO_DOCUMENTED,
  denoWith,
  randomBytes,
  rejectsWith,
  run,
  type RunResult,
  seedIdentity,
  tempDir,
  testKek,
} from "./helpers.ts";
import { CLI, CLI_TARGETS, ownTargets } from "./cli_targets.ts";
import { statSync } from "node:fs";

const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);
const BIG = Uint8Array.from({ length: 64 * 1024 }, (_, i) => (i * 131 + 7) & 255);
const FAST = 10; // scrypt work factor for passphrase round trips that are not about scrypt

async function open(label: string, fs?: FileSystem) {
  return await Vault.open({
    root: join(tempDir(label), "vault"),
    kek: testKek(label.length),
    backend: "encrypted_file",
    ...(fs === undefined ? {} : { host: { fs } }),
  });
}

async function seeded() {
  const v = await open("src");
  await v.putSecret("global", "all_bytes", ALL_BYTES);
  await v.putSecret("global", "big", BIG);
  await v.putSecret("ws:acme", "github_token", "ghp_exp0rt-Ünïcode");
  return v;
}

async function contents(v: Vault): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const m of await v.listSecrets()) {
    using value = await v.getSecret(m.scope, m.key);
    out[`${m.scope}/${m.key}`] = Buffer.from(value.bytes).toString("hex");
  }
  return out;
}

/** A fresh age identity from the real `age-keygen`: its file and its recipient. */
async function keygen(dir: string, name = "id.txt"): Promise<{ file: string; recipient: string }> {
  const file = join(dir, name);
  const made = await run(["age-keygen", "-o", file]);
  assert.equal(made.code, 0, made.stderr);
  const pub = await run(["age-keygen", "-y", file]);
  assert.equal(pub.code, 0, pub.stderr);
  return { file, recipient: new TextDecoder().decode(pub.stdout).trim() };
}

describe("export and import (age)", () => {
  test("passphrase round trip keeps every byte value, 64 KiB values and the times", async () => {
    const src = await seeded();
    const out = await exportVault(src, { passphrase: "correct horse battery staple", scryptWorkFactor: FAST });
    assert.equal(out.secrets, 3);
    assert.deepEqual(out.scopes, ["global", "ws:acme"]);
    assert.deepEqual(await ageRecipientTypes(out.file), ["scrypt"]);
    const dst = await open("dst");
    const done = await importVault(dst, out.file, { passphrase: "correct horse battery staple" });
    assert.deepEqual(done, {
      secrets: 3,
      imported: 3,
      overwritten: 0,
      unchanged: 0,
      skipped: 0,
      scopes: ["global", "ws:acme"],
    });
    assert.deepEqual(await contents(dst), await contents(src));
    assert.deepEqual(await dst.listSecrets(), await src.listSecrets()); // times and sizes too
    // Importing again changes nothing.
    const again = await importVault(dst, out.file, { passphrase: "correct horse battery staple" });
    assert.equal(again.unchanged, 3);
    assert.equal(again.imported, 0);
  });

  test("the default scrypt work factor (18, as age uses) opens, and a wrong passphrase imports nothing", async () => {
    const src = await open("src18");
    await src.putSecret("global", "k", "v-18");
    const { file } = await exportVault(src, { passphrase: "pass-18" });
    assert.match(new TextDecoder().decode(file.subarray(0, 200)), /-> scrypt \S+ 18\n/);
    const dst = await open("dst18");
    await rejectsWith(() => importVault(dst, file, { passphrase: "wrong" }), "crypto", /does not open/);
    await rejectsWith(() => dst.listSecrets(), "not_found"); // not even created
    assert.equal((await importVault(dst, file, { passphrase: "pass-18" })).imported, 1);
  });

  test("export to age-keygen recipients: the real `age -d -i` yields the document", async () => {
    const dir = tempDir("age-d");
    const a = await keygen(dir, "a.txt");
    const b = await keygen(dir, "b.txt");
    const src = await seeded();
    const out = await exportVault(src, { recipients: [a.recipient, b.recipient] });
    assert.deepEqual(await ageRecipientTypes(out.file), ["X25519", "X25519"]);
    const path = join(dir, "backup.age");
    writeFileSync(path, out.file);
    for (const id of [a, b]) {
      const r = await run(["age", "-d", "-i", id.file, path]);
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(new TextDecoder().decode(r.stdout));
      assert.equal(doc.format, EXPORT_FORMAT);
      assert.ok(Number.isSafeInteger(doc.exported_at_unix_ms));
      const byRef = Object.fromEntries(
        doc.secrets.map((s: Record<string, unknown>) => [`${s.scope}/${s.key}`, s]),
      );
      assert.deepEqual(Object.keys(byRef).sort(), ["global/all_bytes", "global/big", "ws:acme/github_token"]);
      assert.deepEqual(Buffer.from(byRef["global/all_bytes"].value_b64, "base64"), Buffer.from(ALL_BYTES));
      assert.deepEqual(Buffer.from(byRef["global/big"].value_b64, "base64"), Buffer.from(BIG));
      assert.equal(Buffer.from(byRef["ws:acme/github_token"].value_b64, "base64").toString(), "ghp_exp0rt-Ünïcode");
      const meta = (await src.listSecrets("global")).find((m) => m.key === "big")!;
      assert.equal(byRef["global/big"].created_at_unix_ms, meta.createdAtUnixMs);
      assert.equal(byRef["global/big"].updated_at_unix_ms, meta.updatedAtUnixMs);
    }
    // An identity the file was not encrypted to does not open it.
    const c = await keygen(dir, "c.txt");
    const r = await run(["age", "-d", "-i", c.file, path]);
    assert.notEqual(r.code, 0);
  });

  test("a file made by the real `age -e -r` (binary and armored) imports; a wrong identity imports nothing", async () => {
    const dir = tempDir("age-e");
    const id = await keygen(dir);
    const doc = {
      format: EXPORT_FORMAT,
      exported_at_unix_ms: 1_700_000_000_000,
      secrets: [
        {
          scope: "global",
          key: "all_bytes",
          value_b64: Buffer.from(ALL_BYTES).toString("base64"),
          created_at_unix_ms: 1_600_000_000_000,
          updated_at_unix_ms: 1_650_000_000_000,
        },
        {
          scope: "pr:site",
          key: "big",
          value_b64: Buffer.from(BIG).toString("base64"),
          created_at_unix_ms: 1,
          updated_at_unix_ms: 2,
        },
      ],
    };
    const plain = join(dir, "doc.json");
    writeFileSync(plain, JSON.stringify(doc));
    for (const armor of [false, true]) {
      const path = join(dir, armor ? "doc.age.asc" : "doc.age");
      const r = await run(["age", "-e", ...(armor ? ["-a"] : []), "-r", id.recipient, "-o", path, plain]);
      assert.equal(r.code, 0, r.stderr);
      // A Node Buffer, as readFileSync gives it, for the armored file; a plain Uint8Array for the binary one.
      const file = armor ? readFileSync(path) : new Uint8Array(readFileSync(path));
      const other = await keygen(dir, `other-${armor}.txt`);
      const dst = await open(`dst-${armor}`);
      await rejectsWith(
        () => importVault(dst, file, { identities: [readFileSync(other.file, "utf8")] }),
        "crypto",
        /does not open with the identities/,
      );
      await rejectsWith(() => dst.listSecrets(), "not_found");
      const done = await importVault(dst, file, { identities: [readFileSync(id.file, "utf8")] });
      assert.equal(done.imported, 2);
      using all = await dst.getSecret("global", "all_bytes");
      assert.deepEqual(all.bytes, ALL_BYTES);
      using big = await dst.getSecret("pr:site", "big");
      assert.deepEqual(big.bytes, BIG);
      const meta = await dst.listSecrets("global");
      assert.equal(meta[0]!.createdAtUnixMs, 1_600_000_000_000);
      assert.equal(meta[0]!.updatedAtUnixMs, 1_650_000_000_000);
    }
  });

  test("--on-conflict: fail writes nothing anywhere, skip keeps, overwrite replaces; same values are unchanged", async () => {
    const src = await open("c-src");
    await src.putSecret("ws:one", "same", "same-value");
    await src.putSecret("ws:one", "new_key", "new-value");
    await src.putSecret("pr:two", "differs", "exported-value");
    const { file } = await exportVault(src, { passphrase: "p", scryptWorkFactor: FAST });
    const dst = await open("c-dst");
    await dst.putSecret("ws:one", "same", "same-value");
    await dst.putSecret("pr:two", "differs", "local-value");
    const before = await contents(dst);
    const e = await rejectsWith(() => importVault(dst, file, { passphrase: "p" }), "conflict", /pr:two\/differs/);
    assert.doesNotMatch(e.message, /exported-value|local-value/);
    assert.deepEqual(await contents(dst), before); // ws:one/new_key was not written either
    const skip = await importVault(dst, file, { passphrase: "p", onConflict: "skip" });
    assert.deepEqual([skip.imported, skip.unchanged, skip.skipped, skip.overwritten], [1, 1, 1, 0]);
    using kept = await dst.getSecret("pr:two", "differs");
    assert.equal(kept.text(), "local-value");
    const over = await importVault(dst, file, { passphrase: "p", onConflict: "overwrite" });
    assert.deepEqual([over.imported, over.unchanged, over.skipped, over.overwritten], [0, 2, 0, 1]);
    assert.deepEqual(await contents(dst), await contents(src));
  });

  test("a write failing inside a scope puts that scope back; scopes before it stay imported", async () => {
    const src = await open("f-src");
    await src.putSecret("ws:first", "k1", "v1");
    for (let i = 0; i < 4; i++) await src.putSecret("ws:second", `k${i}`, `value-${i}`);
    const { file } = await exportVault(src, { passphrase: "p", scryptWorkFactor: FAST });
    let objectWrites = 0;
    let failAt = Infinity;
    const fs: FileSystem = {
      ...defaultFileSystem,
      writeFileAtomic: (path, data, mode) => {
        if (path.includes("/objects/") && ++objectWrites === failAt) {
          return Promise.reject(Object.assign(new Error("injected ENOSPC"), { code: "ENOSPC" }));
        }
        return defaultFileSystem.writeFileAtomic(path, data, mode);
      },
    };
    const dst = await open("f-dst", fs);
    await dst.putSecret("ws:second", "k1", "local-different");
    objectWrites = 0;
    failAt = 3; // ws:first/k1, ws:second/k0, then ws:second/k1 (an overwrite) fails
    const e = await rejectsWith(
      () => importVault(dst, file, { passphrase: "p", onConflict: "overwrite" }),
      "io",
      /in scope "ws:second".*put back.*ws:first were imported/,
    );
    assert.doesNotMatch(e.message, /value-|local-different/);
    assert.deepEqual(
      (await dst.listSecrets()).map((m) => `${m.scope}/${m.key}`),
      ["ws:first/k1", "ws:second/k1"],
    );
    using kept = await dst.getSecret("ws:second", "k1");
    assert.equal(kept.text(), "local-different");
    failAt = Infinity;
    const done = await importVault(dst, file, { passphrase: "p", onConflict: "overwrite" });
    assert.deepEqual([done.imported, done.unchanged, done.overwritten], [3, 1, 1]);
    assert.deepEqual(await contents(dst), await contents(src));
  });

  test("what is not an export is refused whole, with a typed error", async () => {
    const dir = tempDir("bad");
    const id = await keygen(dir);
    const dst = await open("bad-dst");
    const identities = [readFileSync(id.file, "utf8")];
    const encrypt = async (text: string) => {
      const p = join(dir, "plain");
      writeFileSync(p, text);
      const r = await run(["age", "-e", "-r", id.recipient, p]);
      assert.equal(r.code, 0, r.stderr);
      return new Uint8Array(r.stdout);
    };
    const good = (over: Record<string, unknown>) =>
      JSON.stringify({
        format: EXPORT_FORMAT,
        exported_at_unix_ms: 1,
        secrets: [
          { scope: "global", key: "ok", value_b64: "b2s=", created_at_unix_ms: 1, updated_at_unix_ms: 1 },
          { scope: "global", key: "second", value_b64: "eA==", created_at_unix_ms: 1, updated_at_unix_ms: 1, ...over },
        ],
      });
    const cases: Array<[string, string, RegExp]> = [
      ["not JSON", "{nope", /not valid UTF-8 JSON/],
      ["another format", JSON.stringify({ format: "x", secrets: [] }), /has format "x"/],
      ["unpadded base64", good({ value_b64: "eA" }), /canonical padded base64/],
      ["a bad key", good({ key: "Bad Key" }), /invalid scope or key/],
      ["a bad scope", good({ scope: "nope:" }), /invalid scope or key/],
      ["a duplicate", good({ key: "ok" }), /names global\/ok twice/],
      ["a negative time", good({ created_at_unix_ms: -1 }), /created_at_unix_ms/],
    ];
    for (const [label, text, message] of cases) {
      const file = await encrypt(text);
      await rejectsWith(() => importVault(dst, file, { identities }), "corrupt", message).catch((e) => {
        throw new Error(`${label}: ${e}`);
      });
    }
    await rejectsWith(() => dst.listSecrets(), "not_found"); // nothing of the valid first entries landed
    await rejectsWith(
      () => importVault(dst, new TextEncoder().encode("hello"), { identities }),
      "corrupt",
      /not an age/,
    );
    const tooBig = JSON.stringify({
      format: EXPORT_FORMAT,
      secrets: [{
        scope: "global",
        key: "huge",
        value_b64: new TextDecoder().decode(toBase64PaddedBytes(new Uint8Array(65 * 1024))),
        created_at_unix_ms: 1,
        updated_at_unix_ms: 1,
      }],
    });
    const big = await encrypt(tooBig);
    await rejectsWith(() => importVault(dst, big, { identities }), "value_too_large", /limit is 65536/);
    await assert.rejects(() => importVault(dst, new Uint8Array(1), {}), TypeError);
    await assert.rejects(() => exportVault(dst, { recipients: ["not-a-recipient"] }), TypeError);
    await assert.rejects(() => exportVault(dst, { passphrase: "p", recipients: [id.recipient] }), TypeError);
  });

  test("a scope the vault's layout cannot hold refuses the whole file before anything is written", async () => {
    const src = await open("layout-src");
    await src.putSecret("global", "a", "va");
    await src.putSecret("ws:acme", "b", "vb"); // Palyra's layout has no ws: scopes
    const { file } = await exportVault(src, { passphrase: "p", scryptWorkFactor: FAST });
    const dst = await Vault.open({
      root: join(tempDir("layout-dst"), "vault"),
      kek: testKek(5),
      backend: "encrypted_file",
      layout: "palyra",
    });
    await rejectsWith(() => importVault(dst, file, { passphrase: "p" }), "invalid_scope");
    await rejectsWith(() => dst.listSecrets(), "not_found"); // not even global/a
  });

  test("padded base64 bytes match the runtime's base64 for every length around a block", () => {
    for (let n = 0; n < 70; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 97 + n) & 255);
      assert.equal(new TextDecoder().decode(toBase64PaddedBytes(bytes)), Buffer.from(bytes).toString("base64"));
    }
  });
});

for (const target of ownTargets()) {
  describe(`export and import on ${target}`, () => {
    const box = async (label: string) => {
      const dir = tempDir(label);
      const env = cliEnv(dir);
      await seedIdentity(env.PALYRA_IDENTITY_DIR);
      return { dir, env };
    };
    const cli = async (b: { dir: string; env: Record<string, string> }, args: string[], input?: string | Uint8Array) =>
      await run([...(await CLI_TARGETS[target]()), ...args], {
        env: b.env,
        cwd: b.dir,
        ...(input === undefined ? {} : { input }),
      });
    const text = (r: RunResult) => new TextDecoder().decode(r.stdout);
    const reveal = async (b: { dir: string; env: Record<string, string> }, ref: string) => {
      const r = await cli(b, ["get", ref, "--reveal"]);
      assert.equal(r.code, 0, r.stderr);
      return new Uint8Array(r.stdout);
    };

    test("export --recipient: mode 0600, `age -d -i` opens it; import --identity restores every byte", async () => {
      const src = await box("cli-src");
      for (const [ref, value] of [["global/all_bytes", ALL_BYTES], ["ws:acme/big", BIG]] as const) {
        const r = await cli(src, ["set", ref], value);
        assert.equal(r.code, 0, r.stderr);
      }
      const id = await keygen(src.dir);
      const backup = join(src.dir, "backup.age");
      const ex = await cli(src, ["export", "--to", backup, "--recipient", id.recipient]);
      assert.equal(ex.code, 0, ex.stderr);
      assert.match(text(ex), /^secrets\.export to=\S+ secrets=2 scopes=global,ws:acme\n$/);
      assert.equal(statSync(backup).mode & 0o777, 0o600);
      const opened = await run(["age", "-d", "-i", id.file, backup]);
      assert.equal(opened.code, 0, opened.stderr);
      assert.equal(JSON.parse(new TextDecoder().decode(opened.stdout)).secrets.length, 2);
      const dst = await box("cli-dst");
      const noId = await cli(dst, ["import", "--from", backup]);
      assert.equal(noId.code, 2);
      assert.match(noId.stderr, /--identity/);
      assert.equal((await cli(dst, ["set", "global/all_bytes"], "local-v4lue")).code, 0);
      const conflict = await cli(dst, ["import", "--from", backup, "--identity", id.file]);
      assert.equal(conflict.code, 1);
      assert.match(conflict.stderr, /conflict: .*global\/all_bytes/);
      assert.doesNotMatch(conflict.stderr + conflict.stdout, /local-v4lue/);
      assert.equal((await cli(dst, ["get", "ws:acme/big"])).code, 1); // nothing was imported
      const im = await cli(dst, [
        "import",
        "--from",
        backup,
        "--identity",
        id.file,
        "--on-conflict",
        "overwrite",
        "--json",
      ]);
      assert.equal(im.code, 0, im.stderr);
      assert.deepEqual(JSON.parse(text(im)), {
        from: backup,
        secrets: 2,
        imported: 1,
        overwritten: 1,
        unchanged: 0,
        skipped: 0,
        scopes: ["global", "ws:acme"],
      });
      assert.deepEqual(await reveal(dst, "global/all_bytes"), ALL_BYTES);
      assert.deepEqual(await reveal(dst, "ws:acme/big"), BIG);
      const mode = await cli(dst, ["import", "--from", backup, "--on-conflict", "merge"]);
      assert.equal(mode.code, 2);
    });

    test("export --passphrase reads stdin, not argv; a wrong passphrase imports nothing", async () => {
      const src = await box("cli-pass");
      assert.equal((await cli(src, ["set", "ws:acme/token"], "tok-p4ss")).code, 0);
      const file = join(src.dir, "p.age");
      const ex = await cli(src, ["export", "--to", file, "--passphrase", "ws:acme"], "pass phrase 1\n");
      assert.equal(ex.code, 0, ex.stderr);
      const dst = await box("cli-pass-dst");
      const wrong = await cli(dst, ["import", "--from", file], "not it\n");
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /crypto: import vault failed/);
      assert.equal((await cli(dst, ["list"])).code, 1); // no vault was created
      const right = await cli(dst, ["import", "--from", file], "pass phrase 1\n");
      assert.equal(right.code, 0, right.stderr);
      assert.match(text(right), /secrets=1 imported=1 overwritten=0 unchanged=0 skipped=0 scopes=ws:acme\n$/);
      assert.equal(new TextDecoder().decode(await reveal(dst, "ws:acme/token")), "tok-p4ss");
      const both = await cli(src, ["export", "--to", file, "--passphrase", "--recipient", "age1x"]);
      assert.equal(both.code, 2);
    });
  });
}

describe("under the README's Deno permissions", () => {
  test("export, import, fsck and rekey need no flag beyond those the README documents", async () => {
    const dir = tempDir("deno-flags");
    const env = cliEnv(dir);
    await seedIdentity(env.PALYRA_IDENTITY_DIR);
    const cli = (args: string[], input?: string) =>
      run([...denoWith(DENO_DOCUMENTED, CLI), ...args], { env, cwd: dir, ...(input === undefined ? {} : { input }) });
    const ok = (r: RunResult) => {
      assert.equal(r.code, 0, r.stderr);
      return new TextDecoder().decode(r.stdout);
    };
    ok(await cli(["set", "ws:acme/token"], "tok-deno-flags"));
    const id = await keygen(dir);
    const file = join(dir, "b.age");
    ok(await cli(["export", "--to", file, "--recipient", id.recipient]));
    const other = join(dir, "vault2");
    assert.match(ok(await cli(["import", "--from", file, "--identity", id.file, "--vault-dir", other])), /imported=1/);
    assert.match(ok(await cli(["fsck", "--vault-dir", other])), /findings=0/);
    const kek = join(dir, "kek.bin");
    writeFileSync(kek, randomBytes(32));
    assert.match(ok(await cli(["rekey", "--to-kek-file", kek, "--vault-dir", other])), /rewrapped=1/);
    assert.equal(
      ok(await cli(["get", "ws:acme/token", "--reveal", "--kek-file", kek, "--vault-dir", other])),
      "tok-deno-flags",
    );
  });
});
