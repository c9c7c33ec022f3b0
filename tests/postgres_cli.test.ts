/**
 * The CLI on a PostgreSQL store (README, "PostgreSQL store"), as two devices
 * would use it: `--store` and `PALYRA_VAULT_STORE`, `devices`, versions,
 * check-and-set and rollback, against a real server.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { CLI, CLI_TARGETS, type CliTarget, ownTargets } from "./cli_targets.ts";
import { DENO_DOCUMENTED, denoWith, run, type RunResult, tempDir } from "./helpers.ts";
import { postgresServer } from "./postgres_server.ts";

const text = (r: RunResult) => new TextDecoder().decode(r.stdout);

/** Runs the CLI as the device whose identity folder is `identity`. */
function device(argv: () => Promise<string[]>, dir: string, identity: string, store: string) {
  return async (args: string[], input?: string, viaEnv = false) =>
    run([...(await argv()), ...args, ...(viaEnv ? [] : ["--store", store])], {
      env: {
        PALYRA_IDENTITY_DIR: join(dir, identity),
        HOME: join(dir, "home"),
        ...(viaEnv ? { PALYRA_VAULT_STORE: store } : {}),
      },
      cwd: dir,
      ...(input === undefined ? {} : { input }),
    });
}

const targets: [string, () => Promise<string[]>][] = ownTargets().map((t: CliTarget) => [t, CLI_TARGETS[t]]);
// On Deno, also with exactly the permissions the README documents, not -A: those of every command, and
// --allow-net for the store's socket.
if (ownTargets()[0] === "deno") {
  targets.push(["deno (documented permissions)", async () => {
    const pg = await postgresServer();
    return denoWith([...DENO_DOCUMENTED, `--allow-net=unix:${pg.socketDir}/.s.PGSQL.${pg.port}`], CLI);
  }]);
}

for (const [name, argv] of targets) {
  describe(`cli on a PostgreSQL store: ${name}`, () => {
    test("two devices share a vault: devices self/add/list/remove, versions, --if-version, rollback", async () => {
      const pg = await postgresServer();
      const store = await pg.database();
      const dir = tempDir("pg-cli");
      const a = device(argv, dir, "a", store);
      const b = device(argv, dir, "b", store);

      const set1 = await a(["set", "global", "openai_api_key"], "sk-one");
      assert.equal(set1.code, 0, set1.stderr);
      assert.match(text(set1), /stored=true replaced=false updated_at_unix_ms=\d+ version=1\n$/);
      // b prints its recipient without any store, then is refused until a member adds it.
      const self = await b(["devices", "self"]);
      assert.equal(self.code, 0, self.stderr);
      const recipient = text(self).trim();
      assert.match(recipient, /^age1[0-9a-z]{58}$/);
      const refused = await b(["get", "global", "openai_api_key", "--reveal"], undefined, true);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /not a member/);
      assert.ok(refused.stderr.includes(`devices add ${recipient}`), refused.stderr);
      assert.equal(refused.stdout.length, 0);

      const add = await a(["devices", "add", recipient, "--label", "laptop"]);
      assert.equal(add.code, 0, add.stderr);
      const list = await a(["devices", "list", "--json"]);
      const devices = JSON.parse(text(list)).devices as { id: string; label: string; self: boolean }[];
      assert.deepEqual(devices.map((d) => [d.label, d.self]), [["first device", true], ["laptop", false]]);
      const bId = devices[1]!.id;

      const got = await b(["get", "global", "openai_api_key", "--reveal"], undefined, true);
      assert.equal(got.code, 0, got.stderr);
      assert.equal(text(got), "sk-one");

      // Check-and-set from the command line: a stale version is a conflict and writes nothing.
      const set2 = await b(["set", "global", "openai_api_key", "--if-version", "1", "--json"], "sk-two");
      assert.equal(set2.code, 0, set2.stderr);
      assert.equal(JSON.parse(text(set2)).version, 2);
      const stale = await a(["set", "global", "openai_api_key", "--if-version", "1"], "sk-stale");
      assert.equal(stale.code, 1);
      assert.match(stale.stderr, /conflict/);
      assert.match(stale.stderr, /expected version 1, but the live version is 2/);
      const old = await a(["get", "global", "openai_api_key", "--version", "1", "--reveal"]);
      assert.equal(text(old), "sk-one", old.stderr);
      const versions = await a(["versions", "global", "openai_api_key", "--json"]);
      assert.deepEqual(JSON.parse(text(versions)).versions.map((v: { version: number }) => v.version), [2, 1]);
      const back = await a(["rollback", "global/openai_api_key", "--to", "1"]);
      assert.equal(back.code, 0, back.stderr);
      assert.match(text(back), /version=3/);
      const live = await b(["get", "global", "openai_api_key", "--reveal"]);
      assert.equal(text(live), "sk-one");
      // -V alone is still the program's version.
      const v = await a(["-V"]);
      assert.match(text(v), /^palyra-secrets \d/);

      const remove = await a(["devices", "remove", bId]);
      assert.equal(remove.code, 0, remove.stderr);
      assert.match(text(remove), /removed=true rewrapped=3/);
      assert.match(remove.stderr, /rotate those secrets/);
      await a(["set", "global", "after_removal"], "new");
      const gone = await b(["get", "global", "after_removal", "--reveal"]);
      assert.equal(gone.code, 1);
      assert.equal(gone.stdout.length, 0);

      if (name.includes("documented")) {
        // Without --allow-net for the socket, Deno is refused with a typed error naming the flag, not a crash.
        const denied = await run([...denoWith(DENO_DOCUMENTED, CLI), "list", "--store", store], {
          env: { PALYRA_IDENTITY_DIR: join(dir, "a"), HOME: join(dir, "home") },
        });
        assert.equal(denied.code, 1);
        assert.match(denied.stderr, /not permitted; hint: run Deno with --allow-net=unix:\/.*\.s\.PGSQL\.\d+/);
      }
      // Usage errors: a folder option with --store, a bad version.
      const both = await a(["list", "--vault-dir", join(dir, "v")]);
      assert.equal(both.code, 2);
      assert.match(both.stderr, /--store and --vault-dir/);
      const bad = await a(["get", "global", "openai_api_key", "--version", "0"]);
      assert.equal(bad.code, 2);
    });
  });
}
