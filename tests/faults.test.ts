/**
 * Fault injection (docs/FORMAT.md §5.3, "Writing and deleting"): a failed write never leaves
 * the vault in a state that loses or misreports a secret.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Vault } from "../src/vault.ts";
import { defaultFileSystem, type FileSystem } from "../src/platform/fs.ts";
import { EncryptedFileBackend } from "../src/backends/encrypted_file.ts";
import type { BlobBackend } from "../src/backends/backend.ts";
import { MemoryBackend } from "../src/backends/memory.ts";
import { objectId, scopeDirName } from "../src/crypto/ids.ts";
import { MacosKeychainBackend } from "../src/backends/macos_keychain.ts";
import { runnerWithEnv } from "../src/platform/subprocess.ts";
import { emulatorPath, rejectsWith, tempDir, testKek } from "./helpers.ts";

const KEK = testKek(5);

/** A file layer whose atomic writes and appends fail for paths matching `failWhen`. */
function failingFs(failWhen: (path: string) => boolean, errno = "ENOSPC"): FileSystem {
  const fail = () => Promise.reject(Object.assign(new Error(`injected ${errno}`), { code: errno }));
  return {
    ...defaultFileSystem,
    writeFileAtomic: (path, data) => failWhen(path) ? fail() : defaultFileSystem.writeFileAtomic(path, data),
    appendFile: (path, data) => failWhen(path) ? fail() : defaultFileSystem.appendFile(path, data),
  };
}

/** The files of a scope index (docs/FORMAT.md §5.1): the snapshot and its log. */
const isIndex = (p: string) => /metadata\.(json|log)$/.test(p);

async function twoVaults(failWhen: (path: string) => boolean) {
  const root = join(tempDir("faults"), "vault");
  const good = await Vault.open({ root, kek: KEK, backend: "encrypted_file" });
  let armed = false;
  const bad = await Vault.open({
    root,
    kek: KEK,
    backend: "encrypted_file",
    host: {
      fs: failingFs((p) => armed && failWhen(p)),
    },
  });
  return { root, good, bad, arm: () => (armed = true) };
}

describe("fault injection", () => {
  test("a failed index write on overwrite restores the previous object", async () => {
    const { good, bad, arm } = await twoVaults(isIndex);
    const before = await good.putSecret("ws:acme", "token", "old-value");
    arm();
    await rejectsWith(() => bad.putSecret("ws:acme", "token", "new-value"), "io", /write index.*ENOSPC/);
    using v = await good.getSecret("ws:acme", "token");
    assert.equal(v.text(), "old-value");
    const { replaced: _, ...stored } = before;
    assert.deepEqual(await good.listSecrets("ws:acme"), [stored]);
  });

  test("a failed index write for a new key removes the new object", async () => {
    const { root, good, bad, arm } = await twoVaults(isIndex);
    await good.putSecret("ws:acme", "other", "x");
    arm();
    await rejectsWith(() => bad.putSecret("ws:acme", "fresh", "value"), "io");
    await rejectsWith(() => good.getSecret("ws:acme", "fresh"), "not_found");
    assert.equal(existsSync(join(root, "objects", objectId("ws:acme", "fresh"))), false);
    assert.deepEqual((await good.listSecrets("ws:acme")).map((m) => m.key), ["other"]);
  });

  test("a failed object write leaves index and old value alone", async () => {
    const { good, bad, arm } = await twoVaults((p) => p.includes("/objects/"));
    await good.putSecret("global", "k", "kept");
    const listed = await good.listSecrets();
    arm();
    await rejectsWith(() => bad.putSecret("global", "k", "lost"), "io", /write object/);
    await rejectsWith(() => bad.putSecret("global", "k2", "lost"), "io");
    using v = await good.getSecret("global", "k");
    assert.equal(v.text(), "kept");
    assert.deepEqual(await good.listSecrets(), listed);
  });

  test("when the restore fails too, the error says both", async () => {
    const root = join(tempDir("faults"), "vault");
    const good = await Vault.open({ root, kek: KEK });
    await good.putSecret("global", "k", "v1");
    let objectWrites = 0;
    const fs = failingFs((p) => isIndex(p) || (p.includes("/objects/") && ++objectWrites > 1));
    const bad = await Vault.open({ root, kek: KEK, host: { fs } });
    await rejectsWith(
      () => bad.putSecret("global", "k", "v2"),
      "io",
      /write index.*ENOSPC.*putting the previous value back failed too/,
    );
  });

  test("a failed object removal restores the index", async () => {
    const root = join(tempDir("faults"), "vault");
    const files = new EncryptedFileBackend(root, defaultFileSystem);
    let failDelete = false;
    const backend: BlobBackend = {
      kind: "flaky",
      put: (id, b) => files.put(id, b),
      get: (id) => files.get(id),
      delete: (id) =>
        failDelete ? Promise.reject(Object.assign(new Error("injected EIO"), { code: "EIO" })) : files.delete(id),
    };
    const vault = await Vault.open({ root, kek: KEK, backend });
    const meta = await vault.putSecret("ws:acme", "token", "still-here");
    failDelete = true;
    await assert.rejects(() => vault.deleteSecret("ws:acme", "token"), /EIO/);
    const { replaced: _, ...stored } = meta;
    assert.deepEqual(await vault.listSecrets("ws:acme"), [stored]);
    using v = await vault.getSecret("ws:acme", "token");
    assert.equal(v.text(), "still-here");
    failDelete = false;
    assert.equal(await vault.deleteSecret("ws:acme", "token"), true);
  });

  test("a corrupt index makes writes to that scope fail and is never overwritten", async () => {
    const root = join(tempDir("faults"), "vault");
    const vault = await Vault.open({ root, kek: KEK });
    await vault.putSecret("ws:acme", "a", "1");
    await vault.putSecret("ws:fine", "b", "2");
    const index = join(root, "scopes", scopeDirName("ws:acme"), "metadata.json");
    const corruptions = [
      "{not json",
      JSON.stringify({ version: 2, scope: "ws:acme", entries: [] }),
      JSON.stringify({ version: 1, scope: "ws:other", entries: [] }),
      JSON.stringify({ version: 1, scope: "ws:acme", entries: [{ key: "a" }] }),
      JSON.stringify({ version: 1, scope: "ws:acme", entries: {} }),
      "",
    ];
    for (const bad of corruptions) {
      writeFileSync(index, bad);
      await rejectsWith(() => vault.putSecret("ws:acme", "c", "3"), "corrupt", /corrupt/);
      await rejectsWith(() => vault.deleteSecret("ws:acme", "a"), "corrupt", /corrupt/);
      await rejectsWith(() => vault.listSecrets("ws:acme"), "corrupt", /corrupt/);
      await rejectsWith(() => vault.listSecrets(), "corrupt", /corrupt|does not match/);
      assert.equal(readFileSync(index, "utf8"), bad);
    }
    // Other scopes are unaffected, and the secrets of the broken scope can still be read.
    await vault.putSecret("ws:fine", "c", "3");
    using a = await vault.getSecret("ws:acme", "a");
    assert.equal(a.text(), "1");
  });

  test("a read error other than absence is io, not not_found", async () => {
    const root = join(tempDir("faults"), "vault");
    const vault = await Vault.open({ root, kek: KEK });
    await vault.putSecret("global", "k", "v");
    const failing = await Vault.open({
      root,
      kek: KEK,
      host: {
        fs: {
          ...defaultFileSystem,
          readFile: (p) =>
            p.includes("/objects/")
              ? Promise.reject(Object.assign(new Error("injected EIO"), { code: "EIO" }))
              : defaultFileSystem.readFile(p),
        },
      },
    });
    await rejectsWith(() => failing.getSecret("global", "k"), "io", /EIO/);
  });
});

describe("trust regressions (review of 3d5a40a)", () => {
  test("a keychain that truncates on a failed update gets the previous value put back", async () => {
    const dir = tempDir("trunc");
    const env = (mode: string) => ({
      PATH: emulatorPath(),
      FAKE_KEYCHAIN_DIR: dir,
      FAKE_KEYCHAIN_LOG: `${dir}.log`,
      FAKE_KEYCHAIN_MODE: mode,
    });
    const normal = new MacosKeychainBackend({ run: runnerWithEnv(env("")) });
    const truncating = new MacosKeychainBackend({ run: runnerWithEnv(env("truncate")) });
    let truncateNext = false;
    // `security -i` reports success but truncates the update (once); the read-back catches it.
    const backend: BlobBackend = {
      kind: "macos_keychain",
      maxPayloadBytes: normal.maxPayloadBytes,
      put: (id, b) => {
        const which = truncateNext ? truncating : normal;
        truncateNext = false;
        return which.put(id, b);
      },
      get: (id) => normal.get(id),
      delete: (id) => normal.delete(id),
    };
    const v = await Vault.open({ root: join(dir, "vault"), kek: KEK, backend });
    await v.putSecret("global", "openai_api_key", "sk-ORIGINAL-value");
    truncateNext = true;
    await rejectsWith(() => v.putSecret("global", "openai_api_key", "sk-NEW-value"), "io", /truncated/);
    using after = await v.getSecret("global", "openai_api_key");
    assert.equal(after.text(), "sk-ORIGINAL-value");
  });

  test("a folder fsync failing after the index rename keeps the new object: rollback follows what is on disk", async () => {
    const root = join(tempDir("rollback"), "vault");
    let failNext = false;
    const fs: FileSystem = {
      ...defaultFileSystem,
      writeFileAtomic(p, d, m) {
        return defaultFileSystem.writeFileAtomic.call(fs, p, d, m);
      },
      syncDir(p) {
        if (failNext && p.includes("/scopes/s_")) {
          failNext = false;
          return Promise.reject(Object.assign(new Error("injected EIO"), { code: "EIO" }));
        }
        return defaultFileSystem.syncDir(p);
      },
    };
    const v = await Vault.open({ root, kek: KEK, backend: "encrypted_file", host: { fs } });
    await v.putSecret("global", "warmup", "x");
    failNext = true;
    const e = await rejectsWith(() => v.putSecret("global", "api_key", "s3cret"), "io", /in place.*durably/);
    assert.match(e.hint ?? "", /power loss/);
    assert.deepEqual((await v.listSecrets("global")).map((m) => m.key), ["api_key", "warmup"]);
    using got = await v.getSecret("global", "api_key");
    assert.equal(got.text(), "s3cret", "every key the index lists can be read");
  });
});

describe("fault injection: the index log (docs/FORMAT.md §5.1)", () => {
  /** A file layer whose next append to a log does `fault` instead of (or around) the real append. */
  function appendFaults() {
    let fault: ((path: string, data: Uint8Array) => Promise<void>) | undefined;
    const fs: FileSystem = {
      ...defaultFileSystem,
      appendFile(path, data) {
        const f = fault;
        fault = undefined;
        return f !== undefined && path.endsWith("metadata.log")
          ? f(path, data)
          : defaultFileSystem.appendFile(path, data);
      },
    };
    return { fs, next: (f: (path: string, data: Uint8Array) => Promise<void>) => (fault = f) };
  }
  const eio = () => Object.assign(new Error("injected EIO"), { code: "EIO" });

  test("an append torn by a failure is not the new value: the old object is put back, and the next write cuts the torn bytes", async () => {
    const root = join(tempDir("torn-append"), "vault");
    const { fs, next } = appendFaults();
    const v = await Vault.open({ root, kek: KEK, host: { fs } });
    await v.putSecret("ws:acme", "a", "first");
    await v.putSecret("ws:acme", "b", "b"); // the log now exists: the next change is an append
    const listed = await v.listSecrets("ws:acme");
    next((path, data) => {
      appendFileSync(path, data.subarray(0, data.length - 7)); // half a record reached the disk
      return Promise.reject(eio());
    });
    await rejectsWith(() => v.putSecret("ws:acme", "a", "second"), "io", /write index.*EIO/);
    using kept = await v.getSecret("ws:acme", "a");
    assert.equal(kept.text(), "first", "the previous object is back");
    assert.deepEqual(await v.listSecrets("ws:acme"), listed);
    const other = await Vault.open({ root, kek: KEK });
    assert.deepEqual(await other.listSecrets("ws:acme"), listed);
    await v.putSecret("ws:acme", "c", "c");
    assert.deepEqual((await other.listSecrets("ws:acme")).map((m) => m.key), ["a", "b", "c"]);
  });

  test("an append whose fsync fails after the record landed keeps the new value, and says it may not be durable", async () => {
    const root = join(tempDir("fsync-append"), "vault");
    const { fs, next } = appendFaults();
    const v = await Vault.open({ root, kek: KEK, host: { fs } });
    await v.putSecret("global", "a", "1");
    await v.putSecret("global", "b", "2");
    next(async (path, data) => {
      await defaultFileSystem.appendFile(path, data);
      throw eio();
    });
    await rejectsWith(() => v.putSecret("global", "a", "new"), "io", /in place.*durably/);
    using got = await v.getSecret("global", "a");
    assert.equal(got.text(), "new");
    next(() => Promise.reject(eio()));
    // A delete whose append failed outright leaves the secret readable and listed.
    await rejectsWith(() => v.deleteSecret("global", "b"), "io", /EIO/);
    using still = await v.getSecret("global", "b");
    assert.equal(still.text(), "2");
    assert.deepEqual((await v.listSecrets("global")).map((m) => m.key), ["a", "b"]);
    assert.equal(await v.deleteSecret("global", "b"), true);
    assert.deepEqual((await (await Vault.open({ root, kek: KEK })).listSecrets("global")).map((m) => m.key), ["a"]);
  });
});

describe("load", () => {
  test("regression: a burst of concurrent puts in one process queues; it is not lock_timeout however slow the backend", async () => {
    const inner = new MemoryBackend();
    const slow: BlobBackend = {
      kind: "slow",
      put: async (id, b) => {
        await new Promise((r) => setTimeout(r, 30)); // a keychain on a busy machine
        await inner.put(id, b);
      },
      get: (id) => inner.get(id),
      delete: (id) => inner.delete(id),
    };
    // 40 puts of 30 ms each take over a second; the lock timeout is a tenth of that.
    const v = await Vault.open({ root: join(tempDir("burst"), "vault"), kek: KEK, backend: slow, lockTimeoutMs: 100 });
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    await Promise.all(keys.map((k) => v.putSecret("ws:busy", k, `v-${k}`)));
    assert.deepEqual((await v.listSecrets("ws:busy")).map((m) => m.key), keys.slice().sort());
    // Another Vault on the same folder in this process takes turns with it too.
    const w = await Vault.open({ root: v.root, kek: KEK, backend: slow, lockTimeoutMs: 100 });
    await Promise.all(keys.flatMap((k) => [v.putSecret("ws:busy", k, "a"), w.putSecret("ws:busy", k, "b")]));
  });
});
