/** Package metadata stays consistent across package.json, deno.json, jsr.json and the code. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { VERSION } from "../src/version.ts";
import * as api from "../mod.ts";
import { ROOT } from "./helpers.ts";

const json = (name: string) => JSON.parse(readFileSync(join(ROOT, name), "utf8"));

describe("package", () => {
  test("one version and one name everywhere", () => {
    const pkg = json("package.json");
    const deno = json("deno.json");
    const jsr = json("jsr.json");
    assert.equal(pkg.version, VERSION);
    assert.equal(deno.version, VERSION);
    assert.equal(jsr.version, VERSION);
    assert.equal(pkg.name, "@palyra/vault");
    assert.equal(jsr.name, "@palyra/vault");
    assert.deepEqual(deno.exports, { ".": "./mod.ts", "./cli": "./cli.ts" });
    assert.deepEqual(jsr.exports, deno.exports);
    assert.deepEqual(jsr.publish, deno.publish);
    assert.equal(pkg.bin["palyra-secrets"], "bin/palyra-secrets.mjs");
  });

  test("runtime dependencies are the chosen few, pinned alike for npm and Deno", () => {
    const pkg = json("package.json");
    const deno = json("deno.json");
    assert.deepEqual(Object.keys(pkg.dependencies).sort(), ["@noble/ciphers", "@noble/hashes", "toml-eslint-parser"]);
    for (const [name, version] of Object.entries(pkg.dependencies)) {
      const mapped = deno.imports[name] ?? deno.imports[`${name}/`];
      assert.ok(String(mapped).includes(`${name}@${version}`), `${name} in deno.json imports`);
    }
  });

  test("the public API of SPEC §11 is exported", () => {
    for (const name of ["Vault", "VaultError", "SensitiveBytes", "parseScope", "formatScope", "parseVaultRef"]) {
      assert.equal(typeof (api as Record<string, unknown>)[name], "function", name);
    }
  });
});
