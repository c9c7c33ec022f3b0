#!/usr/bin/env node
// `palyra-secrets` on Node. An installed package (npm pack, npm install -g) carries the CLI bundled
// as plain JavaScript in dist/ (built by `prepack`); a checkout of the repository, which has the
// build script, runs the current cli.ts through tsx instead, so a stale bundle is never used.
import process from "node:process";
import { existsSync } from "node:fs";

const checkout = existsSync(new URL("../scripts/build-node.mjs", import.meta.url));
let main;
if (checkout) {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import("../cli.ts"));
} else {
  ({ main } = await import("../dist/palyra-secrets.mjs"));
}
process.exit(await main(process.argv.slice(2)));
