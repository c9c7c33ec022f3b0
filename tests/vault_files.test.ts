/**
 * The vault folder on disk, defaults, options and backend choice (docs/FORMAT.md §5;
 * README, "API" and "Backends").
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { Vault } from "../src/vault.ts";
import { defaultFileSystem } from "../src/platform/fs.ts";
import type { BlobBackend } from "../src/backends/backend.ts";
import { MemoryBackend } from "../src/backends/memory.ts";
import { objectId, scopeDirName } from "../src/crypto/ids.ts";
import { kekId } from "../src/crypto/kdf.ts";
import { openEnvelope } from "../src/crypto/envelope.ts";
import { rejectsWith, tempDir, testKek } from "./helpers.ts";

const KEK = testKek(8);

async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(vars)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe("vault folder", () => {
  test("the layout and file contents are as specified", async () => {
    const root = join(tempDir("layout"), "vault");
    const vault = await Vault.open({ root, kek: KEK });
    const t0 = Date.now();
    await vault.putSecret("ws:acme", "b_key", "bee");
    await vault.putSecret("ws:acme", "a_key", "ay");
    assert.equal(readFileSync(join(root, "backend.kind"), "utf8"), "encrypted_file");
    assert.deepEqual(readdirSync(root).sort(), ["backend.kind", "kek.id", "objects", "scopes"]);
    // The key record names the key the vault is sealed under (docs/FORMAT.md §5.7).
    assert.equal(readFileSync(join(root, "kek.id"), "utf8"), kekId(KEK));
    const sdir = scopeDirName("ws:acme");
    assert.deepEqual(readdirSync(join(root, "scopes")), [sdir]);
    // The first write to a scope makes its snapshot; later ones append to its log (docs/FORMAT.md §5.1).
    assert.deepEqual(readdirSync(join(root, "scopes", sdir)).sort(), ["metadata.json", "metadata.log"]);
    const index = JSON.parse(readFileSync(join(root, "scopes", sdir, "metadata.json"), "utf8"));
    assert.deepEqual(Object.keys(index), ["version", "scope", "generation", "entries"]);
    assert.equal(index.version, 2);
    assert.equal(index.scope, "ws:acme");
    assert.equal(index.generation, 1);
    assert.equal(index.entries.length, 1);
    const [key, created, updated, bytes] = index.entries[0];
    assert.deepEqual([key, bytes], ["b_key", 3]);
    assert.ok(created >= t0 - 1000 && created <= Date.now() && updated === created);
    const log = readFileSync(join(root, "scopes", sdir, "metadata.log"), "utf8").split("\n");
    assert.equal(log.length, 3);
    assert.match(log[0]!, /^[0-9a-f]{8} \{"log":1,"scope":"ws:acme","generation":1\}$/);
    assert.match(log[1]!, /^[0-9a-f]{8} \["put","a_key",\d+,\d+,2\]$/);
    assert.equal(log[2], "");
    const listed = await vault.listSecrets("ws:acme");
    assert.deepEqual(listed.map((m) => [m.key, m.valueBytes]), [["a_key", 2], ["b_key", 3]]);
    assert.deepEqual(
      readdirSync(join(root, "objects")).sort(),
      [objectId("ws:acme", "a_key"), objectId("ws:acme", "b_key")].sort(),
    );
    const env = readFileSync(join(root, "objects", objectId("ws:acme", "b_key")));
    assert.equal(new TextDecoder().decode(openEnvelope(KEK, "ws:acme", "b_key", env)), "bee");
    assert.doesNotMatch(env.toString(), /bee/);
  });

  test("no temporary or lock files are left after writes", async () => {
    const root = join(tempDir("clean"), "vault");
    const vault = await Vault.open({ root, kek: KEK });
    for (let i = 0; i < 20; i++) await vault.putSecret("global", `k${i % 5}`, `v${i}`);
    await vault.deleteSecret("global", "k1");
    const names = readdirSync(root, { recursive: true }).map(String);
    assert.deepEqual(names.filter((n) => /\.tmp$|\.lock|\.removing$|\.reclaim/.test(n)), []);
  });

  test("default folders follow PALYRA_VAULT_DIR, PALYRA_IDENTITY_DIR and XDG_STATE_HOME", async () => {
    const dir = tempDir("env");
    await withEnv(
      { PALYRA_VAULT_DIR: undefined, PALYRA_IDENTITY_DIR: undefined, XDG_STATE_HOME: join(dir, "state") },
      async () => {
        const v = await Vault.open();
        assert.equal(v.root, join(dir, "state", "palyra", "vault"));
        assert.equal(existsSync(join(dir, "state")), false, "opening creates nothing");
        await v.putSecret("global", "k", "v");
        assert.ok(existsSync(join(dir, "state", "palyra", "identity", ".store-key.v1")));
      },
    );
    await withEnv({
      PALYRA_VAULT_DIR: join(dir, "v2"),
      PALYRA_IDENTITY_DIR: join(dir, "i2"),
      XDG_STATE_HOME: undefined,
    }, async () => {
      const v = await Vault.open();
      assert.equal(v.root, join(dir, "v2"));
      await v.putSecret("global", "k", "v");
      assert.ok(existsSync(join(dir, "i2", ".store-key.v1")));
    });
    await withEnv(
      { PALYRA_VAULT_DIR: undefined, PALYRA_IDENTITY_DIR: join(dir, "i3"), XDG_STATE_HOME: undefined },
      async () => {
        const v = await Vault.open();
        assert.equal(v.root, join(dir, "vault"));
      },
    );
    await withEnv({
      PALYRA_VAULT_DIR: undefined,
      PALYRA_IDENTITY_DIR: undefined,
      XDG_STATE_HOME: undefined,
      HOME: join(dir, "home"),
    }, async () => {
      const v = await Vault.open();
      assert.equal(v.root, join(dir, "home", ".local", "state", "palyra", "vault"));
    });
  });

  test("an explicit root given through a symbolic link is resolved", async () => {
    const dir = tempDir("reallink");
    const real = join(dir, "real");
    const { mkdirSync, symlinkSync } = await import("node:fs");
    mkdirSync(real, { mode: 0o700 });
    symlinkSync(real, join(dir, "link"));
    const v = await Vault.open({ root: join(dir, "link"), kek: KEK });
    assert.equal(v.root, real);
  });
});

describe("backend choice", () => {
  test("the backend.kind marker wins over the preference", async () => {
    const root = join(tempDir("marker"), "vault");
    await (await Vault.open({ root, kek: KEK, backend: "encrypted_file" })).putSecret("global", "k", "v");
    // Asking for another kind by name is an error, not silently ignored (regression).
    const e = await rejectsWith(
      () => Vault.open({ root, kek: KEK, backend: "linux_secret_service" }),
      "backend_unavailable",
      /created with the "encrypted_file" backend, not "linux_secret_service"/,
    );
    assert.match(e.hint ?? "", /omit/);
    assert.equal((await Vault.open({ root, kek: KEK, backend: "auto" })).backendKind, "encrypted_file");
    // The environment's preference only chooses for new vaults.
    await withEnv({ PALYRA_VAULT_BACKEND: "macos_keychain" }, async () => {
      assert.equal((await Vault.open({ root, kek: KEK })).backendKind, "encrypted_file");
    });
  });

  test("a vault marked with a backend that cannot run here is backend_unavailable", async () => {
    const root = join(tempDir("marker"), "vault");
    await (await Vault.open({ root, kek: KEK })).putSecret("global", "k", "v");
    writeFileSync(join(root, "backend.kind"), "windows_dpapi\n");
    const e = await rejectsWith(
      () => Vault.open({ root, kek: KEK }),
      "backend_unavailable",
      /created with the "windows_dpapi" backend/,
    );
    assert.match(e.hint ?? "", /encrypted_file/);
    writeFileSync(join(root, "backend.kind"), "floppy_disk\n");
    await rejectsWith(() => Vault.open({ root, kek: KEK }), "io", /not a backend kind/);
  });

  test("an unavailable or unknown preference on a new vault writes no marker", async () => {
    const root = join(tempDir("pref"), "vault");
    await rejectsWith(() => Vault.open({ root, kek: KEK, backend: "windows_dpapi" }), "backend_unavailable");
    assert.equal(existsSync(join(root, "backend.kind")), false);
    await rejectsWith(
      () => Vault.open({ root, kek: KEK, backend: "floppy" as "auto" }),
      "backend_unavailable",
      /floppy/,
    );
    await withEnv({ PALYRA_VAULT_BACKEND: "bogus" }, async () => {
      await rejectsWith(() => Vault.open({ root, kek: KEK }), "backend_unavailable", /PALYRA_VAULT_BACKEND/);
    });
    await withEnv({ PALYRA_VAULT_BACKEND: "encrypted_file" }, async () => {
      assert.equal((await Vault.open({ root, kek: KEK })).backendKind, "encrypted_file");
    });
  });

  test("a custom backend is used as given and states its kind", async () => {
    const backend = new MemoryBackend();
    const v = await Vault.open({ root: join(tempDir("custom"), "vault"), kek: KEK, backend });
    assert.equal(v.backendKind, "memory");
    await v.putSecret("global", "k", "v");
    assert.equal(backend.size, 1);
  });

  test("a backend's payload limit is checked before anything is written", async () => {
    const inner = new MemoryBackend();
    const limited: BlobBackend = {
      kind: "tiny",
      maxPayloadBytes: 600,
      put: (id, b) => inner.put(id, b),
      get: (id) => inner.get(id),
      delete: (id) => inner.delete(id),
    };
    const v = await Vault.open({ root: join(tempDir("limit"), "vault"), kek: KEK, backend: limited });
    await v.putSecret("global", "small", "x".repeat(10));
    await rejectsWith(
      () => v.putSecret("global", "big", "x".repeat(600)),
      "value_too_large",
      /tiny backend keeps at most 600/,
    );
    assert.equal(inner.size, 1);
    assert.deepEqual((await v.listSecrets()).map((m) => m.key), ["small"]);
  });
});

describe("options", () => {
  test("kek must be 32 bytes, and is copied", async () => {
    const root = join(tempDir("opt"), "vault");
    await rejectsWith(() => Vault.open({ root, kek: new Uint8Array(31) }), "crypto", /32 bytes/);
    const kek = testKek(1);
    const v = await Vault.open({ root, kek });
    await v.putSecret("global", "k", "v");
    kek.fill(0);
    using got = await v.getSecret("global", "k");
    assert.equal(got.text(), "v");
  });

  test("maxSecretBytes is honoured and checked", async () => {
    const root = join(tempDir("opt"), "vault");
    const v = await Vault.open({ root, kek: KEK, maxSecretBytes: 10 });
    await v.putSecret("global", "k", "0123456789");
    await rejectsWith(() => v.putSecret("global", "k", "0123456789a"), "value_too_large", /11 bytes; the limit is 10/);
    await assert.rejects(() => Vault.open({ root, kek: KEK, maxSecretBytes: -1 }), RangeError);
    await assert.rejects(() => Vault.open({ root, kek: KEK, lockTimeoutMs: 1.5 }), RangeError);
  });

  test("both KEK engines read and write one vault: the same envelopes, small and large", async () => {
    const root = join(tempDir("engine"), "vault");
    const web = await Vault.open({ root, kek: KEK, kekEngine: "webcrypto" });
    const noble = await Vault.open({ root, kek: KEK, kekEngine: "noble" });
    const small = "sk-small";
    const large = new Uint8Array(5000).map((_, i) => i % 251);
    await web.putSecret("global", "from_web", small);
    await web.putSecret("global", "large_from_web", large);
    await noble.putSecret("global", "from_noble", small);
    for (const v of [web, noble]) {
      assert.equal((await v.getSecret("global", "from_web")).text(), small);
      assert.equal((await v.getSecret("global", "from_noble")).text(), small);
      assert.deepEqual((await v.getSecret("global", "large_from_web")).bytes, large);
    }
    // What either wrote opens with the synchronous reference implementation too.
    const path = join(root, "objects", objectId("global", "from_web"));
    assert.equal(new TextDecoder().decode(openEnvelope(KEK, "global", "from_web", readFileSync(path))), small);
    web.close();
    noble.close();
    await assert.rejects(
      () => Vault.open({ root, kek: KEK, kekEngine: "aes" as "noble" }),
      (e: unknown) => e instanceof RangeError && /kekEngine must be "noble" or "webcrypto"/.test(e.message),
    );
  });

  test("a closed vault refuses every operation", async () => {
    const v = await Vault.open({ root: join(tempDir("opt"), "vault"), kek: KEK });
    await v.putSecret("global", "k", "v");
    {
      using _v = v;
    }
    await rejectsWith(() => v.getSecret("global", "k"), "io", /closed/);
    await rejectsWith(() => v.putSecret("global", "k", "v"), "io", /closed/);
    await rejectsWith(() => v.listSecrets(), "io", /closed/);
  });
});

describe("trust regressions (review of 3d5a40a)", () => {
  test("a Node Buffer KEK is copied: wiping the caller's buffer changes nothing, close() leaves it alone", async () => {
    const { randomBytes } = await import("node:crypto");
    const root = join(tempDir("bufkek"), "vault");
    const kek = randomBytes(32); // a Buffer, as node:crypto and KMS SDKs return
    const mine = Uint8Array.from(kek);
    const vault = await Vault.open({ root, kek, backend: "encrypted_file" });
    kek.fill(0); // the caller wipes its own copy after handing it over
    await vault.putSecret("global", "openai_api_key", "sk-very-secret");
    const zero = await Vault.open({ root, kek: new Uint8Array(32), backend: "encrypted_file" });
    await rejectsWith(() => zero.getSecret("global", "openai_api_key"), "crypto");
    const right = await Vault.open({ root, kek: Buffer.from(mine), backend: "encrypted_file" });
    using got = await right.getSecret("global", "openai_api_key");
    assert.equal(got.text(), "sk-very-secret");
    const again = Buffer.from(mine);
    const v2 = await Vault.open({ root, kek: again });
    v2.close();
    assert.deepEqual(Uint8Array.from(again), mine, "close() wiped the caller's buffer");
  });

  test("a missing identity beside a vault that holds secrets is an identity error naming both folders; none is created", async () => {
    const dir = tempDir("noid");
    const root = join(dir, "vault");
    const idDir = join(dir, "identity");
    await (await Vault.open({ root, identityRoot: idDir })).putSecret("global", "k", "v");
    rmSync(idDir, { recursive: true });
    for (const attempt of [() => Vault.open({ root, identityRoot: idDir })]) {
      const e = await rejectsWith(attempt, "identity", /identity is missing/);
      assert.ok(e.message.includes(idDir) && e.message.includes(root), e.message);
      assert.match(e.hint ?? "", /restore/);
    }
    assert.equal(existsSync(idDir), false, "no new identity was created");
    // An empty vault (no secrets) may get a new identity on its first write.
    const empty = join(dir, "empty");
    const v = await Vault.open({ root: empty, identityRoot: join(dir, "id2") });
    await v.putSecret("global", "k", "v");
    assert.ok(existsSync(join(dir, "id2", ".store-key.v1")));
  });

  test("read-only operations create nothing: a mistyped vault folder is not_found naming it", async () => {
    const dir = tempDir("typo");
    const root = join(dir, "typo");
    const idDir = join(dir, "identity");
    const v = await Vault.open({ root, identityRoot: idDir });
    await rejectsWith(() => v.listSecrets(), "not_found", new RegExp(`no vault at ".*typo"`));
    await rejectsWith(() => v.listSecrets("global"), "not_found", /no vault at/);
    await rejectsWith(() => v.getSecret("global", "k"), "not_found", /no vault at/);
    await rejectsWith(() => v.deleteSecret("global", "k"), "not_found", /no vault at/);
    await rejectsWith(() => v.resolve("global/k"), "not_found", /no vault at/);
    assert.deepEqual(readdirSync(dir), [], "neither a vault nor an identity folder was created");
  });

  test("a failed open leaves no half-created folder", async () => {
    const dir = tempDir("halfopen");
    const root = join(dir, "a", "b", "vault");
    await rejectsWith(() => Vault.open({ root, kek: KEK, backend: "windows_dpapi" }), "backend_unavailable");
    await rejectsWith(
      () => Vault.open({ root, identityRoot: join(dir, "id"), backend: "bogus" as "auto" }),
      "backend_unavailable",
    );
    assert.deepEqual(readdirSync(dir), []);
  });

  test("a custom backend needs a root, so its indexes never land in the user's default vault", async () => {
    const dir = tempDir("customroot");
    await withEnv(
      { XDG_STATE_HOME: join(dir, "state"), PALYRA_VAULT_DIR: undefined, PALYRA_IDENTITY_DIR: undefined },
      async () => {
        await assert.rejects(
          () => Vault.open({ kek: KEK, backend: new MemoryBackend() }),
          (e: unknown) => e instanceof TypeError && /custom backend needs the root option/.test(e.message),
        );
      },
    );
    assert.equal(existsSync(join(dir, "state")), false);
  });

  test("overwrite: false refuses a different value with conflict, accepts the same one, and says when it replaced", async () => {
    const v = await Vault.open({ root: join(tempDir("cas"), "vault"), kek: KEK });
    const first = await v.putSecret("global", "k", "one", { overwrite: false });
    assert.equal(first.replaced, false);
    const same = await v.putSecret("global", "k", "one", { overwrite: false });
    assert.equal(same.replaced, false);
    assert.equal(same.updatedAtUnixMs, first.updatedAtUnixMs, "the same value is not written again");
    const e = await rejectsWith(() => v.putSecret("global", "k", "two", { overwrite: false }), "conflict");
    assert.match(e.hint ?? "", /--force/);
    assert.doesNotMatch(e.message, /one|two/);
    using still = await v.getSecret("global", "k");
    assert.equal(still.text(), "one");
    const forced = await v.putSecret("global", "k", "two");
    assert.equal(forced.replaced, true);
    assert.equal((await v.putSecret("global", "k", "two")).replaced, false);
  });

  test("an object or index larger than any envelope is refused before it is read", async () => {
    const root = join(tempDir("big"), "vault");
    const v = await Vault.open({ root, kek: KEK, backend: "encrypted_file" });
    await v.putSecret("global", "k", "small");
    const obj = join(root, "objects", objectId("global", "k"));
    writeFileSync(obj, "{");
    truncateSync(obj, 300 * 1024 * 1024); // sparse: costs no disk
    const rss0 = process.memoryUsage().rss;
    const e = await rejectsWith(() => v.getSecret("global", "k"), "value_too_large", /314572800 bytes/);
    assert.match(e.hint ?? "", /--max-bytes/);
    assert.ok(process.memoryUsage().rss - rss0 < 100 * 1024 * 1024, "the object was not read into memory");
    const index = join(root, "scopes", scopeDirName("global"), "metadata.json");
    truncateSync(index, 65 * 1024 * 1024);
    await rejectsWith(() => v.listSecrets("global"), "corrupt", /larger than/);
    // FORMAT.md §5: an index over 64 MiB is corrupt, whichever listing reads it (listing all scopes used to say io).
    await rejectsWith(() => v.listSecrets(), "corrupt", /larger than/);
  });

  test("a file that another process appends to while it is read is read whole, not refused as too large", async () => {
    // A scope's metadata.log grows under readers, who take no lock; each read used to fail with EFBIG (an index
    // "larger than 64 MiB", so corrupt) whenever a record landed between its stat and its read.
    const path = join(tempDir("grow"), "metadata.log");
    writeFileSync(path, "x".repeat(1000));
    const appender = spawn("node", [
      "-e",
      `const fs = require("fs"); const fd = fs.openSync(${JSON.stringify(path)}, "a");
       const end = Date.now() + 1000; while (Date.now() < end) fs.writeSync(fd, "y".repeat(37));`,
    ], { stdio: "ignore" });
    const ended = new Promise((r) => appender.on("close", r));
    let reads = 0;
    let last = 0;
    const until = Date.now() + 1_000;
    while (Date.now() < until && reads < 5_000) {
      const bytes = await defaultFileSystem.readFile(path, 64 * 1024 * 1024);
      assert.ok(bytes.length >= last, "a later read is never shorter");
      last = bytes.length;
      reads++;
    }
    await ended;
    assert.ok(reads > 0);
    assert.ok(statSync(path).size > 1000, "the other process appended while the file was read");
  });
});
