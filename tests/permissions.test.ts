/** Permissions and symbolic-link refusal (docs/FORMAT.md §7; README, "Threat model"). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  chmodSync,
  chownSync,
  cpSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Vault } from "../src/vault.ts";
import { defaultFileSystem } from "../src/platform/fs.ts";
import { objectId, scopeDirName } from "../src/crypto/ids.ts";
import {
  DENO_DOCUMENTED,
  hex,
  rejectsWith,
  ROOT,
  run,
  runScript,
  RUNTIME_NAMES,
  RUNTIMES,
  tempDir,
  testKek,
} from "./helpers.ts";

const KEK = testKek(6);
const mode = (p: string) => lstatSync(p).mode & 0o777;

/** Every folder and file below `dir`, with its mode. */
function walk(dir: string, out: Array<[string, number, boolean]> = []): Array<[string, number, boolean]> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    out.push([p, st.mode & 0o777, st.isDirectory()]);
    if (st.isDirectory()) walk(p, out);
  }
  return out;
}

describe("permissions", () => {
  for (const runtime of RUNTIME_NAMES) {
    test(`${runtime}: folders 0700 and files 0600 under umask 000`, async () => {
      const dir = tempDir("umask");
      const root = join(dir, "vault");
      const idDir = join(dir, "identity");
      const worker = join(ROOT, "tests/workers/vault_worker.ts");
      const put = await run([
        "sh",
        "-c",
        'umask 000; exec "$@"',
        "sh",
        ...RUNTIMES[runtime](worker),
        "put",
        root,
        "0",
        "3",
        "global,ws:a",
        "0",
      ], {
        input: hex(KEK),
      });
      assert.equal(put.code, 0, put.stderr);
      const id = await run([
        "sh",
        "-c",
        'umask 000; exec "$@"',
        "sh",
        ...RUNTIMES[runtime](worker),
        "identity",
        idDir,
        "0",
      ]);
      assert.equal(id.code, 0, id.stderr);
      const entries = [
        [root, mode(root), true] as [string, number, boolean],
        ...walk(root),
        [idDir, mode(idDir), true] as [string, number, boolean],
        ...walk(idDir),
      ];
      assert.ok(entries.length >= 9, `expected the whole layout, got ${entries.length}`);
      for (const [p, m, isDir] of entries) assert.equal(m, isDir ? 0o700 : 0o600, `${p} is ${m.toString(8)}`);
    });
  }

  test("a vault or identity folder open to group and others is tightened on open", async () => {
    const dir = tempDir("perm");
    const root = join(dir, "vault");
    const idDir = join(dir, "identity");
    mkdirSync(join(root, "scopes"), { recursive: true });
    mkdirSync(idDir);
    chmodSync(root, 0o755);
    chmodSync(join(root, "scopes"), 0o777);
    chmodSync(idDir, 0o750);
    const vault = await Vault.open({ root, identityRoot: idDir });
    assert.equal(mode(root), 0o700);
    assert.equal(mode(join(root, "scopes")), 0o700);
    assert.equal(mode(idDir), 0o700);
    await vault.putSecret("ws:x", "k", "v");
    chmodSync(join(root, "scopes", scopeDirName("ws:x")), 0o755);
    await vault.putSecret("ws:x", "k", "v2");
    assert.equal(mode(join(root, "scopes", scopeDirName("ws:x"))), 0o700);
  });

  test("a folder owned by another user is refused", async () => {
    const dir = tempDir("owner");
    const root = join(dir, "vault");
    mkdirSync(root, { mode: 0o700 });
    const me = process.getuid!();
    if (me === 0) {
      // As root, make it really belong to someone else.
      chownSync(root, 65534, 65534);
      await rejectsWith(() => Vault.open({ root, kek: KEK }), "permission", /owned by uid 65534/);
      chownSync(root, 0, 0);
    }
    // And whoever we are, through a file layer that reports another owner.
    const fs = {
      ...defaultFileSystem,
      lstat: async (p: string) => {
        const info = await defaultFileSystem.lstat(p);
        return info && p === root ? { ...info, uid: me + 1 } : info;
      },
    };
    await rejectsWith(() => Vault.open({ root, kek: KEK, host: { fs } }), "permission", /not by the current user/);
    assert.equal(mode(root), 0o700);
  });

  test("symbolic links planted at an object, an index or a lock are refused, targets untouched", async () => {
    const dir = tempDir("links");
    const root = join(dir, "vault");
    const vault = await Vault.open({ root, kek: KEK });
    await vault.putSecret("ws:a", "seed", "v");
    const target = join(dir, "precious");
    writeFileSync(target, "precious");
    const scopeDir = join(root, "scopes", scopeDirName("ws:a"));

    // Object path.
    symlinkSync(target, join(root, "objects", objectId("ws:a", "obj")));
    await rejectsWith(() => vault.putSecret("ws:a", "obj", "x"), "permission", /symbolic link/);
    await rejectsWith(() => vault.getSecret("ws:a", "obj"), "permission", /symbolic link/);
    await rejectsWith(() => vault.deleteSecret("ws:a", "obj"), "permission", /symbolic link/);

    // Lock path.
    symlinkSync(target, join(scopeDir, ".metadata.lock"));
    await rejectsWith(() => vault.putSecret("ws:a", "other", "x"), "permission", /symbolic link/);

    // Index path (in another scope, whose lock is free).
    await vault.putSecret("ws:b", "seed", "v");
    const indexB = join(root, "scopes", scopeDirName("ws:b"), "metadata.json");
    const real = readFileSync(indexB);
    writeFileSync(target, real);
    rmSync(indexB);
    symlinkSync(target, indexB);
    await rejectsWith(() => vault.putSecret("ws:b", "next", "x"), "permission", /symbolic link/);
    await rejectsWith(() => vault.listSecrets("ws:b"), "permission", /symbolic link/);
    assert.deepEqual(readFileSync(target), real);
    assert.ok(lstatSync(indexB).isSymbolicLink());
  });

  test("a scope folder or the objects folder replaced by a link is refused", async () => {
    const dir = tempDir("links2");
    const root = join(dir, "vault");
    const elsewhere = join(dir, "elsewhere");
    mkdirSync(elsewhere, { mode: 0o700 });
    const vault = await Vault.open({ root, kek: KEK });
    await vault.putSecret("global", "seed", "v"); // the first write creates the vault
    symlinkSync(elsewhere, join(root, "scopes", scopeDirName("ws:c")), "dir");
    await rejectsWith(() => vault.putSecret("ws:c", "k", "v"), "permission", /symbolic link/);
    await rejectsWith(() => vault.listSecrets(), "permission", /symbolic link/);
    const root2 = join(dir, "vault2");
    mkdirSync(root2, { mode: 0o700 });
    symlinkSync(elsewhere, join(root2, "objects"), "dir");
    await rejectsWith(() => Vault.open({ root: root2, kek: KEK }), "permission", /symbolic link/);
    assert.deepEqual(readdirSync(elsewhere), []);
  });
});

describe("symbolic links (review of 3d5a40a)", () => {
  test("regression: a vault root that is a link to a file is refused and the file's mode is untouched", async () => {
    const dir = tempDir("rootlink");
    const file = join(dir, "notes.txt");
    writeFileSync(file, "hello");
    chmodSync(file, 0o644);
    symlinkSync(file, join(dir, "vaultlink"));
    await rejectsWith(() => Vault.open({ root: join(dir, "vaultlink"), kek: KEK }), "io", /not a folder/);
    assert.equal(mode(file), 0o644);
    assert.equal(readFileSync(file, "utf8"), "hello");
  });

  test("regression: objects/ swapped for a link after the vault was opened is not followed on reads or writes", async () => {
    const dir = tempDir("objlink");
    const root = join(dir, "vault");
    const v = await Vault.open({ root, kek: KEK, backend: "encrypted_file" });
    await v.putSecret("global", "token", "current-value");
    const old = join(dir, "old");
    cpSync(join(root, "objects"), join(old, "objects"), { recursive: true });
    await v.putSecret("global", "token", "rotated-value");
    renameSync(join(root, "objects"), join(root, "objects.real"));
    symlinkSync(join(old, "objects"), join(root, "objects"), "dir");
    await rejectsWith(() => v.getSecret("global", "token"), "permission", /not a real folder/);
    await rejectsWith(() => v.putSecret("global", "other", "x"), "permission", /symbolic link|not a real folder/);
    await rejectsWith(() => v.deleteSecret("global", "token"), "permission", /not a real folder/);
    await rejectsWith(() => Vault.open({ root, kek: KEK, backend: "encrypted_file" }), "permission", /symbolic link/);
    assert.deepEqual(readdirSync(join(old, "objects")).length, 1);
  });
});

describe("Deno permissions (review of 3d5a40a)", () => {
  test("regression: without --allow-sys=uid, Vault.open is a permission VaultError with a hint, not an uncaught NotCapable", async () => {
    const dir = tempDir("deno-uid");
    const noUid = DENO_DOCUMENTED.map((f) => f.startsWith("--allow-sys") ? "--allow-sys=hostname" : f);
    const r = await runScript("deno", "tests/workers/vault_worker.ts", ["open", join(dir, "v"), join(dir, "id")], {
      deno: noUid,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(new TextDecoder().decode(r.stdout), /^VaultError permission \| .*--allow-sys=hostname,uid/m);
    const full = await runScript("deno", "tests/workers/vault_worker.ts", ["open", join(dir, "v2"), join(dir, "id2")], {
      deno: DENO_DOCUMENTED,
    });
    assert.match(new TextDecoder().decode(full.stdout), /^ok$/m, full.stderr);
  });
});
