/** The vault folder on disk, defaults, options and backend choice (SPEC §5, §6, §11). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Vault } from "../src/vault.ts";
import type { BlobBackend } from "../src/backends/backend.ts";
import { MemoryBackend } from "../src/backends/memory.ts";
import { objectId, scopeDirName } from "../src/crypto/ids.ts";
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
    assert.equal(readFileSync(join(root, "backend.kind"), "utf8"), "encrypted_file\n");
    assert.deepEqual(readdirSync(root).sort(), ["backend.kind", "objects", "scopes"]);
    const sdir = scopeDirName("ws:acme");
    assert.deepEqual(readdirSync(join(root, "scopes")), [sdir]);
    assert.deepEqual(readdirSync(join(root, "scopes", sdir)), ["metadata.json"]);
    const index = JSON.parse(readFileSync(join(root, "scopes", sdir, "metadata.json"), "utf8"));
    assert.deepEqual(Object.keys(index), ["version", "scope", "entries"]);
    assert.equal(index.version, 1);
    assert.equal(index.scope, "ws:acme");
    assert.deepEqual(index.entries.map((e: { key: string }) => e.key), ["a_key", "b_key"]);
    const e0 = index.entries[0];
    assert.deepEqual(Object.keys(e0), ["key", "object_id", "created_at_unix_ms", "updated_at_unix_ms", "value_bytes"]);
    assert.equal(e0.object_id, objectId("ws:acme", "a_key"));
    assert.equal(e0.value_bytes, 2);
    assert.ok(e0.created_at_unix_ms >= t0 - 1000 && e0.created_at_unix_ms <= Date.now());
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
        assert.ok(existsSync(join(dir, "state", "palyra", "identity", "state.v1.json")));
      },
    );
    await withEnv({
      PALYRA_VAULT_DIR: join(dir, "v2"),
      PALYRA_IDENTITY_DIR: join(dir, "i2"),
      XDG_STATE_HOME: undefined,
    }, async () => {
      const v = await Vault.open();
      assert.equal(v.root, join(dir, "v2"));
      assert.ok(existsSync(join(dir, "i2", "state.v1.json")));
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
    await Vault.open({ root, kek: KEK, backend: "encrypted_file" });
    const again = await Vault.open({ root, kek: KEK, backend: "linux_secret_service" });
    assert.equal(again.backendKind, "encrypted_file");
    await withEnv({ PALYRA_VAULT_BACKEND: "macos_keychain" }, async () => {
      assert.equal((await Vault.open({ root, kek: KEK })).backendKind, "encrypted_file");
    });
  });

  test("a vault marked with a backend that cannot run here is backend_unavailable", async () => {
    const root = join(tempDir("marker"), "vault");
    await Vault.open({ root, kek: KEK });
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
