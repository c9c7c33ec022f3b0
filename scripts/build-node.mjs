#!/usr/bin/env node
// Builds the JavaScript that Node runs: dist/node/cli.mjs (the CLI), and dist/node/mod.mjs,
// config.mjs and backends.mjs (the library's export paths), with each command's code and each keychain backend in its own chunk, loaded only when
// used, as in the TypeScript sources. `npm ci` and `npm install` run it (`prepare`), and
// bin/palyra-secrets.mjs runs it again in a checkout whose sources are newer than the build, so Node
// never needs tsx at run time. Every file is written beside its place and renamed over it, chunks
// before entry points, so a CLI started during a rebuild loads either build whole. The chunks of
// earlier builds stay for such a CLI, which loads its commands' chunks later; `--clean` (what `npm ci`
// and `npm pack` run) removes them, so that a package carries only the chunks its own build loads.
import { build } from "esbuild";
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = new URL("..", import.meta.url).pathname;
const result = await build({
  entryPoints: {
    cli: `${root}cli.ts`,
    mod: `${root}mod.ts`,
    config: `${root}config.ts`,
    backends: `${root}backends.ts`,
  },
  outdir: `${root}dist/node`,
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  target: "node20",
  logLevel: "warning",
  write: false,
});
const files = [...result.outputFiles].sort((a, b) =>
  Number(!a.path.includes("/chunks/")) - Number(!b.path.includes("/chunks/"))
);
for (const f of files) {
  mkdirSync(dirname(f.path), { recursive: true });
  const tmp = `${f.path}.${process.pid}.tmp`;
  writeFileSync(tmp, f.contents);
  renameSync(tmp, f.path);
}
// Only when run as the script: imported by bin/palyra-secrets.mjs, `process.argv` is the CLI's.
if (fileURLToPath(import.meta.url) === process.argv[1] && process.argv.includes("--clean")) {
  const chunks = `${root}dist/node/chunks`;
  const built = new Set(files.filter((f) => dirname(f.path) === chunks).map((f) => basename(f.path)));
  for (const name of readdirSync(chunks)) if (!built.has(name)) rmSync(join(chunks, name), { force: true });
}
