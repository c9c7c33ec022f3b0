/**
 * `audit --orphans`: the vault's secrets that no `*_vault_ref` of the config names, from the
 * library (`orphanSecrets`) and from the CLI on its four targets.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { auditConfig, orphanSecrets } from "../src/config/audit.ts";
import { CLI_TARGETS, ownTargets } from "./cli_targets.ts";
import { cliEnv, run, seedIdentity, tempDir } from "./helpers.ts";

const CONFIG = `[model_provider]
openai_api_key_vault_ref = "global/openai_api_key"

[channels.slack]
bot_token_vault_ref = "ws:acme/slack_bot_token"
signing_secret_vault_ref = "not a reference"
`;

describe("audit --orphans", () => {
  test("orphanSecrets: every stored secret no reference names, sorted; named ones and invalid references aside", async () => {
    const stored = [
      { scope: "ws:acme", key: "slack_bot_token" },
      { scope: "ws:acme", key: "old_token" },
      { scope: "global", key: "openai_api_key" },
      { scope: "global", key: "unused" },
      { scope: "pr:alice", key: "openai_api_key" },
    ];
    const report = await auditConfig(CONFIG, {
      path: "palyra.toml",
      vault: { listSecrets: (scope) => Promise.resolve(stored.filter((s) => s.scope === scope)) },
    });
    assert.deepEqual(orphanSecrets(report, stored), [
      { scope: "global", key: "unused" },
      { scope: "pr:alice", key: "openai_api_key" },
      { scope: "ws:acme", key: "old_token" },
    ]);
    assert.deepEqual(orphanSecrets({ references: [] }, []), []);
  });

  for (const target of ownTargets()) {
    test(`the CLI lists orphans in text and JSON, and only when asked (${target})`, async () => {
      const dir = tempDir("orphans");
      const env = cliEnv(dir);
      await seedIdentity(env.PALYRA_IDENTITY_DIR);
      const cli = async (...args: string[]) =>
        await run([...(await CLI_TARGETS[target]()), ...args], { env, cwd: dir, input: "v" });
      for (const [scope, key] of [["global", "openai_api_key"], ["global", "unused"], ["ws:acme", "old_token"]]) {
        assert.equal((await cli("set", scope!, key!)).code, 0);
      }
      writeFileSync(join(dir, "palyra.toml"), CONFIG);
      const text = new TextDecoder().decode((await cli("audit", "--orphans")).stdout);
      assert.match(text, /^secrets\.audit orphan_scope=global orphan_key=unused$/m);
      assert.match(text, /^secrets\.audit orphan_scope=ws:acme orphan_key=old_token$/m);
      assert.match(text, /^secrets\.audit orphans=2$/m);
      assert.doesNotMatch(text, /orphan_key=openai_api_key/);
      const json = JSON.parse(new TextDecoder().decode((await cli("audit", "--orphans", "--json")).stdout));
      assert.deepEqual(json.orphans, [{ scope: "global", key: "unused" }, { scope: "ws:acme", key: "old_token" }]);
      const plain = JSON.parse(new TextDecoder().decode((await cli("audit", "--json")).stdout));
      assert.equal("orphans" in plain, false);
    });
  }
});
