/**
 * Interoperability with Palyra's own state folder (docs/FORMAT.md §2–§4, §6), checked against an
 * independent Python implementation written from the format's description alone
 * (tests/interop/palyra_state_ref.py, Python with `cryptography`), and known-answer vectors
 * for the identity store (tests/vectors/identity_store_vectors.json, made by
 * tests/vectors/generate_identity_store_vectors.py).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Vault } from "../mod.ts";
import { itemFileName } from "../src/store/identity_store.ts";
import { openStoreItem, sealStoreItem } from "../src/crypto/store_item.ts";
import {
  cliEnv,
  hex,
  randomBytes,
  rejectsWith,
  ROOT,
  run,
  type RunResult,
  type RuntimeName,
  tempDir,
  unhex,
} from "./helpers.ts";
import { CLI_TARGETS } from "./cli_targets.ts";

const REF = join(ROOT, "tests", "interop", "palyra_state_ref.py");
const enc = (s: string) => new TextEncoder().encode(s);
const text = (r: RunResult) => new TextDecoder().decode(r.stdout);

/** A Python that has `cryptography`; the system one first (a pyenv shim is slow and may lack it). */
function findPython(): string {
  for (const py of ["/usr/bin/python3", "python3"]) {
    const r = spawnSync(py, ["-c", "import cryptography"], { stdio: "ignore" });
    if (r.status === 0) return py;
  }
  throw new Error("no python3 with the cryptography package: apt-get install python3-cryptography");
}

/** The runtime running this test file: the CLI tests use the same one, so `npm test` covers all three. */
function currentRuntime(): RuntimeName {
  const g = globalThis as Record<string, unknown>;
  return "Deno" in g ? "deno" : "Bun" in g ? "bun" : "node";
}

/**
 * Name, size, mode and mtime of everything under `dir`, the folder itself included. The
 * vault root's own mtime is left out when `lockedRoot`: every operation, reads included,
 * creates and removes metadata.lock there (docs/FORMAT.md §6.4), which changes the folder's mtime.
 */
function snapshot(dir: string, lockedRoot = false): string[] {
  return ["", ...readdirSync(dir, { recursive: true }).map(String)].sort().map((n) => {
    const s = lstatSync(join(dir, n));
    const mtime = n === "" && lockedRoot ? "-" : String(s.mtimeMs);
    return `${n || "."} ${s.isDirectory() ? "dir" : s.size} ${(s.mode & 0o7777).toString(8)} ${mtime}`;
  });
}

/** Awaits a call that may return or throw synchronously or asynchronously; true if it refused. */
async function refuses(fn: () => unknown): Promise<boolean> {
  try {
    await fn();
    return false;
  } catch {
    return true;
  }
}

interface PyEntry {
  scope: string;
  key: string;
  object_id: string;
  created_at_unix_ms: number;
  updated_at_unix_ms: number;
  value_bytes: number;
}

/** Every Palyra scope kind, an account with ':', NFC non-ASCII ids, a 64 KiB and an empty value. */
function palyraSecrets(): [string, string, Uint8Array][] {
  return [
    ["global", "openai_api_key", enc("sk-interop")],
    ["principal:alice", "token", randomBytes(300)],
    ["channel:slack:T01:U02", "bot_token", enc("xoxb-123")],
    ["skill:weather", "api_key", randomBytes(65_536)],
    ["skill:weather", "empty", new Uint8Array(0)],
    ["principal:\u00e9mile", "pass", enc("\u00fc\u00f1\u00ee")],
    ["channel:t\u00e9l\u00e9gramme:compte:42", "bot_token", randomBytes(33)],
    ["skill:\u65e5\u672c\u8a9e-skill", "k.v-1_2", randomBytes(1)],
  ];
}

describe("identity store known-answer vectors (docs/FORMAT.md §4)", () => {
  const vectors = JSON.parse(readFileSync(join(ROOT, "tests", "vectors", "identity_store_vectors.json"), "utf8"));

  test("item file names are the lowercase hex of the item name's UTF-8 bytes", () => {
    assert.ok(vectors.item_file_names.length >= 4);
    for (const v of vectors.item_file_names as { name: string; file_name: string }[]) {
      assert.equal(itemFileName(v.name), v.file_name, v.name);
    }
  });

  test("store items: IDS1 || nonce || ChaCha20-Poly1305 with empty AAD, and tampered files refused", async () => {
    const key = unhex(vectors.store_item.key_hex);
    const keyCopy = new Uint8Array(key);
    const cases = vectors.store_item.cases as {
      name: string;
      nonce_hex: string;
      plaintext_hex: string;
      file_hex: string;
    }[];
    assert.ok(cases.some((c) => c.plaintext_hex === ""));
    for (const c of cases) {
      const sealed = await sealStoreItem(key, unhex(c.plaintext_hex), unhex(c.nonce_hex));
      assert.equal(hex(sealed), c.file_hex, `seal ${c.name}`);
      const opened = await openStoreItem(key, unhex(c.file_hex));
      assert.equal(hex(opened), c.plaintext_hex, `open ${c.name}`);
    }
    // Without a nonce a fresh one is drawn: same shape, different bytes, still opens.
    const a = await sealStoreItem(key, enc("x"));
    const b = await sealStoreItem(key, enc("x"));
    assert.equal(a.length, 4 + 12 + 1 + 16);
    assert.equal(hex(a.subarray(0, 4)), "49445331");
    assert.notEqual(hex(a), hex(b));
    assert.equal(new TextDecoder().decode(await openStoreItem(key, a)), "x");
    for (const c of vectors.store_item.invalid as { name: string; file_hex: string }[]) {
      assert.ok(await refuses(() => openStoreItem(key, unhex(c.file_hex))), `refuse: ${c.name}`);
    }
    assert.deepEqual(key, keyCopy, "the caller's key is untouched");
  });
});

describe("Palyra state folder interop with the Python reference (docs/FORMAT.md §2–§4, §6)", () => {
  const python = findPython();
  const py = (args: string[], input?: Uint8Array) => run([python, REF, ...args], input === undefined ? {} : { input });
  const pyOk = async (args: string[], input?: Uint8Array) => {
    const r = await py(args, input);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /foreign-lock-format/);
    return text(r);
  };
  const pyList = async (root: string) => JSON.parse(await pyOk(["--root", root, "list"])) as PyEntry[];
  /** Puts in order, in one Python process (each one a complete put: lock, objects store, index). */
  const pyPuts = (args: string[], puts: [string, string, Uint8Array, boolean?][]) =>
    pyOk(
      [...args, "put-batch"],
      enc(
        JSON.stringify(
          puts.map(([scope, key, v, legacy]) => ({ scope, key, value_hex: hex(v), legacy_object: !!legacy })),
        ),
      ),
    );
  /** Every secret as Python opens it, in metadata.json's order: "scope/key=hex". */
  const pyDump = async (args: string[]) =>
    (JSON.parse(await pyOk([...args, "dump"])) as { scope: string; key: string; value_hex: string }[]).map((e) =>
      `${e.scope}/${e.key}=${e.value_hex}`
    );

  test("the library reads every secret of a state folder Python wrote (IDS1, plaintext and embedded-CA identities)", async () => {
    const variants: [string, string[]][] = [
      ["IDS1 items", []],
      ["legacy plaintext items", ["--legacy-plaintext"]],
      ["embedded CA (a decoy ca/state.json must be ignored)", ["--embed-ca", "--decoy-ca-state"]],
    ];
    for (const [label, flags] of variants) {
      const dir = tempDir("palyra-py");
      const root = join(dir, "vault");
      const idDir = join(dir, "identity");
      const kekId = (await pyOk(["--identity-dir", idDir, "init-identity", ...flags])).trim();
      assert.match(kekId, /^[0-9a-f]{16}$/);
      const full = flags.length === 0;
      const secrets = full ? palyraSecrets() : palyraSecrets().slice(0, 3);
      const args = ["--identity-dir", idDir, "--root", root];
      const [first, ...rest] = secrets;
      await pyOk([...args, "put", first![0], first![1]], first![2]); // the value on stdin
      const batch: [string, string, Uint8Array, boolean?][] = [...rest];
      if (full) {
        // A legacy objects/obj_<hex> file is merged in on read, and the store wins over one.
        batch.push(["skill:weather", "legacy_only", enc("from a legacy file"), true]);
        batch.push(["global", "shadowed", enc("old, in the legacy file"), true]);
        batch.push(["global", "shadowed", enc("new, in the store")]);
        secrets.push(["skill:weather", "legacy_only", enc("from a legacy file")]);
        secrets.push(["global", "shadowed", enc("new, in the store")]);
      }
      await pyPuts(args, batch);
      await pyOk(["--root", root, "check-vault"]);
      const theirs = await pyList(root);
      const before = [snapshot(root, true), snapshot(idDir)];

      const vault = await Vault.open({ root, identityRoot: idDir }); // detected as palyra: metadata.json
      const ours = await vault.listSecrets();
      assert.deepEqual(
        ours.map((m) => [m.scope, m.key, m.valueBytes, m.createdAtUnixMs, m.updatedAtUnixMs]).sort(),
        theirs.map((e) => [e.scope, e.key, e.value_bytes, e.created_at_unix_ms, e.updated_at_unix_ms]).sort(),
        label,
      );
      assert.equal(ours.length, secrets.length, label);
      for (const [scope, key, value] of secrets) {
        using got = await vault.getSecret(scope, key);
        assert.deepEqual(got.bytes, value, `${label}: ${scope}/${key}`);
      }
      assert.deepEqual([snapshot(root, true), snapshot(idDir)], before, `${label}: reading changed no file`);
    }
  });

  test("Python reads what the library writes into a palyra-layout vault with an identity the library created", async () => {
    const dir = tempDir("palyra-lib");
    const root = join(dir, "vault");
    const idDir = join(dir, "identity");
    const vault = await Vault.open({ root, identityRoot: idDir, layout: "palyra" });
    const secrets = palyraSecrets();
    for (const [scope, key, value] of secrets) await vault.putSecret(scope, key, value);
    const created = (await vault.listSecrets()).find((m) => m.scope === "global" && m.key === "openai_api_key")!;
    await new Promise((r) => setTimeout(r, 5)); // so that updated_at can differ from created_at
    const meta = await vault.putSecret("global", "openai_api_key", "sk-replaced");
    assert.equal(meta.createdAtUnixMs, created.createdAtUnixMs);
    secrets[0] = ["global", "openai_api_key", enc("sk-replaced")];
    assert.equal(await vault.deleteSecret("principal:alice", "token"), true);
    const remaining = secrets.filter(([s]) => s !== "principal:alice");

    // The identity follows docs/FORMAT.md §4 to the byte (store key, IDS1, item shapes, the CA certificate).
    const kekId = JSON.parse(await pyOk(["--identity-dir", idDir, "check-identity"])).kek_id;
    // The library's own kek_id for that identity (a scoped-layout envelope carries it) is Python's.
    const scopedRoot = join(dir, "scoped");
    await (await Vault.open({ root: scopedRoot, identityRoot: idDir, layout: "scoped" })).putSecret("global", "k", "v");
    const [objectFile] = readdirSync(join(scopedRoot, "objects")).filter((n) => n.startsWith("obj_"));
    assert.equal(JSON.parse(readFileSync(join(scopedRoot, "objects", objectFile!), "utf8")).kek_id, kekId);

    assert.ok(!existsSync(join(root, "scopes")));
    const listed = await pyList(root);
    assert.deepEqual(
      listed.map((e) => [e.scope, e.key, e.value_bytes]),
      remaining.map(([s, k, v]) => [s, k, v.length]),
      "insertion order, the overwritten entry in its place",
    );
    const ours = await vault.listSecrets();
    assert.deepEqual(
      listed.map((e) => [e.scope, e.key, e.created_at_unix_ms, e.updated_at_unix_ms]).sort(),
      ours.map((m) => [m.scope, m.key, m.createdAtUnixMs, m.updatedAtUnixMs]).sort(),
    );
    const replaced = listed.find((e) => e.key === "openai_api_key")!;
    assert.equal(replaced.created_at_unix_ms, created.createdAtUnixMs, "created_at survives the overwrite");
    assert.ok(replaced.updated_at_unix_ms > replaced.created_at_unix_ms);
    const args = ["--identity-dir", idDir, "--root", root];
    assert.deepEqual(await pyDump(args), remaining.map(([s, k, v]) => `${s}/${k}=${hex(v)}`));
    const big = await py([...args, "get", "skill:weather", "api_key"]);
    assert.deepEqual(big.stdout, remaining.find(([, k]) => k === "api_key")![2]);
    const gone = await py([...args, "get", "principal:alice", "token"]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /^error: not_found: /);
    await pyOk(["--root", root, "check-vault"]); // last: the byte-level format of docs/FORMAT.md §6
  });

  test("the library writes into a vault and identity Python created, without touching the identity", async () => {
    const dir = tempDir("palyra-mixed");
    const root = join(dir, "vault");
    const idDir = join(dir, "identity");
    const args = ["--identity-dir", idDir, "--root", root];
    const kekId = (await pyOk(["--identity-dir", idDir, "init-identity"])).trim();
    await pyPuts(args, [["global", "py_keep", enc("python 1")], ["skill:s", "py_delete", enc("python 2")]]);
    const pyCreated = (await pyList(root))[0]!.created_at_unix_ms;
    const identityBefore = snapshot(idDir);

    const vault = await Vault.open({ root, identityRoot: idDir }); // no layout option: detected
    await vault.putSecret("channel:slack:T01:U02", "lib_a", "library a");
    await vault.putSecret("principal:bob", "lib_b", new Uint8Array([0, 255, 10]));
    await vault.putSecret("global", "py_keep", "library overwrote");
    assert.equal(await vault.deleteSecret("skill:s", "py_delete"), true);

    assert.deepEqual(snapshot(idDir), identityBefore, "the identity store is left as it was");
    assert.equal((await pyOk(["--identity-dir", idDir, "kek-id"])).trim(), kekId);
    const listed = await pyList(root);
    assert.deepEqual(listed.map((e) => `${e.scope}/${e.key}`), [
      "global/py_keep",
      "channel:slack:T01:U02/lib_a",
      "principal:bob/lib_b",
    ]);
    assert.equal(listed[0]!.created_at_unix_ms, pyCreated, "created_at survives the overwrite");
    const expect: [string, string, Uint8Array][] = [
      ["global", "py_keep", enc("library overwrote")],
      ["channel:slack:T01:U02", "lib_a", enc("library a")],
      ["principal:bob", "lib_b", new Uint8Array([0, 255, 10])],
    ];
    assert.deepEqual(await pyDump(args), expect.map(([s, k, v]) => `${s}/${k}=${hex(v)}`));
    const gone = await py([...args, "get", "skill:s", "py_delete"]);
    assert.match(gone.stderr, /^error: not_found: /);
    const refused = await rejectsWith(() => vault.putSecret("ws:acme", "k", "v"), "invalid_scope");
    assert.match(`${refused.message} ${(refused as { hint?: string }).hint ?? ""}`, /migrate/);
    await pyOk(["--root", root, "check-vault"]);
  });

  test("metadata.lock: a lock Python holds keeps the library out; both write at once and nothing is lost", async () => {
    const dir = tempDir("palyra-lock");
    const root = join(dir, "vault");
    const idDir = join(dir, "identity");
    const args = ["--identity-dir", idDir, "--root", root];
    await pyOk(["--identity-dir", idDir, "init-identity"]);
    await pyOk([...args, "put", "global", "seed"], enc("s"));
    const impatient = await Vault.open({ root, identityRoot: idDir, lockTimeoutMs: 200 });
    (await impatient.getSecret("global", "seed"))[Symbol.dispose](); // warm: identity read, KEK derived
    const holding = py(["--root", root, "hold-lock", "3000"]);
    for (let i = 0; i < 1500 && !existsSync(join(root, "metadata.lock")); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(existsSync(join(root, "metadata.lock")), "Python took the lock");
    await rejectsWith(() => impatient.putSecret("global", "blocked", "x"), "lock_timeout");
    await rejectsWith(() => impatient.getSecret("global", "seed"), "lock_timeout");
    assert.equal((await holding).code, 0);

    const vault = await Vault.open({ root, identityRoot: idDir, lockTimeoutMs: 60_000 });
    const theirs = Array.from(
      { length: 4 },
      (_, i) => py([...args, "--lock-timeout-ms", "60000", "put", "global", `py${i}`], new Uint8Array([i])),
    );
    const ours = Array.from({ length: 10 }, (_, i) => vault.putSecret("global", `ts${i}`, new Uint8Array([i])));
    for (const r of await Promise.all(theirs)) {
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /foreign-lock-format/, "the library's lock has the daemon's content format");
    }
    await Promise.all(ours);
    const keys = (await pyList(root)).map((e) => e.key).sort();
    assert.equal(keys.length, 1 + 4 + 10, keys.join(" "));
    assert.deepEqual((await vault.listSecrets()).map((m) => m.key).sort(), keys);
    assert.ok(!existsSync(join(root, "metadata.lock")), "no lock left behind");
    await pyOk(["--root", root, "check-vault"]);
  });

  test(`cli on ${currentRuntime()}: get, list and doctor change no file in a palyra state folder`, async () => {
    const dir = tempDir("palyra-cli");
    const env = cliEnv(dir);
    const root = env.PALYRA_VAULT_DIR;
    const idDir = env.PALYRA_IDENTITY_DIR;
    const args = ["--identity-dir", idDir, "--root", root];
    await pyOk(["--identity-dir", idDir, "init-identity"]);
    await pyPuts(args, [["global", "openai_api_key", enc("sk-cli")], [
      "channel:slack:T01:U02",
      "bot_token",
      enc("xoxb-cli"),
      true,
    ]]);
    const before = [snapshot(root, true), snapshot(idDir)];
    const cmd = await CLI_TARGETS[currentRuntime()]();
    const cli = (a: string[]) => run([...cmd, ...a], { env, cwd: dir, timeoutMs: 60_000 });

    const got = await cli(["get", "global", "openai_api_key", "--reveal"]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(text(got), "sk-cli");
    const legacy = await cli(["get", "channel:slack:T01:U02", "bot_token", "--reveal"]);
    assert.equal(legacy.code, 0, legacy.stderr);
    assert.equal(text(legacy), "xoxb-cli");
    const list = await cli(["list", "--json"]);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      JSON.parse(text(list)).secrets.map((s: { scope: string; key: string }) => `${s.scope}/${s.key}`).sort(),
      ["channel:slack:T01:U02/bot_token", "global/openai_api_key"],
    );
    const doctor = await cli(["doctor", "--json"]);
    assert.equal(doctor.code, 0, doctor.stderr);
    assert.deepEqual(JSON.parse(text(doctor)).problems, [], text(doctor));
    assert.deepEqual([snapshot(root, true), snapshot(idDir)], before, "get, list and doctor changed nothing");
    assert.ok(!existsSync(join(dir, "state")) || readdirSync(join(dir, "state")).length === 0);
  });
});
