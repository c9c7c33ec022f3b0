/**
 * What a short command loads (README, "Performance"): `get` and `list` start
 * in about the time of an empty program only while they leave out the modules
 * they do not use. Measured through Node's module hooks on the TypeScript
 * sources, the graph every runtime loads: each module resolved is recorded,
 * dynamic imports included.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, run, RUNTIMES, tempDir } from "./helpers.ts";

/** Modules a `get` or `list` has no use for, and what each costs at start-up when loaded. */
const NOT_FOR_READS: ReadonlyArray<[RegExp, string]> = [
  [/@noble\/ciphers\/aes\.js$/, "noble's AES builds its 64 Ki-entry tables at import (about 20 ms)"],
  [/toml-eslint-parser/, "the config tools"],
  [/age-encryption/, "export and import"],
  [
    /node_modules\/postgres\/|src\/store\/postgres\//,
    "the PostgreSQL store and its client, for a vault kept in PostgreSQL",
  ],
  [/src\/backends\/(linux_secret_service|macos_keychain|windows_dpapi)\.ts$/, "a keychain backend not in use"],
  [/^node:crypto$/, "the runtime's own AES-GCM, loaded for values of 4 KiB or more only"],
];

/** Runs the CLI from its TypeScript sources on Node with a hook that records every module resolved. */
async function modulesLoaded(env: Record<string, string>, args: string[], input?: string): Promise<string[]> {
  const dir = tempDir("modules");
  const log = join(dir, "modules.log");
  const hooks = join(dir, "hooks.mjs");
  writeFileSync(
    hooks,
    `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, r.url + "\\n");
  return r;
}
`,
  );
  const register = join(dir, "register.mjs");
  writeFileSync(
    register,
    `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
  );
  writeFileSync(log, "");
  const [node, ...tsx] = RUNTIMES.node(join(ROOT, "cli.ts"));
  const r = await run([node!, ...tsx.slice(0, -1), "--import", pathToFileURL(register).href, tsx.at(-1)!, ...args], {
    env,
    ...(input === undefined ? {} : { input }),
  });
  assert.equal(r.code, 0, r.stderr);
  return [...new Set(readFileSync(log, "utf8").split("\n").filter(Boolean))];
}

describe("a read loads only what it uses", () => {
  const dir = tempDir("startup");
  const env = {
    PALYRA_VAULT_DIR: join(dir, "vault"),
    PALYRA_IDENTITY_DIR: join(dir, "identity"),
    PALYRA_VAULT_BACKEND: "encrypted_file",
  };

  for (const args of [["get", "global", "openai_api_key"], ["list", "global"]]) {
    test(`palyra-secrets ${args[0]}`, async () => {
      await modulesLoaded(env, ["set", "global", "openai_api_key"], "sk-startup");
      const loaded = await modulesLoaded(env, args);
      // The hook sees the modules the command needs, or this test could pass by seeing nothing.
      assert.ok(loaded.some((u) => u.endsWith("/src/vault.ts")), `the hook saw the vault load:\n${loaded.join("\n")}`);
      assert.ok(loaded.some((u) => u.endsWith("/src/crypto/kdf.ts")), "and the key derivation");
      // ChaCha20-Poly1305 is needed: it seals the identity store's items (docs/FORMAT.md §4.2), and WebCrypto lacks it.
      assert.ok(loaded.some((u) => u.endsWith("/@noble/ciphers/chacha.js")), "and the identity store's cipher");
      for (const [pattern, why] of NOT_FOR_READS) {
        const hit = loaded.filter((u) => pattern.test(u));
        assert.deepEqual(hit, [], `${args[0]} loaded ${hit.join(", ")}: ${why}`);
      }
    });
  }
});
