#!/usr/bin/env node
// Builds the JavaScript that Node runs: dist/node/cli.mjs (the CLI), and dist/node/mod.mjs,
// config.mjs and backends.mjs (the library's export paths), with each command's code and each keychain backend in its own chunk, loaded only when
// used, as in the TypeScript sources. `npm ci` and `npm install` run it (`prepare`), and
// bin/palyra-secrets.mjs runs it again in a checkout whose sources are newer than the build, so Node
// never needs tsx at run time. Every file is written beside its place and renamed over it, chunks
// before entry points, so a CLI started during a rebuild loads either build whole.
import { build } from "esbuild";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

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
