/**
 * The `palyra-secrets` CLI (README, "The CLI: `palyra-secrets`") on Deno, Bun, Node and as a
 * standalone binary built offline with `bun build --compile`.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { cliEnv, ROOT, run, type RunResult, seedIdentity, tempDir } from "./helpers.ts";
import { CLI_TARGETS, type CliTarget, ownTargets } from "./cli_targets.ts";

const TARGETS = CLI_TARGETS;
type Target = CliTarget;

/**
 * A fresh vault, home and working folder for one test, and an identity folder
 * that holds a copy of a device identity unless `identity` is false.
 */
async function sandbox({ identity = true } = {}) {
  const dir = tempDir("cli");
  const env = cliEnv(dir);
  if (identity) await seedIdentity(env.PALYRA_IDENTITY_DIR);
  return { dir, env };
}

const text = (r: RunResult) => new TextDecoder().decode(r.stdout);

/** Names, sizes and modes of everything under `dir` (the tool's own caches in home/ aside). */
function listing(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String).filter((n) => !n.startsWith("home")).sort().map((n) => {
    const s = lstatSync(join(dir, n));
    return `${n} ${s.isDirectory() ? "dir" : s.size} ${(s.mode & 0o777).toString(8)}`;
  });
}

function cliRunner(target: Target, box: Awaited<ReturnType<typeof sandbox>>) {
  return async (args: string[], input?: Uint8Array | string) =>
    run([...(await TARGETS[target]()), ...args], {
      env: box.env,
      cwd: box.dir,
      ...(input === undefined ? {} : { input }),
    });
}

for (const target of ownTargets()) {
  describe(`cli on ${target}`, () => {
    test("set then get --reveal returns the exact bytes (newline, NUL, invalid UTF-8)", async () => {
      const box = await sandbox();
      const cli = cliRunner(target, box);
      const value = new Uint8Array([0x73, 0x6b, 0x00, 0xff, 0xc3, 0x28, 0x0a]);
      const set = await cli(["set", "ws:acme", "raw_token"], value);
      assert.equal(set.code, 0, set.stderr);
      assert.match(
        text(set),
        /^secrets\.set scope=ws:acme key=raw_token stored=true replaced=false updated_at_unix_ms=\d+\n$/,
      );
      const got = await cli(["get", "ws:acme", "raw_token", "--reveal"]);
      assert.equal(got.code, 0, got.stderr);
      assert.deepEqual(got.stdout, value);
      assert.match(got.stderr, /^warning: /);
      const json = await cli(["get", "ws:acme", "raw_token", "--reveal", "--json"]);
      assert.deepEqual(JSON.parse(text(json)), {
        scope: "ws:acme",
        key: "raw_token",
        reveal: true,
        value_b64: "c2sA/8MoCg==", // standard padded base64: `base64 -d` reads it
      });
    });

    test("--layout palyra makes a vault in the daemon's layout; ws: in it names migrate; migrate converts it", async () => {
      const box = await sandbox();
      const cli = cliRunner(target, box);
      const vaultDir = box.env.PALYRA_VAULT_DIR;
      const set = await cli(["set", "--layout", "palyra", "channel:slack:T01:U02", "bot_token"], "xoxb-1");
      assert.equal(set.code, 0, set.stderr);
      assert.ok(existsSync(join(vaultDir, "metadata.json")) && !existsSync(join(vaultDir, "scopes")));
      const ws = await cli(["set", "ws:acme", "token"], "t");
      assert.equal(ws.code, 2, "a scope this vault cannot hold is a usage error");
      assert.match(ws.stderr, /^error: invalid_scope: .*hint: .*palyra-secrets migrate --to scoped/);
      const bad = await cli(["migrate", "--to", "sideways"]);
      assert.equal(bad.code, 2);
      const migrated = await cli(["migrate", "--to", "scoped"]);
      assert.equal(migrated.code, 0, migrated.stderr);
      assert.equal(
        text(migrated),
        "secrets.migrate from=palyra to=scoped secrets=1 already_done=false resumed=false\n",
      );
      assert.equal((await cli(["set", "ws:acme", "token"], "t")).code, 0);
      const got = await cli(["get", "channel:slack:T01:U02", "bot_token", "--reveal"]);
      assert.equal(new TextDecoder().decode(got.stdout), "xoxb-1");
      const again = await cli(["migrate", "--to", "scoped", "--json"]);
      assert.deepEqual(JSON.parse(text(again)), {
        from: "palyra",
        to: "scoped",
        secrets: 2,
        already_done: true,
        resumed: false,
      });
    });

    test("get without --reveal shows neither the value nor its length", async () => {
      const box = await sandbox();
      const cli = cliRunner(target, box);
      await cli(["set", "global", "openai_api_key"], "sk-0123456789abcdef");
      const got = await cli(["get", "GLOBAL", "openai_api_key"]);
      assert.equal(got.code, 0, got.stderr);
      assert.equal(text(got), "secrets.get scope=global key=openai_api_key value=<redacted> reveal=false\n");
      assert.equal(got.stderr, "");
      const json = await cli(["get", "global", "openai_api_key", "--json"]);
      assert.deepEqual(JSON.parse(text(json)), {
        scope: "global",
        key: "openai_api_key",
        value: "<redacted>",
        reveal: false,
      });
    });

    test("a missing key exits 1 with not_found; empty stdin stores nothing", async () => {
      const box = await sandbox();
      const cli = cliRunner(target, box);
      const missing = await cli(["get", "global", "nothing"]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^error: not_found: .*"nothing".*; hint: check the vault folder/);
      await cli(["set", "global", "other"], "x");
      const missingKey = await cli(["get", "global", "nothing"]);
      assert.equal(missingKey.code, 1);
      assert.match(
        missingKey.stderr,
        /^error: not_found: .*"nothing".*; hint: store it with: palyra-secrets set global nothing\n$/,
      );
      const empty = await cli(["set", "global", "empty"], "");
      assert.notEqual(empty.code, 0);
      assert.match(empty.stderr, /^error: usage: the value is empty; nothing was stored/);
      const list = await cli(["list"]);
      assert.equal(text(list).split("\n").at(-2), "secrets.list count=1", "only the other key");
      // Where nothing was ever stored there is no vault: list says so instead of inventing an empty one.
      const nowhere = await cli(["--vault-dir", join(box.dir, "nowhere"), "list"]);
      assert.equal(nowhere.code, 1);
      assert.match(nowhere.stderr, /^error: not_found: list secrets failed: there is no vault at /);
    });

    test("list, delete and their --json forms", async () => {
      const box = await sandbox();
      const cli = cliRunner(target, box);
      await cli(["set", "ws:b", "k2"], "v");
      await cli(["set", "ws:b", "k1"], "v");
      await cli(["set", "global", "g"], "v");
      const list = await cli(["list"]);
      assert.deepEqual(
        text(list).split("\n").map((l) => l.replace(/ created_at_unix_ms=\d+ updated_at_unix_ms=\d+/, "")),
        [
          "secrets.list scope=global key=g",
          "secrets.list scope=ws:b key=k1",
          "secrets.list scope=ws:b key=k2",
          "secrets.list count=3",
          "",
        ],
      );
      const scoped = JSON.parse(text(await cli(["list", "ws:b", "--json"])));
      assert.deepEqual(scoped.secrets.map((s: { key: string }) => s.key), ["k1", "k2"]);
      assert.deepEqual(Object.keys(scoped.secrets[0]).sort(), [
        "created_at_unix_ms",
        "key",
        "scope",
        "updated_at_unix_ms",
      ]);
      assert.equal(text(await cli(["delete", "ws:b", "k1"])), "secrets.delete scope=ws:b key=k1 deleted=true\n");
      assert.equal(text(await cli(["delete", "ws:b", "k1"])), "secrets.delete scope=ws:b key=k1 deleted=false\n");
      assert.deepEqual(JSON.parse(text(await cli(["delete", "ws:b", "k2", "--json"]))), {
        scope: "ws:b",
        key: "k2",
        deleted: true,
      });
    });

    test("the secret never appears in any output except get --reveal", async () => {
      const box = await sandbox();
      const cli = cliRunner(target, box);
      const canary = "CANARY" + crypto.randomUUID().replaceAll("-", "");
      const outputs: RunResult[] = [];
      outputs.push(await cli(["set", "ws:team one", "api_token"], canary));
      outputs.push(await cli(["set", "ws:team one", "Bad Key"], canary));
      outputs.push(await cli(["get", "ws:team one", "api_token"]));
      outputs.push(await cli(["get", "ws:team one", "api_token", "--json"]));
      outputs.push(await cli(["get", "ws:team one", "wrong_key"]));
      outputs.push(await cli(["list"]));
      outputs.push(await cli(["list", "--json"]));
      writeFileSync(join(box.dir, "palyra.toml"), `[provider]\napi_key = "${canary}"\nnote = "sk-${canary}"\n`);
      outputs.push(await cli(["audit"]));
      outputs.push(await cli(["audit", "--json", "--strict"]));
      outputs.push(await cli(["configure", "provider.api_key", "global", "api_key", "--from-config"]));
      outputs.push(await cli(["configure", "provider.api_key", "global", "api_key", "--from-config", "--json"]));
      outputs.push(await cli(["audit", "--json"]));
      outputs.push(await cli(["delete", "ws:team one", "api_token", "--json"]));
      for (const r of outputs) {
        assert.ok(!text(r).includes(canary), `stdout leaked: ${text(r)}`);
        assert.ok(!r.stderr.includes(canary), `stderr leaked: ${r.stderr}`);
      }
      const revealed = await cli(["get", "global", "api_key", "--reveal"]);
      assert.equal(text(revealed), canary);
    });

    test("audit reports findings with line and column; --strict exits 3 until clean", async () => {
      const box = await sandbox();
      const cli = cliRunner(target, box);
      copyFileSync(join(ROOT, "tests/fixtures/audit.toml"), join(box.dir, "palyra.toml"));
      await cli(["set", "global", "slack_bot_token"], "xoxb-stored");
      const report = await cli(["audit", "--json"]);
      assert.equal(report.code, 0, report.stderr);
      const doc = JSON.parse(text(report));
      assert.equal(doc.path, "palyra.toml");
      assert.deepEqual(doc.summary, {
        total_references: 3,
        resolved_references: 1,
        blocking_findings: 7,
        warning_findings: 0,
        info_findings: 1,
      });
      assert.deepEqual(Object.keys(doc.findings[0]), [
        "file",
        "line",
        "column",
        "field",
        "severity",
        "code",
        "message",
        "remediation",
      ]);
      assert.deepEqual([doc.findings[0].line, doc.findings[0].column], [4, 1]);
      assert.equal((await cli(["audit", "--strict"])).code, 3);
      const lines = text(await cli(["audit"])).trim().split("\n");
      assert.equal(lines.length, 9);
      assert.match(
        lines[0]!,
        /^secrets\.audit finding=plaintext_secret severity=blocking file=palyra\.toml line=4 column=1 /,
      );
      assert.match(
        lines[8]!,
        /^secrets\.audit path=palyra\.toml total_references=3 resolved_references=1 blocking_findings=7/,
      );
      // A clean file passes --strict.
      writeFileSync(join(box.dir, "clean.toml"), '# ok\nbot_token_vault_ref = "global/slack_bot_token"\n');
      const clean = await cli(["audit", "--path", "clean.toml", "--strict"]);
      assert.equal(clean.code, 0, clean.stderr);
      const broken = await cli(["audit", "--path", "clean.toml.missing"]);
      assert.equal(broken.code, 1);
      writeFileSync(join(box.dir, "bad.toml"), "a = [1,\n");
      const bad = await cli(["audit", "--path", "bad.toml"]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /^error: invalid_config: parse config "bad\.toml" failed at line 2, column 1\b/);
    });

    test("configure: audit → configure → audit --strict clean, comments intact", async () => {
      const box = await sandbox();
      const cli = cliRunner(target, box);
      const path = join(box.dir, "palyra.toml");
      copyFileSync(join(ROOT, "tests/fixtures/configure.input.toml"), path);
      const steps: Array<[string, string, string]> = [
        ["model_provider.openai_api_key", "global", "openai_api_key"],
        ["channels.slack.bot_token", "ws:acme", "slack_bot_token"],
        ["channels.slack.inline.refresh_token", "global", "refresh_token"],
        ["channels.slack.provider.github.api_token", "pr:ops team", "github"],
        ["tools[1].password", "global", "tools_password"],
      ];
      assert.equal((await cli(["audit", "--strict"])).code, 3);
      for (const [i, [field, scope, key]] of steps.entries()) {
        const r = await cli(["configure", field, scope, key, "--from-config"]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(
          text(r),
          /^secrets\.configure path=palyra\.toml field=\S+ ref=.* stored=true replaced=false changed=true backup=/,
        );
        // Every backup so far still holds plaintext, and the warning names each one.
        assert.match(r.stderr, /^warning: plaintext secrets remain in .*palyra\.toml\.bak\.1\b/);
        assert.ok(r.stderr.includes(`palyra.toml.bak.${i + 1}`), r.stderr);
      }
      assert.equal(
        readFileSync(path, "utf8"),
        readFileSync(join(ROOT, "tests/fixtures/configure.expected.toml"), "utf8"),
      );
      const strict = await cli(["audit", "--strict"]);
      assert.equal(strict.code, 0, text(strict));
      const again = await cli(["configure", steps[0]![0], "global", "openai_api_key", "--from-config"]);
      assert.match(text(again), /stored=false replaced=false changed=false/);
      // A different value on stdin for a field already converted: refused without --force.
      const refused = await cli(["configure", steps[0]![0], "global", "openai_api_key"], "sk-new");
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^error: conflict: .*global\/openai_api_key.*; hint: .*--force/);
      // With --force: stored, replaced, file unchanged.
      const fromStdin = await cli(
        ["configure", steps[0]![0], "global", "openai_api_key", "--force", "--json"],
        "sk-new",
      );
      assert.deepEqual(
        (({ stored, replaced, changed }) => ({ stored, replaced, changed }))(JSON.parse(text(fromStdin))),
        { stored: true, replaced: true, changed: false },
      );
    });

    test("regression: set refuses to replace a different value without --force, and says when it replaced", async () => {
      const box = await sandbox();
      const cli = cliRunner(target, box);
      assert.match(text(await cli(["set", "global", "k"], "FIRST-canary")), / stored=true replaced=false /);
      assert.match(text(await cli(["set", "global", "k"], "FIRST-canary")), / stored=true replaced=false /);
      const refused = await cli(["set", "global", "k"], "SECOND-canary");
      assert.equal(refused.code, 1);
      assert.match(
        refused.stderr,
        /^error: conflict: set global\/k failed: it already holds a different value; hint: .*--force/,
      );
      assert.doesNotMatch(refused.stderr + text(refused), /canary/);
      assert.equal(text(await cli(["get", "global", "k", "--reveal"])), "FIRST-canary");
      const forced = await cli(["set", "global", "k", "--force", "--json"], "SECOND-canary");
      assert.equal(JSON.parse(text(forced)).replaced, true);
      assert.equal(text(await cli(["get", "global", "k", "--reveal"])), "SECOND-canary");
    });

    test("regression: stdin is read no further than the limit (--max-bytes names it), and nothing is stored", async () => {
      const box = await sandbox();
      const cli = cliRunner(target, box);
      const big = new Uint8Array(8 * 1024 * 1024).fill(0x41);
      const r = await cli(["set", "global", "big"], big);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /^error: value_too_large: .*more than 65536 bytes; nothing was stored; hint: .*--max-bytes/,
      );
      const small = await cli(["set", "global", "big", "--max-bytes", "10"], "0123456789A");
      assert.match(small.stderr, /^error: value_too_large: .*more than 10 bytes/);
      assert.equal((await cli(["set", "global", "ok", "--max-bytes", "100000"], new Uint8Array(70_000))).code, 0);
      assert.equal((await cli(["get", "global", "ok"])).code, 1, "a 70 000-byte value needs the larger limit to read");
      assert.equal((await cli(["get", "global", "ok", "--max-bytes", "100000"])).code, 0);
      assert.equal((await cli(["get", "global", "big"])).code, 1);
    });

    test("regression: a mistyped --vault-dir is reported, not created, by read-only commands", async () => {
      const box = await sandbox();
      const cli = cliRunner(target, box);
      await cli(["set", "global", "k"], "v");
      const typo = join(box.dir, "vualt");
      for (const args of [["list"], ["get", "global", "k"], ["delete", "global", "k"]]) {
        const r = await cli(["--vault-dir", typo, ...args]);
        assert.equal(r.code, 1, args.join(" "));
        assert.match(r.stderr, new RegExp(`^error: not_found: .*there is no vault at ".*vualt"`));
      }
      assert.equal(existsSync(typo), false);
    });

    test("regression: a forged index and hostile names never put raw control characters on the terminal", async () => {
      const box = await sandbox();
      const cli = cliRunner(target, box);
      await cli(["set", "global", "k"], "v");
      const scope = "ws:\x1b]0;pwned\x07\x1b[2K\rsecrets.list";
      const { scopeDirName } = await import("../src/crypto/ids.ts");
      const dir = join(box.env.PALYRA_VAULT_DIR, "scopes", scopeDirName(scope));
      mkdirSync(dir, { mode: 0o700 });
      const entry = { key: "\x1b[31mKEY\x1b[0m", object_id: "obj_" + "0".repeat(64) };
      writeFileSync(
        join(dir, "metadata.json"),
        JSON.stringify({
          version: 1,
          scope,
          entries: [{ ...entry, created_at_unix_ms: 1, updated_at_unix_ms: 1, value_bytes: 1 }],
        }),
      );
      for (
        const args of [["list"], ["list", "--json"], ["get", "ws:a\u009b31mX\u202e", "k"], ["get", "ws:a\x1b[2Jb", "k"]]
      ) {
        const r = await cli(args);
        const all = text(r) + r.stderr;
        assert.doesNotMatch(
          all,
          // deno-lint-ignore no-control-regex -- the very characters that must never reach a terminal
          /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/,
          `${args.join(" ")}: ${JSON.stringify(all)}`,
        );
        assert.notEqual(r.code, 0);
      }
      const list = await cli(["list"]);
      assert.match(list.stderr, /^error: corrupt: /);
    });

    test("regression: doctor flags an identity file others may read, leftovers of a crash and dead locks; changes nothing", async () => {
      const box = await sandbox();
      const cli = cliRunner(target, box);
      await cli(["set", "ws:a", "k"], "v");
      const { scopeDirName } = await import("../src/crypto/ids.ts");
      // The CA item of the identity store: its file name is the hex of "identity/ca/state.json".
      const idFile = join(box.env.PALYRA_IDENTITY_DIR, Buffer.from("identity/ca/state.json").toString("hex"));
      chmodSync(idFile, 0o644);
      const scopeDir = join(box.env.PALYRA_VAULT_DIR, "scopes", scopeDirName("ws:a"));
      writeFileSync(join(scopeDir, ".metadata.json.0123456789abcdef.tmp"), "half");
      mkdirSync(join(scopeDir, ".metadata.lock"));
      writeFileSync(
        join(scopeDir, ".metadata.lock", "00000000deadbeef"),
        "pid=2147483646 host=elsewhere ts_ms=1 nonce=00000000deadbeef\n",
      );
      const before = listing(box.dir);
      const r = await cli(["doctor", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(text(r));
      assert.deepEqual(report.problems.map((p: { code: string }) => p.code).sort(), [
        "identity_file_mode",
        "leftover_temporary",
      ]);
      assert.equal(report.locks.length, 1);
      assert.match(report.locks[0].holder, /pid 2147483646 on elsewhere/);
      const lines = text(await cli(["doctor"]));
      assert.match(
        lines,
        /secrets\.doctor problem=identity_file_mode path=\S+6964656e746974792f63612f73746174652e6a736f6e message="the identity file has mode 644, not 600"/,
      );
      assert.match(lines, /secrets\.doctor problems=2\n$/);
      assert.deepEqual(listing(box.dir), before, "doctor changed nothing");
    });

    test("usage errors exit 2 with a one-line hint", async () => {
      const box = await sandbox({ identity: false });
      const cli = cliRunner(target, box);
      const cases: string[][] = [
        ["frobnicate"],
        ["--backend", "bogus", "list"],
        ["get", "global", "k", "--max-bytes", "lots"],
        ["set"],
        ["set", "global"],
        ["get", "global"],
        ["delete"],
        ["configure", "a.b", "global"],
        ["list", "a", "b"],
        ["audit", "extra"],
        ["get", "global", "k", "--bogus"],
        ["set", "global", "k", "--value", "x"],
        ["list", "--reveal"],
        ["get", "team:x", "k"],
        ["get", "WS:x", "k"],
        ["set", "global", "Bad.Key"],
        ["delete", "ws:", "k"],
        ["configure", "a.b", "global", "k", "--backups", "many"],
      ];
      for (const args of cases) {
        const r = await cli(args, "x");
        assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, /^error: (usage|invalid_scope|invalid_key): .*; hint: .+\n$/, args.join(" "));
        assert.equal(r.stderr.split("\n").length, 2, "one line");
      }
      // None of them created a vault or an identity.
      assert.deepEqual(readdirSync(box.dir).filter((n) => n !== "home"), []);
      // A bare command shows the help.
      const bare = await cli([]);
      assert.equal(bare.code, 0, bare.stderr);
      assert.match(text(bare), /^palyra-secrets .*\n\nUsage: palyra-secrets <command>/);
    });

    test("--help on the program and every command; --version", async () => {
      const box = await sandbox();
      const cli = cliRunner(target, box);
      const top = await cli(["--help"]);
      assert.equal(top.code, 0);
      assert.match(text(top), /global \| ws:<id> \| pr:<id>/);
      assert.match(text(top), /Examples:\n( {2}.*\n)* {2}.*palyra-secrets set global openai_api_key/);
      for (const c of ["set", "get", "list", "delete", "audit", "configure", "doctor"]) {
        assert.match(text(top), new RegExp(`\\n  ${c} `));
      }
      for (const c of ["set", "get", "list", "delete", "audit", "configure", "doctor"]) {
        const h = await cli([c, "--help"]);
        assert.equal(h.code, 0, h.stderr);
        assert.match(text(h), new RegExp(`^Usage: palyra-secrets ${c}`));
        assert.match(text(h), /global \| ws:<id> \| pr:<id>/);
        assert.match(text(h), /Example:\n {2}.*palyra-secrets /);
      }
      const v = await cli(["--version"]);
      assert.match(text(v), /^palyra-secrets \d+\.\d+\.\d+\n$/);
    });

    test("global options choose the folders", async () => {
      const box = await sandbox();
      const cli = cliRunner(target, box);
      const vaultDir = join(box.dir, "elsewhere", "vault");
      const idDir = join(box.dir, "elsewhere", "identity");
      const set = await cli(["--vault-dir", vaultDir, "set", "global", "k", "--identity-dir", idDir], "v");
      assert.equal(set.code, 0, set.stderr);
      assert.equal(readFileSync(join(vaultDir, "backend.kind"), "utf8"), "encrypted_file");
      assert.equal(
        text(await cli(["--vault-dir", vaultDir, "--identity-dir", idDir, "list"])).split("\n").at(-2),
        "secrets.list count=1",
      );
      // The default folders were not touched (no vault there: list says so).
      assert.equal((await cli(["list"])).code, 1);
      // An unknown backend is a usage error; a known one that does not match the vault is an error.
      const bad = await cli(["--backend", "floppy", "list"]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /^error: usage: --backend must be one of auto, encrypted_file, .*"floppy"/);
      const other = await cli([
        "--vault-dir",
        vaultDir,
        "--identity-dir",
        idDir,
        "--backend",
        "macos_keychain",
        "list",
      ]);
      assert.equal(other.code, 1);
      assert.match(
        other.stderr,
        /^error: backend_unavailable: .*created with the "encrypted_file" backend, not "macos_keychain"/,
      );
    });
  });
}
