#!/usr/bin/env node
// Bundles the CLI for Node into dist/palyra-secrets.mjs (run by `npm pack` through `prepack`), so
// an installed package runs on plain Node 20 without tsx or a TypeScript loader.
import { build } from "esbuild";

const root = new URL("..", import.meta.url).pathname;
await build({
  entryPoints: [`${root}cli.ts`],
  outfile: `${root}dist/palyra-secrets.mjs`,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  logLevel: "warning",
});
