/** Package metadata stays consistent across package.json, deno.json, jsr.json and the code. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { VERSION } from "../src/version.ts";
import * as api from "../mod.ts";
import { DENO_DOCUMENTED, ROOT, run, tempDir } from "./helpers.ts";

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
    assert.deepEqual(deno.exports, {
      ".": "./mod.ts",
      "./config": "./config.ts",
      "./backends": "./backends.ts",
      "./cli": "./cli.ts",
    });
    assert.deepEqual(jsr.exports, deno.exports);
    assert.deepEqual(jsr.publish, deno.publish);
    assert.equal(pkg.bin["palyra-secrets"], "bin/palyra-secrets.mjs");
  });

  test("runtime dependencies are the chosen few, pinned alike for npm and Deno", () => {
    const pkg = json("package.json");
    const deno = json("deno.json");
    assert.deepEqual(Object.keys(pkg.dependencies).sort(), [
      "@noble/ciphers",
      "@noble/hashes",
      "@peculiar/x509",
      "age-encryption", // export and import (the age format), by age's author, on the same @noble packages
      "postgres", // the PostgreSQL store's client (porsager), no dependencies of its own, loaded only for that store
      "reflect-metadata",
      "toml-eslint-parser",
    ]);
    for (const [name, version] of Object.entries(pkg.dependencies)) {
      const mapped = deno.imports[name] ?? deno.imports[`${name}/`];
      assert.ok(String(mapped).includes(`${name}@${version}`), `${name} in deno.json imports`);
    }
  });

  test('the public API (README, "API") is exported', () => {
    for (
      const name of [
        "Vault",
        "VaultError",
        "SensitiveBytes",
        "parseScope",
        "formatScope",
        "parseVaultRef",
        "resolveEnv",
        "exportVault",
        "importVault",
        "rekeyVault",
        "checkVault",
        "deviceRecipient",
      ]
    ) {
      assert.equal(typeof (api as Record<string, unknown>)[name], "function", name);
    }
  });
});

describe("the README's tasks after npm ci", () => {
  test("regression: deno task cli runs the CLI (not node_modules/.bin/deno as JavaScript) and prints no Info lines", async () => {
    const r = await run([join(ROOT, "node_modules/.bin/deno"), "task", "cli", "--version"], { cwd: ROOT });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(new TextDecoder().decode(r.stdout), `palyra-secrets ${VERSION}\n`);
    assert.doesNotMatch(r.stderr, /Info|Failed to resolve|SyntaxError/);
  });

  test("regression: deno task compile:bun builds a standalone binary that runs", async () => {
    const out = join(ROOT, "dist", "palyra-secrets-bun");
    rmSync(out, { force: true });
    const r = await run([join(ROOT, "node_modules/.bin/deno"), "task", "compile:bun"], { cwd: ROOT });
    try {
      assert.equal(r.code, 0, r.stderr);
      const v = await run([out, "--version"]);
      assert.equal(new TextDecoder().decode(v.stdout), `palyra-secrets ${VERSION}\n`);
    } finally {
      rmSync(out, { force: true });
    }
  });

  test("the README documents the permissions the cli task uses", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    for (const flag of DENO_DOCUMENTED) assert.ok(readme.includes(flag), `README lacks ${flag}`);
  });
});

describe("the npm package", () => {
  test("regression: npm pack then a global install runs the CLI on plain Node, without tsx", async () => {
    const dir = tempDir("pack");
    {
      const pack = await run(["npm", "pack", ROOT, "--pack-destination", dir], { cwd: dir, timeoutMs: 300_000 });
      assert.equal(pack.code, 0, pack.stderr);
      const tarball = join(dir, `palyra-vault-${VERSION}.tgz`);
      const prefix = join(dir, "prefix");
      const install = await run(
        ["npm", "install", "-g", "--prefix", prefix, tarball, "--prefer-offline", "--no-audit", "--no-fund"],
        { cwd: dir, timeoutMs: 300_000 },
      );
      assert.equal(install.code, 0, install.stderr);
      assert.equal(existsSync(join(prefix, "lib", "node_modules", "tsx")), false);
      const home = join(dir, "home");
      const env = { PALYRA_VAULT_DIR: join(home, "vault"), PALYRA_IDENTITY_DIR: join(home, "identity") };
      const bin = join(prefix, "bin", "palyra-secrets");
      const v = await run([bin, "--version"], { cwd: dir, env });
      assert.equal(new TextDecoder().decode(v.stdout), `palyra-secrets ${VERSION}\n`, v.stderr);
      assert.equal((await run([bin, "set", "global", "k"], { cwd: dir, env, input: "installed" })).code, 0);
      const got = await run([bin, "get", "global", "k", "--reveal"], { cwd: dir, env });
      assert.equal(new TextDecoder().decode(got.stdout), "installed");
    }
  });

  test("in a checkout, npx palyra-secrets runs the JavaScript build, rebuilt first when older than the sources", async () => {
    const built = join(ROOT, "dist", "node", "cli.mjs");
    const npx = async () => await run(["npx", "--no-install", "palyra-secrets", "--version"], { cwd: ROOT });
    const first = await npx();
    assert.equal(new TextDecoder().decode(first.stdout), `palyra-secrets ${VERSION}\n`, first.stderr);
    assert.ok(existsSync(built), "npm ci (prepare) or the first start built dist/node/cli.mjs");
    // A build older than the sources (someone edited src/) is rebuilt before it runs.
    utimesSync(built, new Date(0), new Date(0));
    const again = await npx();
    assert.equal(new TextDecoder().decode(again.stdout), `palyra-secrets ${VERSION}\n`, again.stderr);
    assert.ok(statSync(built).mtimeMs > 0, "rebuilt");
    // The CLI the build runs is the bundle, with no TypeScript loader in it.
    assert.doesNotMatch(readFileSync(join(ROOT, "bin", "palyra-secrets.mjs"), "utf8"), /tsx/);
    assert.doesNotMatch(readFileSync(built, "utf8"), /from "tsx|register\(\)/);
  });
});
