#!/usr/bin/env node
// `palyra-secrets` on Node: runs the CLI built as plain JavaScript in dist/node/ (scripts/build-node.mjs,
// which `npm ci`, `npm install` and `npm pack` run), so no TypeScript compiler starts. In a checkout of
// the repository, a build older than any source file is rebuilt first, so a stale build never runs.
import process from "node:process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const built = `${root}dist/node/cli.mjs`;

/** The newest modification time of the sources the build is made from. */
function newestSource() {
  let newest = Math.max(statSync(`${root}cli.ts`).mtimeMs, statSync(`${root}mod.ts`).mtimeMs);
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(`${dir}/${e.name}`);
      else if (e.name.endsWith(".ts")) newest = Math.max(newest, statSync(`${dir}/${e.name}`).mtimeMs);
    }
  };
  walk(`${root}src`);
  return newest;
}

const checkout = existsSync(`${root}scripts/build-node.mjs`);
if (checkout && (!existsSync(built) || statSync(built).mtimeMs < newestSource())) {
  await import("../scripts/build-node.mjs");
}
const { main } = await import("../dist/node/cli.mjs");
process.exit(await main(process.argv.slice(2)));
