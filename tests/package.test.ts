/** Package metadata stays consistent across package.json, deno.json, jsr.json and the code. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
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

  // Bun has no `jsr:` specifiers (oven-sh/bun#11911): Bun 1.4.5 reads `bunx jsr:@palyra/vault/cli` as a git address
  // (`git clone https://@jsr/@palyra/vault/cli`) and fails, and JSR's npm layer gives a package no `bin` to run.
  test("regression: the README gives Bun no jsr: specifier to run", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    assert.deepEqual(readme.match(/\bbunx? (?:x )?jsr:\S*/g) ?? [], []);
  });

  test("the README documents the permissions the cli task uses", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    for (const flag of DENO_DOCUMENTED) assert.ok(readme.includes(flag), `README lacks ${flag}`);
  });
});

describe("the npm package", () => {
  let tarball: Promise<string> | undefined;
  // A chunk an earlier build left in dist/node (one whose sources have changed since), which the package must not carry.
  const stale = `stale-${process.pid}-EARLIER.mjs`;
  /**
   * The package as `npm pack` makes it (its `prepack` builds the JavaScript and the declarations), made once, from a
   * checkout holding a chunk of an earlier build.
   */
  const packed = () =>
    tarball ??= (async () => {
      const dir = tempDir("pack");
      const planted = join(ROOT, "dist", "node", "chunks", stale);
      writeFileSync(planted, "export const earlier = 1;\n");
      try {
        const pack = await run(["npm", "pack", ROOT, "--pack-destination", dir], { cwd: dir, timeoutMs: 300_000 });
        assert.equal(pack.code, 0, pack.stderr);
      } finally {
        rmSync(planted, { force: true });
      }
      return join(dir, `palyra-vault-${VERSION}.tgz`);
    })();

  test("regression: the package carries the chunks of its own build only", async () => {
    // Each build names its chunks by their content, and a rebuild used to leave the earlier ones beside the new.
    const list = await run(["tar", "tzf", await packed()]);
    assert.equal(list.code, 0, list.stderr);
    const chunks = new TextDecoder().decode(list.stdout).split("\n").filter((p) => p.includes("dist/node/chunks/"));
    assert.ok(chunks.length > 0, "the package has the build's chunks");
    assert.deepEqual(chunks.filter((p) => p.endsWith(stale)), []);
  });

  test("regression: npm pack then a global install runs the CLI on plain Node, without tsx", async () => {
    const dir = tempDir("pack");
    {
      const tarball = await packed();
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

  test("regression: a TypeScript program on Node is checked against the package's declarations, and runs", async () => {
    // Before dist/types/, tsc refused every import of the package: "Could not find a declaration file for module
    // '@palyra/vault'" (TS7016). The program is checked without skipLibCheck, so the declarations themselves must
    // compile under a strict user's settings; the wrong calls prove the types are the library's, not `any`.
    const dir = tempDir("types");
    const types = json("package.json").devDependencies["@types/node"];
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    const install = await run(
      ["npm", "install", await packed(), `@types/node@${types}`, "--prefer-offline", "--no-audit", "--no-fund"],
      { cwd: dir, timeoutMs: 300_000 },
    );
    assert.equal(install.code, 0, install.stderr);
    const options = {
      strict: true,
      target: "es2022",
      lib: ["es2022", "esnext.disposable"],
      module: "nodenext",
      moduleResolution: "nodenext",
      types: ["node"],
      outDir: "out",
    };
    writeFileSync(
      join(dir, "app.ts"),
      [
        'import { Vault, VaultError, type SecretMetadata } from "@palyra/vault";',
        'import { isSensitiveField } from "@palyra/vault/config";',
        'import { MemoryBackend } from "@palyra/vault/backends";',
        'import type { main } from "@palyra/vault/cli";',
        "const run: typeof main | undefined = undefined;",
        "const backend: MemoryBackend = new MemoryBackend();",
        "const vault = await Vault.open();",
        'await vault.putSecret("global", "k", "typed");',
        'using value = await vault.getSecret("global", "k");',
        'const list: SecretMetadata[] = await vault.listSecrets("global");',
        'let code = "";',
        'try { await vault.getSecret("global", "absent"); } catch (e) { if (e instanceof VaultError) code = e.code; }',
        "await vault.close();",
        'process.stdout.write([value.text(), list.length, code, isSensitiveField("api_key"), run, typeof backend].join(" "));',
        "",
      ].join("\n"),
    );
    writeFileSync(
      join(dir, "wrong.ts"),
      [
        'import { Vault } from "@palyra/vault";',
        'import { isSensitiveField } from "@palyra/vault/config";',
        "const vault = await Vault.open();",
        'await vault.putSecret("global", "k", 42);',
        "isSensitiveField(7);",
        "",
      ].join("\n"),
    );
    const tsc = join(ROOT, "node_modules", ".bin", "tsc");
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: options, files: ["app.ts"] }));
    const good = await run([tsc, "-p", "tsconfig.json"], { cwd: dir });
    assert.equal(good.code, 0, new TextDecoder().decode(good.stdout) + good.stderr);
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: options, files: ["wrong.ts"] }));
    const wrong = await run([tsc, "-p", "tsconfig.json", "--noEmit"], { cwd: dir });
    const errors = new TextDecoder().decode(wrong.stdout).split("\n").filter((l) => l.includes("error TS"));
    assert.deepEqual(errors.map((l) => l.replace(/: error (TS\d+).*/, " $1")), [
      "wrong.ts(4,38) TS2345",
      "wrong.ts(5,18) TS2345",
    ]);
    const home = join(dir, "home");
    const env = { PALYRA_VAULT_DIR: join(home, "vault"), PALYRA_IDENTITY_DIR: join(home, "identity") };
    const ran = await run([process.execPath, join(dir, "out", "app.js")], { cwd: dir, env });
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(new TextDecoder().decode(ran.stdout), "typed 1 not_found true  object");
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
