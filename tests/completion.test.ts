/**
 * `palyra-secrets completion bash|zsh|fish`: each script is loaded into the real shell and asked
 * to complete, the way the shell would when a user presses Tab (bash: the completion function
 * with COMP_WORDS; fish: `complete -C`; zsh: the function with zsh's completion built-ins
 * recorded, since zsh's completion system needs a terminal).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CLI_TARGETS, type CliTarget, ownTargets } from "./cli_targets.ts";
import { run, tempDir } from "./helpers.ts";

async function script(target: CliTarget, shell: string): Promise<string> {
  const r = await run([...(await CLI_TARGETS[target]()), "completion", shell]);
  assert.equal(r.code, 0, r.stderr);
  const path = join(tempDir("completion"), `palyra.${shell}`);
  writeFileSync(path, r.stdout);
  return path;
}

const lines = (r: { stdout: Uint8Array }) => new TextDecoder().decode(r.stdout).trim().split("\n");

describe("completion", () => {
  for (const target of ownTargets()) {
    test(`bash completes commands and each command's options (${target})`, async () => {
      const path = await script(target, "bash");
      const complete = async (...words: string[]) =>
        lines(
          await run([
            "bash",
            "-c",
            `source "$0"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${
              words.length - 1
            }; _palyra_secrets; printf '%s\\n' "\${COMPREPLY[@]}"`,
            path,
          ]),
        );
      assert.deepEqual(await complete("palyra-secrets", "g"), ["get"]);
      assert.deepEqual((await complete("palyra-secrets", "")).sort(), [
        "audit",
        "completion",
        "configure",
        "delete",
        "devices",
        "doctor",
        "export",
        "fsck",
        "get",
        "import",
        "inject",
        "list",
        "migrate",
        "rekey",
        "rollback",
        "run",
        "set",
        "versions",
      ]);
      assert.deepEqual(await complete("palyra-secrets", "get", "--re"), ["--reveal"]);
      assert.deepEqual((await complete("palyra-secrets", "run", "--e")).sort(), ["--env", "--env-file"]);
      assert.deepEqual(await complete("palyra-secrets", "set", "--re"), [""], "get's options are not set's");
    });
  }

  test("fish completes commands with their summaries, and options", async () => {
    const path = await script("bun", "fish");
    const complete = async (line: string) =>
      lines(await run(["fish", "-c", `source $argv[1]; complete -C '${line}'`, path]));
    const commands = await complete("palyra-secrets g");
    assert.equal(commands.length, 1);
    assert.match(commands[0]!, /^get\tread a secret/);
    assert.deepEqual(await complete("palyra-secrets get --rev"), ["--reveal"]);
    assert.ok((await complete("palyra-secrets inject -")).some((l) => l.startsWith("-i")));
  });

  test("zsh: the script parses, and offers commands and each command's options", async () => {
    const path = await script("bun", "zsh");
    assert.equal((await run(["zsh", "-n", path])).code, 0);
    // zsh's completion built-ins need a terminal: record what the function hands them.
    const stubs = "compdef() { :; }; _describe() { local name=$2; print -l -- ${(P)name}; }; " +
      "compadd() { shift; print -l -- $@; }; _files() { print files; };";
    const complete = async (current: number, ...words: string[]) =>
      lines(
        await run([
          "zsh",
          "-c",
          `${stubs} source $0; words=(${words.join(" ")}); CURRENT=${current}; _palyra_secrets`,
          path,
        ]),
      );
    const commands = await complete(2, "palyra-secrets", "g");
    assert.ok(commands.some((l) => l.startsWith("get:read a secret")), commands.join("\n"));
    assert.ok((await complete(3, "palyra-secrets", "get", "--r")).includes("--reveal"));
    assert.deepEqual(await complete(3, "palyra-secrets", "get", "ws"), ["files"]);
  });

  test("an unknown shell is a usage error", async () => {
    const r = await run([...(await CLI_TARGETS.bun()), "completion", "tcsh"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bash, zsh and fish/);
  });
});
