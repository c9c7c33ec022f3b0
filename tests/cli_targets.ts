/** The ways the CLI is run in tests: each runtime on cli.ts, and a standalone binary. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, run, RUNTIMES, tempDir } from "./helpers.ts";

/** The CLI's entry point. */
export const CLI = join(ROOT, "cli.ts");
let binary: Promise<string> | undefined;

/** The flags `deno task compile:bun` gives `bun build` (the README's offline binary), read from deno.json. */
function compileFlags(): string[] {
  const task = (JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")) as { tasks: Record<string, string> })
    .tasks["compile:bun"]!;
  const flags = /\bbun build (.*) cli\.ts /.exec(task)?.[1];
  assert.ok(flags !== undefined, `deno.json's compile:bun task builds cli.ts with bun build: ${task}`);
  return flags.split(" ");
}

/** Builds the standalone binary offline as `deno task compile:bun` does, once per test process. */
function buildBinary(): Promise<string> {
  binary ??= (async () => {
    const out = join(tempDir("bin"), "palyra-secrets");
    const r = await run([join(ROOT, "node_modules/.bin/bun"), "build", ...compileFlags(), CLI, "--outfile", out]);
    assert.equal(r.code, 0, r.stderr);
    return out;
  })();
  return binary;
}

/** Each target's command line, without the CLI's own arguments. */
export const CLI_TARGETS = {
  deno: () => Promise.resolve(RUNTIMES.deno(CLI)),
  bun: () => Promise.resolve(RUNTIMES.bun(CLI)),
  // What `npx palyra-secrets` runs: the bin script on the JavaScript build (rebuilt first when a source is newer).
  node: () => Promise.resolve(["node", join(ROOT, "bin", "palyra-secrets.mjs")]),
  binary: async () => [await buildBinary()],
} as const;

/** A target's name. */
export type CliTarget = keyof typeof CLI_TARGETS;

/**
 * The targets a CLI test runs here: the runtime this test file runs on, plus
 * the compiled binary under Bun. A target is a program of its own, which
 * behaves the same whichever runtime started it, so over the three runtimes
 * of `npm test` each target is run once, not three times.
 */
export function ownTargets(): CliTarget[] {
  const g = globalThis as Record<string, unknown>;
  const own: CliTarget = "Deno" in g ? "deno" : "Bun" in g ? "bun" : "node";
  return own === "bun" ? ["bun", "binary"] : [own];
}
