#!/usr/bin/env node
// Writes the TypeScript declarations of the npm package, dist/types/ (mod.d.ts, config.d.ts,
// backends.d.ts, cli.d.ts and the src/ files they name), so that a TypeScript program on Node that
// imports `@palyra/vault` is checked against the library's own types. package.json's exports name
// them under the `types` condition; `npm ci`, `npm install` and `npm pack` run this after
// build-node.mjs. The compiler options are deno.json's, the ones `deno check` holds the sources to.
// The sources that only Deno runs (src/platform/*_deno.ts) are checked against `deno types`.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const require = createRequire(import.meta.url);
const tsc = join(require.resolve("typescript/package.json"), "..", "bin", "tsc");
const deno = join(root, "node_modules", ".bin", "deno");

/** Runs a program, failing the build with its output when it fails. */
function must(argv, what) {
  const r = spawnSync(argv[0], argv.slice(1), { cwd: root, encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    throw new Error(`build-types: ${what} failed\n${r.error ?? ""}${r.stdout}${r.stderr}`);
  }
  return r.stdout;
}

mkdirSync(join(root, "dist"), { recursive: true });
// Beside its place, so that the finished folder is renamed into place on the same file system.
const work = mkdtempSync(join(root, "dist", ".types-"));
try {
  const denoLib = join(work, "lib.deno.d.ts");
  writeFileSync(denoLib, must([deno, "types"], "deno types"));
  const flags = Object.entries(JSON.parse(readFileSync(join(root, "deno.json"), "utf8")).compilerOptions)
    .flatMap(([name, on]) => [`--${name}`, String(on)]);
  const out = join(work, "types");
  must([
    process.execPath,
    tsc,
    ...flags,
    "--declaration",
    "--emitDeclarationOnly",
    "--noEmitOnError",
    "--target",
    "es2022",
    "--lib",
    "es2024,esnext.disposable,dom",
    "--module",
    "nodenext",
    "--moduleResolution",
    "nodenext",
    "--allowImportingTsExtensions",
    "--rewriteRelativeImportExtensions",
    "--skipLibCheck",
    "--types",
    "node",
    "--outDir",
    out,
    "mod.ts",
    "config.ts",
    "backends.ts",
    "cli.ts",
    denoLib,
  ], "tsc");
  // The folder is replaced whole, so a reader never sees declarations from two builds.
  const dest = join(root, "dist", "types");
  rmSync(dest, { recursive: true, force: true });
  renameSync(out, dest);
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : e}\n`);
  process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
