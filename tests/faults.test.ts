/**
 * Fault injection (SPEC §5 "put" and "delete"): a failed write never leaves
 * the vault in a state that loses or misreports a secret.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openVaultWith, Vault } from "../src/vault.ts";
import { type FileSystem, nodeFileSystem } from "../src/platform/fs.ts";
import { EncryptedFileBackend } from "../src/backends/encrypted_file.ts";
import type { BlobBackend } from "../src/backends/backend.ts";
import { objectId, scopeDirName } from "../src/crypto/ids.ts";
import { rejectsWith, tempDir, testKek } from "./helpers.ts";

const KEK = testKek(5);

/** A file layer whose atomic writes fail for paths matching `failWhen`. */
function failingFs(failWhen: (path: string) => boolean, errno = "ENOSPC"): FileSystem {
  return {
    ...nodeFileSystem,
    writeFileAtomic(path, data) {
      if (failWhen(path)) return Promise.reject(Object.assign(new Error(`injected ${errno}`), { code: errno }));
      return nodeFileSystem.writeFileAtomic(path, data);
    },
  };
}

async function twoVaults(failWhen: (path: string) => boolean) {
  const root = join(tempDir("faults"), "vault");
  const good = await Vault.open({ root, kek: KEK, backend: "encrypted_file" });
  let armed = false;
  const bad = await openVaultWith({ root, kek: KEK, backend: "encrypted_file" }, {
    fs: failingFs((p) => armed && failWhen(p)),
  });
  return { root, good, bad, arm: () => (armed = true) };
}

describe("fault injection", () => {
  test("a failed index write on overwrite restores the previous object", async () => {
    const { good, bad, arm } = await twoVaults((p) => p.endsWith("metadata.json"));
    const before = await good.putSecret("ws:acme", "token", "old-value");
    arm();
    await rejectsWith(() => bad.putSecret("ws:acme", "token", "new-value"), "io", /write index.*ENOSPC/);
    using v = await good.getSecret("ws:acme", "token");
    assert.equal(v.text(), "old-value");
    assert.deepEqual(await good.listSecrets("ws:acme"), [before]);
  });

  test("a failed index write for a new key removes the new object", async () => {
    const { root, good, bad, arm } = await twoVaults((p) => p.endsWith("metadata.json"));
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
    const fs = failingFs((p) => p.endsWith("metadata.json") || (p.includes("/objects/") && ++objectWrites > 1));
    const bad = await openVaultWith({ root, kek: KEK }, { fs });
    await rejectsWith(
      () => bad.putSecret("global", "k", "v2"),
      "io",
      /index write failed.*restoring the previous object failed too/,
    );
  });

  test("a failed object removal restores the index", async () => {
    const root = join(tempDir("faults"), "vault");
    const files = new EncryptedFileBackend(root, nodeFileSystem);
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
    assert.deepEqual(await vault.listSecrets("ws:acme"), [meta]);
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
      await rejectsWith(() => vault.putSecret("ws:acme", "c", "3"), "io", /corrupt/);
      await rejectsWith(() => vault.deleteSecret("ws:acme", "a"), "io", /corrupt/);
      await rejectsWith(() => vault.listSecrets("ws:acme"), "io", /corrupt/);
      await rejectsWith(() => vault.listSecrets(), "io", /corrupt/);
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
    const failing = await openVaultWith({ root, kek: KEK }, {
      fs: {
        ...nodeFileSystem,
        readFile: (p) =>
          p.includes("/objects/")
            ? Promise.reject(Object.assign(new Error("injected EIO"), { code: "EIO" }))
            : nodeFileSystem.readFile(p),
      },
    });
    await rejectsWith(() => failing.getSecret("global", "k"), "io", /EIO/);
  });
});
