/** Configuration audit and configure (SPEC §8), through the library. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, copyFileSync, existsSync, lstatSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { auditConfig } from "../src/config/audit.ts";
import { configureField } from "../src/config/configure.ts";
import { isSensitiveField } from "../src/config/sensitive.ts";
import { parsePath } from "../src/config/toml.ts";
import { Vault } from "../src/vault.ts";
import { nodeFileSystem } from "../src/platform/fs.ts";
import { rejectsWith, ROOT, tempDir, testKek } from "./helpers.ts";

const FIXTURES = join(ROOT, "tests", "fixtures");
const fixture = (name: string) => readFileSync(join(FIXTURES, name), "utf8");

async function newVault(): Promise<Vault> {
  return await Vault.open({ root: join(tempDir("cfg"), "vault"), kek: testKek(11) });
}

describe("sensitive fields", () => {
  test("names from SPEC §8", () => {
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
      "palyra-secrets configure model_provider.openai_api_key global openai_api_key --from-config",
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

  test("malformed TOML is an io error with line and column", async () => {
    await rejectsWith(
      () => auditConfig("a = 1\nb = = 2\n", { path: "bad.toml" }),
      "io",
      /bad\.toml.*line 2, column \d+/,
    );
    await rejectsWith(() => auditConfig("a = 1\na = 2\n", { path: "dup.toml" }), "io", /line 2/);
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
    assert.deepEqual(await vault.listSecrets(), []);
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
      ...nodeFileSystem,
      writeFileAtomic: (p: string, d: Uint8Array, m?: number) =>
        p === path
          ? Promise.reject(Object.assign(new Error("EROFS"), { code: "EROFS" }))
          : nodeFileSystem.writeFileAtomic(p, d, m),
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
