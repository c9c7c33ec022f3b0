/**
 * What a short command loads (README, "Performance"): `get` and `list` start
 * in about the time of an empty program only while they leave out the modules
 * they do not use. Measured through Node's module hooks on the TypeScript
 * sources, the graph every runtime loads: each module resolved is recorded,
 * dynamic imports included.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { DENO_TASK_FLAGS, ROOT, run, RUNTIMES, tempDir } from "./helpers.ts";

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
  [/src\/store\/palyra_(layout|objects|lock|index)\.ts$/, "Palyra's layout, for a vault in it (this one is scoped)"],
  [/^node:crypto$/, "the runtime's own AES-GCM, loaded for values of 4 KiB or more only"],
];

/** And what a `get`, which reads one object by its name, has no use for besides. */
const NOT_FOR_GET: ReadonlyArray<[RegExp, string]> = [
  [/src\/store\/scope_(index|log|lock|writer)\.ts$/, "the scope's index, its log and its lock"],
];

/**
 * Writes `file`, a module whose `body` calls `record(name)` for each module
 * resolved, which appends the name to `log`.
 */
function writeRecorder(file: string, log: string, body: string): void {
  const record = `const record = (name) => appendFileSync(${JSON.stringify(log)}, name + "\\n");`;
  writeFileSync(file, `import { appendFileSync } from "node:fs";\n${record}\n${body}\n`);
}

/** Runs the CLI from its TypeScript sources on Node with a hook that records every module resolved. */
async function modulesLoaded(env: Record<string, string>, args: string[], input?: string): Promise<string[]> {
  const dir = tempDir("modules");
  const log = join(dir, "modules.log");
  const hooks = join(dir, "hooks.mjs");
  writeRecorder(
    hooks,
    log,
    `export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  record(r.url);
  return r;
}`,
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
      // The hook sees list load the index, so the pattern below can match what it is meant to.
      if (args[0] === "list") assert.ok(loaded.some((u) => NOT_FOR_GET[0]![0].test(u)), "list loaded the index");
      for (const [pattern, why] of args[0] === "get" ? [...NOT_FOR_READS, ...NOT_FOR_GET] : NOT_FOR_READS) {
        const hit = loaded.filter((u) => pattern.test(u));
        assert.deepEqual(hit, [], `${args[0]} loaded ${hit.join(", ")}: ${why}`);
      }
    });
  }
});

describe("on Deno, a command reads only its own code", () => {
  // Deno loads every statically analyzable dynamic import before a program starts, unless told not to: `get` then
  // read and parsed every other command's modules first (13-17 ms of its start-up on a 2-core machine).
  // The modules of `src/cli/` that `set` (which stores the value) and `get` use.
  const used = new Set(["args.ts", "commands.ts", "common.ts", "get.ts", "main.ts", "output.ts", "set.ts"]);

  /**
   * A copy of the CLI in which every other module of `src/cli/` is a named
   * pipe: whatever opens one to read it waits for a writer that never comes.
   */
  function copyWithPipes(): { root: string; pipes: string[] } {
    const root = tempDir("lazy-cli");
    for (const f of ["cli.ts", "mod.ts", "deno.json", "package.json"]) cpSync(join(ROOT, f), join(root, f));
    cpSync(join(ROOT, "src"), join(root, "src"), { recursive: true });
    symlinkSync(join(ROOT, "node_modules"), join(root, "node_modules"));
    const pipes = readdirSync(join(root, "src", "cli")).filter((f) => f.endsWith(".ts") && !used.has(f));
    for (const f of pipes) {
      const path = join(root, "src", "cli", f);
      rmSync(path);
      execFileSync("mkfifo", [path]);
    }
    return { root, pipes };
  }

  test("`deno task cli get` starts without opening the other commands' modules", async () => {
    const { root, pipes } = copyWithPipes();
    assert.ok(pipes.includes("list.ts") && pipes.includes("export.ts"), `pipes: ${pipes.join(", ")}`);
    const dir = tempDir("lazy-vault");
    const env = {
      PALYRA_VAULT_DIR: join(dir, "vault"),
      PALYRA_IDENTITY_DIR: join(dir, "identity"),
      PALYRA_VAULT_BACKEND: "encrypted_file",
    };
    // The task's own command line (its permissions and flags), run in the copy.
    const deno = [join(ROOT, "node_modules", ".bin", "deno"), "run", ...DENO_TASK_FLAGS, join(root, "cli.ts")];
    // On a Deno that opened the pipes, each command would wait on them until killed.
    const inCopy = { env, cwd: root, timeoutMs: 60_000 };
    const set = await run([...deno, "set", "global", "openai_api_key"], { ...inCopy, input: "sk-lazy" });
    assert.equal(set.code, 0, set.stderr);
    const got = await run([...deno, "get", "global", "openai_api_key", "--reveal"], inCopy);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(new TextDecoder().decode(got.stdout), "sk-lazy");
    // A command that does load one of the pipes waits on it: the copy is a real test of what `get` opens.
    const listed = await run([...deno, "list", "global"], { ...inCopy, timeoutMs: 3_000 });
    assert.equal(listed.signal, "SIGKILL", `list finished (${listed.code}) without reading src/cli/list.ts`);
  });

  test("`./cli.ts` runs by its shebang, which also reads only the command it runs", async () => {
    const { root } = copyWithPipes();
    const dir = tempDir("shebang-vault");
    const env = {
      PALYRA_VAULT_DIR: join(dir, "vault"),
      PALYRA_IDENTITY_DIR: join(dir, "identity"),
      PALYRA_VAULT_BACKEND: "encrypted_file",
      // The shebang finds `deno` on the PATH, as it would after an install.
      PATH: `${join(ROOT, "node_modules", ".bin")}:${process.env.PATH ?? ""}`,
    };
    const inCopy = { env, cwd: root, timeoutMs: 60_000 };
    const cli = join(root, "cli.ts");
    const set = await run([cli, "set", "global", "openai_api_key"], { ...inCopy, input: "sk-shebang" });
    assert.equal(set.code, 0, set.stderr);
    const got = await run([cli, "get", "global", "openai_api_key", "--reveal"], inCopy);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(new TextDecoder().decode(got.stdout), "sk-shebang");
  });
});

describe("on Bun, a read hashes with the runtime's own SHA-256", () => {
  // `@noble/hashes` cost a `get` on Bun about 2 ms of its start-up: the module, and its first calls while not yet
  // compiled. Bun's resolver tells a plugin every import it resolves, as Node's module hooks do above.
  test("`bun cli.ts get` loads no module of @noble/hashes", async () => {
    const dir = tempDir("bun-hash");
    const log = join(dir, "resolved.log");
    const preload = join(dir, "record.ts");
    writeRecorder(
      preload,
      log,
      `Bun.plugin({
  name: "record",
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => {
      record(args.path);
      return undefined;
    });
  },
});`,
    );
    const env = {
      PALYRA_VAULT_DIR: join(dir, "vault"),
      PALYRA_IDENTITY_DIR: join(dir, "identity"),
      PALYRA_VAULT_BACKEND: "encrypted_file",
    };
    const bun = [join(ROOT, "node_modules", ".bin", "bun"), "--preload", preload, join(ROOT, "cli.ts")];
    const set = await run([...bun, "set", "global", "openai_api_key"], { env, input: "sk-bun-hash" });
    assert.equal(set.code, 0, set.stderr);
    writeFileSync(log, "");
    const got = await run([...bun, "get", "global", "openai_api_key", "--reveal"], { env });
    assert.equal(got.code, 0, got.stderr);
    assert.equal(new TextDecoder().decode(got.stdout), "sk-bun-hash");
    const resolved = readFileSync(log, "utf8").split("\n").filter(Boolean);
    // The plugin sees what `get` does load, or this test could pass by seeing nothing.
    assert.ok(
      resolved.includes("@noble/ciphers/chacha.js"),
      `the plugin saw the identity store's cipher:\n${resolved}`,
    );
    const hashes = resolved.filter((s) => s.includes("@noble/hashes"));
    assert.deepEqual(hashes, [], `get resolved ${hashes.join(", ")}`);
  });
});
