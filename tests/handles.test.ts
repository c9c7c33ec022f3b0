/**
 * A handle kept open while other processes change the vault folder: a daemon
 * that opened the vault before `palyra-secrets set` created it, or before
 * `palyra-secrets migrate` converted it. The other process is the CLI, run for
 * real; the handle must give a right answer or a `conflict`, never a false
 * "not set" or an empty list.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Vault } from "../src/vault.ts";
import { defaultFileSystem, type FileSystem } from "../src/platform/fs.ts";
import { checkVault } from "../src/fsck.ts";
import { exportVault } from "../src/export.ts";
import { rekeyVault } from "../src/rekey.ts";
import { cliEnv, rejectsWith, run, seedIdentity, tempDir, testKek } from "./helpers.ts";
import { CLI_TARGETS, ownTargets } from "./cli_targets.ts";

const target = ownTargets()[0]!;

/** A vault folder and identity that do not exist yet, and the CLI run on them as another process. */
function sandbox(label: string) {
  const dir = tempDir(label);
  const env = cliEnv(dir);
  const cli = async (args: string[], input?: string) => {
    const r = await run([...(await CLI_TARGETS[target]()), ...args], {
      env,
      cwd: dir,
      ...(input === undefined ? {} : { input }),
    });
    assert.equal(r.code, 0, `palyra-secrets ${args.join(" ")}: ${r.stderr}`);
    return r;
  };
  const open = (options: { layout?: "scoped" | "palyra" } = {}) =>
    Vault.open({
      root: env.PALYRA_VAULT_DIR,
      identityRoot: env.PALYRA_IDENTITY_DIR,
      backend: "encrypted_file",
      ...options,
    });
  return { dir, env, cli, open };
}

const text = async (p: Promise<{ text(): string; [Symbol.dispose](): void }>) => {
  using s = await p;
  return s.text();
};

describe("a handle opened before its vault existed", () => {
  test("reads what another process stored since, with the identity that process made", async () => {
    const box = sandbox("before-set");
    const vault = await box.open(); // no identity and no vault folder yet
    await rejectsWith(() => vault.getSecret("global", "openai_api_key"), "not_found", /there is no vault/);
    await box.cli(["set", "global", "openai_api_key"], "sk-from-the-cli");
    assert.equal(await text(vault.getSecret("global", "openai_api_key")), "sk-from-the-cli");
    assert.deepEqual((await vault.listSecrets()).map((m) => `${m.scope}/${m.key}`), ["global/openai_api_key"]);
    await vault.putSecret("global", "second", "v2");
    assert.equal(new TextDecoder().decode((await box.cli(["get", "global", "second", "--reveal"])).stdout), "v2");
    assert.equal(await vault.deleteSecret("global", "openai_api_key"), true);
    vault.close();
  });

  test("takes the layout the vault was created in, as an open would now", async () => {
    const box = sandbox("before-set-palyra");
    await seedIdentity(box.env.PALYRA_IDENTITY_DIR);
    const vault = await box.open(); // no layout asked for: a new vault would be scoped
    assert.equal(vault.layout, "scoped");
    await box.cli(["set", "--layout", "palyra", "principal:alice", "token"], "t-1");
    assert.equal(await text(vault.getSecret("principal:alice", "token")), "t-1");
    await vault.putSecret("global", "k", "v");
    assert.equal(vault.layout, "palyra");
    // One layout in the folder: the handle wrote into Palyra's, and made no scopes/ beside it.
    assert.deepEqual(readdirSync(box.env.PALYRA_VAULT_DIR).sort(), ["backend.kind", "metadata.json", "objects"]);
    const listed = new TextDecoder().decode((await box.cli(["list", "--json"])).stdout);
    assert.deepEqual(
      (JSON.parse(listed) as { secrets: { scope: string; key: string }[] }).secrets.map((s) => `${s.scope}/${s.key}`)
        .sort(),
      ["global/k", "principal:alice/token"],
    );
    vault.close();
  });

  test("asked for the other layout, refuses to write and changes nothing", async () => {
    const box = sandbox("before-set-other");
    await seedIdentity(box.env.PALYRA_IDENTITY_DIR);
    const vault = await box.open({ layout: "scoped" });
    await box.cli(["set", "--layout", "palyra", "global", "token"], "t-1");
    const before = readdirSync(box.env.PALYRA_VAULT_DIR).sort();
    // As Vault.open({ layout: "scoped" }) of this folder would now: a conflict naming migrate.
    await rejectsWith(() => vault.putSecret("global", "k", "v"), "conflict", /palyra layout, not the scoped/);
    await rejectsWith(() => vault.getSecret("global", "token"), "conflict", /palyra layout, not the scoped/);
    assert.deepEqual(readdirSync(box.env.PALYRA_VAULT_DIR).sort(), before);
    assert.equal(existsSync(join(box.env.PALYRA_VAULT_DIR, "scopes")), false);
    vault.close();
  });

  test("fsck and export see the vault another process created", async () => {
    const box = sandbox("before-set-ops");
    await seedIdentity(box.env.PALYRA_IDENTITY_DIR);
    const vault = await box.open();
    await box.cli(["set", "global", "k"], "v");
    const report = await checkVault(vault);
    assert.equal(report.secrets, 1);
    assert.deepEqual(report.findings, []);
    const exported = await exportVault(vault, { passphrase: "correct horse battery staple", scryptWorkFactor: 10 });
    assert.equal(exported.secrets, 1);
    vault.close();
  });
});

describe("a handle opened before another process migrated the vault", () => {
  for (const [from, to] of [["scoped", "palyra"], ["palyra", "scoped"]] as const) {
    test(`${from} → ${to}: reads are a conflict that says to open again, not "not set" or an empty list`, async () => {
      const box = sandbox(`migrated-${to}`);
      await seedIdentity(box.env.PALYRA_IDENTITY_DIR);
      await box.cli(["set", "--layout", from, "global", "token"], "t-1");
      const vault = await box.open();
      assert.equal(await text(vault.getSecret("global", "token")), "t-1");
      await box.cli(["migrate", "--to", to]);
      await rejectsWith(() => vault.getSecret("global", "token"), "conflict", new RegExp(`migrated to the ${to}`));
      await rejectsWith(() => vault.getSecret("global", "never_set"), "conflict", /open the vault again|migrated/);
      await rejectsWith(() => vault.listSecrets(), "conflict", new RegExp(`migrated to the ${to}`));
      await rejectsWith(() => vault.listSecrets("global"), "conflict", new RegExp(`migrated to the ${to}`));
      // Writes too, even of a scope that only the layout the handle knows would refuse (ws: in Palyra's).
      await rejectsWith(() => vault.putSecret("global", "token", "t-2"), "conflict", /migrated|layout changed/);
      await rejectsWith(() => vault.putSecret("ws:acme", "token", "t-2"), "conflict", /migrated|layout changed/);
      await rejectsWith(() => vault.deleteSecret("global", "token"), "conflict", /migrated|layout changed/);
      // And the operations on the whole vault: fsck found nothing wrong with zero secrets, rekey rekeyed nothing.
      await rejectsWith(
        () => checkVault(vault),
        "conflict",
        new RegExp(`check vault failed: it was migrated to the ${to}`),
      );
      await rejectsWith(() => rekeyVault(vault, { toKek: testKek(3) }), "conflict", /migrated/);
      // Opened again, the handle reads the migrated vault.
      const again = await box.open();
      assert.equal(await text(again.getSecret("global", "token")), "t-1");
      assert.equal(again.layout, to);
      vault.close();
      again.close();
    });
  }
});

describe("a first write through a handle that predates a migration", () => {
  test("scopes/ removed again as it is made (another stale writer leaving): a conflict, not an I/O error", async () => {
    // Seen on a loaded machine in tests/concurrency.test.ts: "create scopes folder failed: … vanished after mkdir".
    const box = sandbox("stale-create");
    await seedIdentity(box.env.PALYRA_IDENTITY_DIR);
    await box.cli(["set", "global", "token"], "t-1");
    let removed = 0;
    const fs: FileSystem = {
      ...defaultFileSystem,
      async mkdir(p) {
        await defaultFileSystem.mkdir(p);
        // Another writer of the old layout cleans up the scopes/ it made in the migrated vault (docs/FORMAT.md §6.6).
        if (/[\\/]scopes$/.test(p)) {
          await defaultFileSystem.rmdir(p);
          removed++;
        }
      },
    };
    const stale = await Vault.open({
      root: box.env.PALYRA_VAULT_DIR,
      identityRoot: box.env.PALYRA_IDENTITY_DIR,
      backend: "encrypted_file",
      host: { fs },
    });
    await box.cli(["migrate", "--to", "palyra"]);
    const e = await rejectsWith(() => stale.putSecret("global", "k", "v"), "conflict", /migrated to the palyra layout/);
    assert.equal(removed, 1, "scopes/ was made and removed during the write");
    assert.match(e.hint ?? "", /open the vault again/);
    stale.close();
    const after = await box.open();
    assert.equal(after.layout, "palyra");
    assert.equal(await text(after.getSecret("global", "token")), "t-1");
    after.close();
  });
});

describe("a current handle beside one that predates a migration", () => {
  test("the stale writer's refused writes do not make an open, or the current handle's reads and writes, fail", async () => {
    const box = sandbox("stale-beside-current");
    await seedIdentity(box.env.PALYRA_IDENTITY_DIR);
    await box.cli(["set", "global", "token"], "t-1");
    const stale = await box.open();
    await box.cli(["migrate", "--to", "palyra"]);
    const current = await box.open();
    // The stale (scoped) writer makes its scope's folder to lock it before it finds the vault migrated; for that
    // moment the folder holds both layouts.
    for (let round = 0; round < 5; round++) {
      const [opened, listed, put, ...refused] = await Promise.allSettled([
        box.open(),
        current.listSecrets(),
        current.putSecret("global", `k${round}`, "v"),
        stale.putSecret("global", "token", "t-2"),
        stale.putSecret("global", `s${round}`, "v"),
      ]);
      assert.equal(opened.status, "fulfilled", String((opened as PromiseRejectedResult).reason));
      (opened as PromiseFulfilledResult<Vault>).value.close();
      assert.equal(listed.status, "fulfilled", String((listed as PromiseRejectedResult).reason));
      assert.equal(put.status, "fulfilled", String((put as PromiseRejectedResult).reason));
      for (const r of refused) {
        assert.equal(r.status, "rejected");
        assert.equal((r as PromiseRejectedResult).reason.code, "conflict");
      }
    }
    assert.equal(await text(current.getSecret("global", "token")), "t-1");
    assert.equal(existsSync(join(box.env.PALYRA_VAULT_DIR, "scopes")), false, "the stale writer left no scopes/");
    stale.close();
    current.close();
  });
});

describe("a write or an open that another process's migration overtakes", () => {
  /** A handle whose file system lets the CLI migrate the vault to Palyra's layout just before `when` is true. */
  async function overtaken(label: string, when: (op: string, path: string) => boolean) {
    const box = sandbox(label);
    await seedIdentity(box.env.PALYRA_IDENTITY_DIR);
    await box.cli(["set", "global", "token"], "t-1");
    await box.cli(["set", "global", "second"], "t-2"); // appended to the scope's log (metadata.log)
    let armed = true;
    const hook = async (op: string, path: string) => {
      if (!armed || !when(op, path)) return;
      armed = false;
      await box.cli(["migrate", "--to", "palyra"]);
    };
    const fs: FileSystem = {
      ...defaultFileSystem,
      async mkdir(p) {
        await hook("mkdir", p);
        return defaultFileSystem.mkdir(p);
      },
      async writeNew(p, d) {
        await hook("writeNew", p);
        return defaultFileSystem.writeNew(p, d);
      },
      async readFile(p, max) {
        const bytes = await defaultFileSystem.readFile(p, max);
        await hook("readFile", p);
        return bytes;
      },
      async lstat(p) {
        await hook("before lstat", p);
        const info = await defaultFileSystem.lstat(p);
        await hook("lstat", p);
        return info;
      },
    };
    const handle = () =>
      Vault.open({
        root: box.env.PALYRA_VAULT_DIR,
        identityRoot: box.env.PALYRA_IDENTITY_DIR,
        backend: "encrypted_file",
        host: { fs },
      });
    return { box, handle, fired: () => !armed };
  }
  const inScopes = (path: string) => /[\\/]scopes[\\/]s_[0-9a-f]+$/.test(path);
  const lockFile = (path: string) => /[\\/]scopes[\\/]s_[0-9a-f]+[\\/]\.metadata\.lock\./.test(path);

  /** The migrated vault is whole: it opens in Palyra's layout, holds the seeded secret, and no scoped writer's folder is left. */
  async function whole(box: ReturnType<typeof sandbox>) {
    const after = await box.open();
    assert.equal(after.layout, "palyra");
    assert.equal(await text(after.getSecret("global", "token")), "t-1");
    assert.equal(existsSync(join(box.env.PALYRA_VAULT_DIR, "scopes")), false, "no scopes/ left beside Palyra's files");
    after.close();
  }

  const writes: [string, (op: string, path: string) => boolean, (v: Vault) => Promise<unknown>][] = [
    [
      "a put while it takes the lock of its scope",
      (op, p) => op === "writeNew" && lockFile(p),
      (v) => v.putSecret("global", "k", "v"),
    ],
    [
      "a put while it makes the folder of a new scope",
      (op, p) => op === "mkdir" && inScopes(p),
      (v) => v.putSecret("principal:alice", "k", "v"),
    ],
    [
      "a delete while it takes the lock of its scope",
      (op, p) => op === "writeNew" && lockFile(p),
      (v) => v.deleteSecret("global", "token"),
    ],
  ];
  for (const [name, when, write] of writes) {
    test(`${name}: a conflict that says to open again, not an I/O error`, async () => {
      const { box, handle, fired } = await overtaken("overtaken-write", when);
      const v = await handle();
      const e = await rejectsWith(() => write(v), "conflict", /migrated to the palyra layout|layout changed/);
      assert.ok(fired(), "the migration ran during the write");
      assert.match(e.hint ?? "", /open the vault again/);
      v.close();
      await whole(box);
    });
  }

  const reads: [string, (op: string, path: string) => boolean, (v: Vault) => Promise<unknown>][] = [
    [
      "a list of every scope after it read scopes/",
      (op, p) => op === "before lstat" && inScopes(p),
      (v) => v.listSecrets(),
    ],
    [
      "a list that read a scope's log before the migration took the folder away",
      (op, p) => op === "readFile" && /[\\/]metadata\.log$/.test(p),
      (v) => v.listSecrets(),
    ],
    [
      "a list of one scope after it found the scope's folder",
      (op, p) => op === "lstat" && inScopes(p),
      (v) => v.listSecrets("global"),
    ],
  ];
  for (const [name, when, read] of reads) {
    test(`${name}: a conflict that says to open again, not not_found`, async () => {
      const { box, handle, fired } = await overtaken("overtaken-read", when);
      const v = await handle();
      const e = await rejectsWith(() => read(v), "conflict", /migrated to the palyra layout/);
      assert.ok(fired(), "the migration ran during the read");
      assert.match(e.hint ?? "", /open the vault again/);
      v.close();
      await whole(box);
    });
  }

  test("an open that finds scopes/ gone by the time it checks it opens the migrated vault", async () => {
    const { box, handle, fired } = await overtaken(
      "overtaken-open",
      (op, p) => op === "lstat" && /[\\/]scopes$/.test(p),
    );
    const v = await handle();
    assert.ok(fired(), "the migration ran during the open");
    assert.equal(v.layout, "palyra");
    assert.equal(await text(v.getSecret("global", "token")), "t-1");
    v.close();
    await whole(box);
  });
});
