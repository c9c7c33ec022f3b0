/** Configuration audit and configure, through the library. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { auditConfig } from "../src/config/audit.ts";
import { configureField } from "../src/config/configure.ts";
import { isSensitiveField } from "../src/config/sensitive.ts";
import { parsePath } from "../src/config/toml.ts";
import { validateKey } from "../src/scope.ts";
import { Vault } from "../src/vault.ts";
import { defaultFileSystem } from "../src/platform/fs.ts";
import { cliEnv, rejectsWith, ROOT, run, tempDir, testKek } from "./helpers.ts";
import { CLI_TARGETS } from "./cli_targets.ts";

const FIXTURES = join(ROOT, "tests", "fixtures");
const fixture = (name: string) => readFileSync(join(FIXTURES, name), "utf8");

async function newVault(): Promise<Vault> {
  return await Vault.open({ root: join(tempDir("cfg"), "vault"), kek: testKek(11) });
}

describe("sensitive fields", () => {
  test("the sensitive name endings, and names that only look alike", () => {
    for (
      const n of [
        "openai_api_key",
        "refresh_token",
        "client_secret",
        "DB_PASSWORD",
        "passwd",
        "gcp_credentials",
        "apikey",
      ]
    ) {
      assert.equal(isSensitiveField(n), true, n);
    }
    for (
      const n of ["max_tokens", "tokenizer", "auth_profile_id", "token_count", "secretary", "openai_api_key_vault_ref"]
    ) {
      assert.equal(isSensitiveField(n), false, n);
    }
  });

  test("field paths parse", () => {
    assert.deepEqual(parsePath("a.b[0].c"), ["a", "b", 0, "c"]);
    assert.deepEqual(parsePath('x."a.b".y'), ["x", "a.b", "y"]);
    for (const bad of ["", "a.", ".a", "a[x]", "a b", 'a."b']) assert.equal(parsePath(bad), undefined, bad);
  });
});

describe("audit", () => {
  test("every kind of finding, with line and column, and never the plaintext", async () => {
    const vault = await newVault();
    await vault.putSecret("global", "slack_bot_token", "xoxb-stored");
    const text = fixture("audit.toml");
    const report = await auditConfig(text, { path: "audit.toml", vault });
    const rows = report.findings.map((f) => [f.line, f.column, f.field, f.severity, f.code]);
    assert.deepEqual(rows, [
      [4, 1, "model_provider.openai_api_key", "blocking", "plaintext_secret"],
      [9, 1, "channels.slack.bot_token_vault_ref", "info", "resolved_vault_ref"],
      [10, 1, "channels.slack.signing_secret_vault_ref", "blocking", "missing_vault_ref"],
      [11, 1, "channels.slack.client_secret", "blocking", "plaintext_secret"],
      [15, 1, "tools[0].note", "blocking", "known_credential"],
      [16, 1, "tools[0].api_key_vault_ref", "blocking", "invalid_vault_ref"],
      [20, 13, "tools[1].headers.authorization_token", "blocking", "plaintext_secret"],
      [21, 10, "tools[1].extra[0]", "blocking", "known_credential"],
    ]);
    assert.deepEqual(report.summary, {
      total_references: 3,
      resolved_references: 1,
      blocking_findings: 7,
      warning_findings: 0,
      info_findings: 1,
    });
    assert.deepEqual(report.references.map((r) => [r.field, r.status, r.scope, r.key]), [
      ["channels.slack.bot_token_vault_ref", "resolved", "global", "slack_bot_token"],
      ["channels.slack.signing_secret_vault_ref", "missing", "ws:acme", "missing_secret"],
      ["tools[0].api_key_vault_ref", "invalid", null, null],
    ]);
    const first = report.findings[0]!;
    assert.equal(
      first.remediation,
      "palyra-secrets configure model_provider.openai_api_key global model_provider.openai_api_key --from-config",
    );
    assert.equal(
      report.findings[0]!.message,
      "model_provider.openai_api_key holds a plaintext secret (recognised as: OpenAI-style API key)",
    );
    assert.equal(report.findings[2]!.remediation, "palyra-secrets set ws:acme missing_secret");
    const json = JSON.stringify(report);
    for (const plain of ["sk-proj-AAAA", "not-a-known-shape", "ghp_ABCD", "xoxb-1234", "AKIAABCD", "xoxb-stored"]) {
      assert.ok(!json.includes(plain), `report leaks ${plain}`);
    }
  });

  test("references are unchecked warnings when the vault cannot be opened", async () => {
    const report = await auditConfig('a_token_vault_ref = "global/x"\n', {
      path: "p.toml",
      vault: () => Promise.reject(new Error("no vault here")),
    });
    assert.deepEqual(report.findings.map((f) => [f.severity, f.code]), [["warning", "unchecked_vault_ref"]]);
    assert.equal(report.summary.warning_findings, 1);
  });

  test("a file with no findings opens no vault", async () => {
    let opened = false;
    const report = await auditConfig("max_tokens = 5\nname = 'x'\n", {
      path: "p.toml",
      vault: () => {
        opened = true;
        return Promise.reject(new Error("unused"));
      },
    });
    assert.equal(report.findings.length, 0);
    assert.equal(opened, false);
  });

  test("malformed TOML is invalid_config with a 1-based line and column", async () => {
    await rejectsWith(
      () => auditConfig("a = 1\nb = = 2\n", { path: "bad.toml" }),
      "invalid_config",
      /bad\.toml.*line 2, column 5\b/,
    );
    await rejectsWith(() => auditConfig("a = 1\na = 2\n", { path: "dup.toml" }), "invalid_config", /line 2/);
    await rejectsWith(() => auditConfig("x = 1 junk\n", { path: "j.toml" }), "invalid_config", /line 1, column 7\b/);
  });
});

describe("configure", () => {
  const steps: Array<[string, string, string, string]> = [
    ["model_provider.openai_api_key", "global", "openai_api_key", "sk-proj-AAAAAAAAAAAAAAAAAAAAAAAA"],
    ["channels.slack.bot_token", "ws:acme", "slack_bot_token", "xoxb-literal-token"],
    ["channels.slack.inline.refresh_token", "global", "refresh_token", "rt-1"],
    ["channels.slack.provider.github.api_token", "pr:ops team", "github", "ghp_dotted"],
    ["tools[1].password", "global", "tools_password", "multi\nline"],
  ];

  for (const variant of ["", "crlf."]) {
    test(`moves plaintext into the vault leaving every other byte (${variant || "lf."}input)`, async () => {
      const dir = tempDir("configure");
      const path = join(dir, "palyra.toml");
      copyFileSync(join(FIXTURES, `configure.${variant}input.toml`), path);
      chmodSync(path, 0o640);
      const vault = await newVault();
      const states: string[] = [];
      for (const [field, scope, key] of steps) {
        states.push(readFileSync(path, "utf8"));
        const r = await configureField({ path, field, scope, key, fromConfig: true, backups: 3, vault });
        assert.equal(r.changed, true);
        assert.equal(r.stored, true);
        assert.equal(r.backup, `${path}.bak.1`);
      }
      assert.equal(readFileSync(path, "utf8"), fixture(`configure.${variant}expected.toml`));
      assert.equal(lstatSync(path).mode & 0o777, 0o640);
      for (const [, scope, key, value] of steps) {
        using v = await vault.getSecret(scope, key);
        // TOML normalises the newline inside a multi-line string, so CRLF input stores "\n" too.
        assert.equal(v.text(), value);
      }
      // Backups: newest first, only three kept, owner-only.
      assert.equal(readFileSync(`${path}.bak.1`, "utf8"), states[4]);
      assert.equal(readFileSync(`${path}.bak.2`, "utf8"), states[3]);
      assert.equal(readFileSync(`${path}.bak.3`, "utf8"), states[2]);
      assert.equal(existsSync(`${path}.bak.4`), false);
      assert.equal(lstatSync(`${path}.bak.1`).mode & 0o777, 0o600);
      // Running again changes nothing and stores nothing.
      const before = readFileSync(path, "utf8");
      for (const [field, scope, key] of steps) {
        const r = await configureField({ path, field, scope, key, fromConfig: true, backups: 3, vault });
        assert.deepEqual([r.changed, r.stored], [false, false]);
      }
      assert.equal(readFileSync(path, "utf8"), before);
      assert.equal(readFileSync(`${path}.bak.1`, "utf8"), states[4]);
    });
  }

  test("a value from the caller replaces the reference target, and pointing elsewhere rewrites only the ref", async () => {
    const dir = tempDir("configure");
    const path = join(dir, "palyra.toml");
    writeFileSync(path, '[a]\nx = 1\napi_key_vault_ref = "global/old" # c\n');
    const vault = await newVault();
    const r = await configureField({
      path,
      field: "a.api_key",
      scope: "global",
      key: "old",
      value: new TextEncoder().encode("v1"),
      vault,
    });
    assert.deepEqual([r.changed, r.stored], [false, true]);
    const r2 = await configureField({
      path,
      field: "a.api_key",
      scope: "ws:x",
      key: "new",
      value: new TextEncoder().encode("v2"),
      vault,
    });
    assert.deepEqual([r2.changed, r2.stored], [true, true]);
    assert.equal(readFileSync(path, "utf8"), '[a]\nx = 1\napi_key_vault_ref = "ws:x/new" # c\n');
  });

  test("refusals leave the file untouched", async () => {
    const dir = tempDir("configure");
    const path = join(dir, "palyra.toml");
    const text = 'a_token = "p"\na_token_vault_ref = "global/a"\nlist = ["x"]\nnum_token = 5\n';
    writeFileSync(path, text);
    const vault = await newVault();
    const go = (field: string) => configureField({ path, field, scope: "global", key: "k", fromConfig: true, vault });
    await rejectsWith(() => go("a_token"), "io", /both a_token and a_token_vault_ref/);
    await rejectsWith(() => go("list[0]"), "invalid_ref");
    await rejectsWith(() => go("num_token"), "io", /does not hold a string/);
    await rejectsWith(() => go("missing.field"), "not_found", /no such field/);
    await rejectsWith(() => go("bad path"), "invalid_ref");
    await rejectsWith(
      () =>
        configureField({
          path: join(dir, "nope.toml"),
          field: "a",
          scope: "global",
          key: "k",
          fromConfig: true,
          vault,
        }),
      "not_found",
    );
    assert.equal(readFileSync(path, "utf8"), text);
    // Nothing was stored.
    await rejectsWith(() => vault.getSecret("global", "k"), "not_found");
  });

  test("if storing fails, the file is untouched", async () => {
    const path = join(tempDir("configure"), "palyra.toml");
    writeFileSync(path, 'api_key = "sk-x"\n');
    const failing = { putSecret: () => Promise.reject(new Error("disk full")) };
    await assert.rejects(
      () => configureField({ path, field: "api_key", scope: "global", key: "k", fromConfig: true, vault: failing }),
      /disk full/,
    );
    assert.equal(readFileSync(path, "utf8"), 'api_key = "sk-x"\n');
    assert.equal(existsSync(`${path}.bak.1`), false);
  });

  test("if the rewrite fails, the secret stays stored and the error says so", async () => {
    const path = join(tempDir("configure"), "palyra.toml");
    writeFileSync(path, 'api_key = "sk-x"\n');
    const vault = await newVault();
    const fs = {
      ...defaultFileSystem,
      writeFileAtomic: (p: string, d: Uint8Array, m?: number) =>
        p === path
          ? Promise.reject(Object.assign(new Error("EROFS"), { code: "EROFS" }))
          : defaultFileSystem.writeFileAtomic(p, d, m),
    };
    await rejectsWith(
      () => configureField({ path, field: "api_key", scope: "global", key: "k", fromConfig: true, vault, fs }),
      "io",
      /stored as global\/k, but rewriting .* failed \(EROFS\)/,
    );
    using v = await vault.getSecret("global", "k");
    assert.equal(v.text(), "sk-x");
    assert.equal(readFileSync(path, "utf8"), 'api_key = "sk-x"\n');
  });

  test("a config reached through a symbolic link is rewritten in place and stays a link", async () => {
    const dir = tempDir("configure");
    const real = join(dir, "real.toml");
    writeFileSync(real, 'api_key = "sk-x"\n');
    symlinkSync(real, join(dir, "palyra.toml"));
    const vault = await newVault();
    await configureField({
      path: join(dir, "palyra.toml"),
      field: "api_key",
      scope: "global",
      key: "k",
      fromConfig: true,
      vault,
    });
    assert.ok(lstatSync(join(dir, "palyra.toml")).isSymbolicLink());
    assert.equal(readFileSync(real, "utf8"), 'api_key_vault_ref = "global/k"\n');
  });
});

/** Splits a remediation command line into its words, undoing `shellArg`'s single quotes. */
function words(command: string): string[] {
  const out: string[] = [];
  const re = /'((?:[^']|'\\'')*)'|(\S+)/g;
  for (const m of command.matchAll(re)) out.push(m[1] !== undefined ? m[1].replaceAll(`'\\''`, "'") : m[2]!);
  return out;
}

/** The `configure` call a remediation suggests: [field, scope, key]. */
function configureCall(remediation: string): [string, string, string] {
  const w = words(remediation);
  assert.deepEqual([w[0], w[1], w.at(-1)], ["palyra-secrets", "configure", "--from-config"], remediation);
  return [w[2]!, w[3]!, w[4]!];
}

function newConfig(text: string | Uint8Array): { dir: string; path: string } {
  const dir = tempDir("cfg7");
  const path = join(dir, "palyra.toml");
  writeFileSync(path, text);
  return { dir, path };
}

describe("suggested vault keys", () => {
  test("keys come from the whole dotted path, so following every remediation keeps two api_key secrets apart", async () => {
    const text = [
      "[model_provider.openai]",
      'api_key = "sk-proj-OPENAI0123456789abcdefXYZ"',
      "[model_provider.anthropic]",
      'api_key = "sk-ant-api03-ANTHROPIC0123456789xyz"',
      "[[webhooks]]",
      'secret = "whsec-first-one"',
      "[[webhooks]]",
      'secret = "whsec-second-one"',
      "",
    ].join("\n");
    const { path } = newConfig(text);
    const vault = await newVault();
    const report = await auditConfig(text, { path: "palyra.toml", vault });
    const calls = report.findings.map((f) => configureCall(f.remediation));
    assert.deepEqual(calls, [
      ["model_provider.openai.api_key", "global", "model_provider.openai.api_key"],
      ["model_provider.anthropic.api_key", "global", "model_provider.anthropic.api_key"],
      ["webhooks[0].secret", "global", "webhooks.0.secret"],
      ["webhooks[1].secret", "global", "webhooks.1.secret"],
    ]);
    for (const [field, scope, key] of calls) {
      await configureField({ path, field, scope, key, fromConfig: true, vault });
    }
    using openai = await vault.getSecret("global", "model_provider.openai.api_key");
    using anthropic = await vault.getSecret("global", "model_provider.anthropic.api_key");
    assert.equal(openai.text(), "sk-proj-OPENAI0123456789abcdefXYZ");
    assert.equal(anthropic.text(), "sk-ant-api03-ANTHROPIC0123456789xyz");
    assert.equal((await vault.listSecrets("global")).length, 4);
    const after = await auditConfig(readFileSync(path, "utf8"), { path: "palyra.toml", vault });
    assert.equal(after.summary.blocking_findings, 0);
    assert.equal(after.summary.resolved_references, 4);
  });

  test("fields whose reduced or truncated paths coincide still get different valid keys", async () => {
    const long = "a".repeat(130);
    const text = [
      '"A b".token = "p1"',
      'a_b.token = "p2"',
      '"a.b".token = "p3"',
      'a.b.token = "p4"',
      `x."${long}1_token" = "p5"`,
      `x."${long}2_token" = "p6"`,
      'y.Token = "p7"',
      'y.token = "p8"',
      "",
    ].join("\n");
    const report = await auditConfig(text, { path: "p.toml" });
    assert.equal(report.findings.length, 8);
    const keys = report.findings.map((f) => configureCall(f.remediation)[2]);
    assert.equal(new Set(keys).size, 8, keys.join(" "));
    for (const k of keys) assert.equal(validateKey(k), k);
    assert.ok(keys.includes("a_b.token"), keys.join(" "));
    assert.ok(keys.includes("a.b.token"), keys.join(" "));
  });
});

describe("configure never overwrites a different secret by accident", () => {
  test("a different value already in the vault is a conflict unless force, which reports replaced=true", async () => {
    const { path } = newConfig('api_key = "new-secret"\n');
    const vault = await newVault();
    await vault.putSecret("global", "k", "old-secret");
    await rejectsWith(
      () => configureField({ path, field: "api_key", scope: "global", key: "k", fromConfig: true, vault }),
      "conflict",
      /global\/k/,
    );
    assert.equal(readFileSync(path, "utf8"), 'api_key = "new-secret"\n');
    assert.equal(existsSync(`${path}.bak.1`), false);
    {
      using v = await vault.getSecret("global", "k");
      assert.equal(v.text(), "old-secret");
    }
    const forced = await configureField({
      path,
      field: "api_key",
      scope: "global",
      key: "k",
      fromConfig: true,
      force: true,
      vault,
    });
    assert.deepEqual([forced.stored, forced.changed, forced.replaced], [true, true, true]);
    using v = await vault.getSecret("global", "k");
    assert.equal(v.text(), "new-secret");
    // The same value again is no conflict and replaces nothing.
    const same = await configureField({
      path,
      field: "api_key",
      scope: "global",
      key: "k",
      value: new TextEncoder().encode("new-secret"),
      vault,
    });
    assert.deepEqual([same.stored, same.changed, same.replaced], [true, false, false]);
  });

  test("configure asks the store not to overwrite unless force, and reports what it replaced", async () => {
    const { path } = newConfig('a_token = "one"\nb_token = "two"\n');
    const seen: unknown[] = [];
    const store = {
      putSecret: (_s: unknown, _k: string, _v: unknown, options?: { overwrite?: boolean }) => {
        seen.push(options);
        return Promise.resolve({ replaced: options?.overwrite === true });
      },
    };
    const a = await configureField({
      path,
      field: "a_token",
      scope: "global",
      key: "a",
      fromConfig: true,
      vault: store,
    });
    const b = await configureField({
      path,
      field: "b_token",
      scope: "global",
      key: "b",
      fromConfig: true,
      force: true,
      vault: store,
    });
    assert.deepEqual(seen, [{ overwrite: false }, { overwrite: true }]);
    assert.deepEqual([a.replaced, b.replaced], [false, true]);
  });
});

describe("vault references in the wrong place", () => {
  test("a reference in a plain sensitive field is a misplaced_vault_ref warning; configure renames it and stores nothing", async () => {
    const text = '[p]\napi_key = "vault://global/x"\nbot_token = "ws:acme/y"\n';
    const { path } = newConfig(text);
    const vault = await newVault();
    const report = await auditConfig(text, { path: "palyra.toml", vault });
    assert.deepEqual(report.findings.map((f) => [f.field, f.severity, f.code]), [
      ["p.api_key", "warning", "misplaced_vault_ref"],
      ["p.bot_token", "warning", "misplaced_vault_ref"],
    ]);
    assert.equal(report.summary.blocking_findings, 0);
    const calls = report.findings.map((f) => configureCall(f.remediation));
    assert.deepEqual(calls, [["p.api_key", "global", "x"], ["p.bot_token", "ws:acme", "y"]]);
    // A different target than the one in the field is refused: nothing is stored, the file stays.
    await rejectsWith(
      () => configureField({ path, field: "p.api_key", scope: "global", key: "other", fromConfig: true, vault }),
      "conflict",
      /global\/x/,
    );
    assert.equal(readFileSync(path, "utf8"), text);
    for (const [field, scope, key] of calls) {
      const r = await configureField({ path, field, scope, key, fromConfig: true, vault });
      assert.deepEqual([r.stored, r.changed], [false, true]);
    }
    assert.equal(
      readFileSync(path, "utf8"),
      '[p]\napi_key_vault_ref = "global/x"\nbot_token_vault_ref = "ws:acme/y"\n',
    );
    // Nothing was stored: the references name secrets that are not there.
    await rejectsWith(() => vault.getSecret("global", "x"), "not_found");
    await rejectsWith(() => vault.getSecret("ws:acme", "y"), "not_found");
  });

  test("an invalid *_vault_ref is never echoed; a credential pasted there is named", async () => {
    const pasted = "sk-ant-api03-PASTEDPASTEDPASTED0123";
    const text = [
      "[p]",
      `api_key_vault_ref = "${pasted}"`,
      'other_vault_ref = "Global/Bad Key"',
      'third_vault_ref = "nothing-like-a-ref"',
      'db_vault_ref = "postgres://app:hunter2pass@db/app"',
      "",
    ].join("\n");
    const report = await auditConfig(text, { path: "palyra.toml", vault: await newVault() });
    assert.deepEqual(report.findings.map((f) => [f.field, f.severity, f.code]), [
      ["p.api_key_vault_ref", "blocking", "invalid_vault_ref"],
      ["p.other_vault_ref", "blocking", "invalid_vault_ref"],
      ["p.third_vault_ref", "blocking", "invalid_vault_ref"],
      ["p.db_vault_ref", "blocking", "invalid_vault_ref"],
    ]);
    assert.match(report.findings[0]!.message, /Anthropic API key/);
    assert.doesNotMatch(report.findings[1]!.message, /API key|credential/);
    assert.match(report.findings[3]!.message, /URL with a password/);
    assert.deepEqual(report.references.map((r) => [r.field, r.reference, r.status]), [
      ["p.api_key_vault_ref", "<redacted>", "invalid"],
      ["p.other_vault_ref", "<redacted>", "invalid"],
      ["p.third_vault_ref", "<redacted>", "invalid"],
      ["p.db_vault_ref", "<redacted>", "invalid"],
    ]);
    const json = JSON.stringify(report);
    for (const leak of ["PASTED", "Bad Key", "nothing-like", "hunter2"]) {
      assert.ok(!json.includes(leak), `report leaks ${leak}`);
    }
  });
});

describe("configure and the config file", () => {
  test("two configure runs on one file at once both land (the file is locked)", async () => {
    for (let round = 0; round < 4; round++) {
      const text =
        '[a]\nopenai_api_key = "sk-proj-AAAAAAAAAAAAAAAAAAAAAAAA"\n[b]\nbot_token = "xoxb-BBBBBBBBBBBBBBBBBBBB"\n';
      const { path } = newConfig(text);
      const vault = await newVault();
      const results = await Promise.all([
        configureField({ path, field: "a.openai_api_key", scope: "global", key: "a", fromConfig: true, vault }),
        configureField({ path, field: "b.bot_token", scope: "global", key: "b", fromConfig: true, vault }),
      ]);
      assert.deepEqual(results.map((r) => r.changed), [true, true]);
      assert.equal(
        readFileSync(path, "utf8"),
        '[a]\nopenai_api_key_vault_ref = "global/a"\n[b]\nbot_token_vault_ref = "global/b"\n',
        `round ${round}`,
      );
      // The lock is gone: nothing but the file and its backups is left beside it.
      assert.deepEqual(readdirSync(dirname(path)).sort(), ["palyra.toml", "palyra.toml.bak.1", "palyra.toml.bak.2"]);
    }
  });

  test("configure from several CLI processes (Deno, Bun, Node) at once converts every field", async () => {
    const dir = tempDir("cfgcli");
    const path = join(dir, "palyra.toml");
    const names = ["one", "two", "three", "four"];
    writeFileSync(path, names.map((n) => `${n}_token = "plain-${n}-value"\n`).join(""));
    const env = cliEnv(dir);
    // Create the vault and its identity once (a first write does), so the processes only race on the config file.
    const vault = await Vault.open({ root: env.PALYRA_VAULT_DIR, identityRoot: env.PALYRA_IDENTITY_DIR });
    await vault.putSecret("global", "first", "x");
    vault.close();
    const runtimes = ["deno", "bun", "node", "bun"] as const;
    const commands = await Promise.all(runtimes.map((r) => CLI_TARGETS[r]()));
    const results = await Promise.all(
      names.map((n, i) =>
        run([...commands[i]!, "configure", `${n}_token`, "global", n, "--from-config", "--path", path], {
          env,
          cwd: dir,
        })
      ),
    );
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(path, "utf8"), names.map((n) => `${n}_token_vault_ref = "global/${n}"\n`).join(""));
  });

  test("configure warns about every backup that still holds plaintext, from stdin too", async () => {
    const { path } = newConfig('a_token = "t1"\nb_token = "t2"\nc_token = "${C_TOKEN}"\n');
    const vault = await newVault();
    const a = await configureField({ path, field: "a_token", scope: "global", key: "a", fromConfig: true, vault });
    assert.deepEqual(a.plaintextBackups, [`${path}.bak.1`]);
    const b = await configureField({
      path,
      field: "b_token",
      scope: "global",
      key: "b",
      value: new TextEncoder().encode("t2-new"),
      vault,
    });
    assert.deepEqual(b.plaintextBackups, [`${path}.bak.1`, `${path}.bak.2`]);
    // The last plaintext is gone from the file, but not from the backups.
    const c = await configureField({
      path,
      field: "c_token",
      scope: "global",
      key: "c",
      value: new TextEncoder().encode("t3"),
      vault,
    });
    assert.deepEqual(c.plaintextBackups, [`${path}.bak.2`, `${path}.bak.3`]);
  });

  test("audit reports plaintext left in backups beside the file, never the value", async () => {
    const { path } = newConfig('a_token_vault_ref = "global/a"\n');
    writeFileSync(`${path}.bak.1`, '# old\n\na_token = "hunter2-plain"\n');
    writeFileSync(`${path}.bak.2`, 'a_token_vault_ref = "global/a"\n');
    writeFileSync(`${path}.bak.3`, 'note = "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"\n');
    writeFileSync(`${path}.bak.x`, 'a_token = "not-a-backup-name"\n');
    const vault = await newVault();
    await vault.putSecret("global", "a", "v");
    const report = await auditConfig(readFileSync(path, "utf8"), { path: "palyra.toml", vault, backupsOf: path });
    const backups = report.findings.filter((f) => f.code === "plaintext_in_backup");
    assert.deepEqual(backups.map((f) => [f.file, f.line, f.column, f.field, f.severity]), [
      [`${path}.bak.1`, 3, 1, "a_token", "warning"],
      [`${path}.bak.3`, 1, 1, "note", "warning"],
    ]);
    assert.match(backups[0]!.remediation, /delete/);
    assert.equal(report.summary.warning_findings, 2);
    assert.equal(report.summary.blocking_findings, 0);
    const json = JSON.stringify(report);
    for (const leak of ["hunter2", "ghp_ABCD", "not-a-backup"]) assert.ok(!json.includes(leak), `report leaks ${leak}`);
  });

  test("a UTF-8 BOM: audit and configure work, the BOM is kept and line/column are unchanged", async () => {
    const text = '\uFEFFapi_key = "sk-proj-AAAAAAAAAAAAAAAAAAAAAAAA"\n';
    const report = await auditConfig(text, { path: "palyra.toml" });
    assert.deepEqual(report.findings.map((f) => [f.line, f.column, f.code]), [[1, 1, "plaintext_secret"]]);
    const { path } = newConfig(new TextEncoder().encode(text));
    const vault = await newVault();
    const r = await configureField({ path, field: "api_key", scope: "global", key: "k", fromConfig: true, vault });
    assert.equal(r.changed, true);
    const bytes = readFileSync(path);
    assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf]);
    assert.equal(bytes.subarray(3).toString("utf8"), 'api_key_vault_ref = "global/k"\n');
    using v = await vault.getSecret("global", "k");
    assert.equal(v.text(), "sk-proj-AAAAAAAAAAAAAAAAAAAAAAAA");
  });

  test("deeply nested TOML is invalid_config, not a crash", async () => {
    const deep = [
      "a = " + "[".repeat(20000) + "]".repeat(20000) + "\n",
      "a = " + "{ b = ".repeat(20000) + "1" + " }".repeat(20000) + "\n",
    ];
    for (const text of deep) {
      await rejectsWith(() => auditConfig(text, { path: "deep.toml" }), "invalid_config", /deep\.toml/);
      const { path } = newConfig(text);
      await rejectsWith(
        () =>
          configureField({
            path,
            field: "a",
            scope: "global",
            key: "k",
            fromConfig: true,
            vault: { putSecret: () => Promise.resolve() },
          }),
        "invalid_config",
      );
    }
  });
});

describe("what audit recognises", () => {
  test("passwords inside URLs are blocking url_credentials; URLs without one, or with a placeholder, are fine", async () => {
    const text = [
      'database_url = "postgres://app:hunter2pass@db.internal:5432/app"',
      'cache = "redis://:s3cretpass@cache:6379/0"',
      'plain_url = "postgres://app@db/app"',
      'templated_url = "postgres://app:${DB_PASSWORD}@db/app"',
      'docs = "https://example.com/a:b@c"',
      "",
    ].join("\n");
    const report = await auditConfig(text, { path: "p.toml" });
    assert.deepEqual(report.findings.map((f) => [f.field, f.severity, f.code]), [
      ["database_url", "blocking", "url_credentials"],
      ["cache", "blocking", "url_credentials"],
    ]);
    const json = JSON.stringify(report);
    for (const leak of ["hunter2", "s3cret"]) assert.ok(!json.includes(leak), `report leaks ${leak}`);
  });

  test("placeholders in sensitive fields are warnings, not blocking, and are never stored", async () => {
    const placeholders = [
      "${OPENAI_API_KEY}",
      "$OPENAI_API_KEY",
      "changeme",
      "<your-password-here>",
      "xxx",
      "TODO",
      "sk-ant-xxxxxxxxxxxxxxxxxxxxxxxx",
    ];
    const text = placeholders.map((p, i) => `f${i}_password = ${JSON.stringify(p)}\n`).join("");
    const report = await auditConfig(text, { path: "p.toml" });
    assert.deepEqual(
      report.findings.map((f) => [f.field, f.severity, f.code]),
      placeholders.map((_, i) => [`f${i}_password`, "warning", "placeholder_secret"]),
    );
    assert.equal(report.summary.blocking_findings, 0);
    assert.match(
      report.findings[0]!.remediation,
      /"\$OPENAI_API_KEY" \| palyra-secrets configure f0_password global f0_password$/,
    );
    const { path } = newConfig(text);
    await rejectsWith(
      () =>
        configureField({
          path,
          field: "f2_password",
          scope: "global",
          key: "k",
          fromConfig: true,
          vault: { putSecret: () => Promise.resolve() },
        }),
      "not_found",
      /placeholder/,
    );
    assert.equal(readFileSync(path, "utf8"), text);
  });

  test("a credential inside a longer text says to remove it from the text, not to move the field", async () => {
    const text =
      'system_prompt = "You are helpful. Call the API with sk-ant-api03-REALREALREAL0123456789 when asked."\n';
    const report = await auditConfig(text, { path: "p.toml" });
    assert.equal(report.findings.length, 1);
    const f = report.findings[0]!;
    assert.deepEqual([f.field, f.severity, f.code], ["system_prompt", "blocking", "embedded_credential"]);
    assert.match(f.message, /Anthropic API key/);
    assert.match(f.remediation, /remove the Anthropic API key from the text of system_prompt/);
    assert.doesNotMatch(f.remediation, /configure/);
    assert.ok(!JSON.stringify(report).includes("REALREAL"));
  });
});
