#!/usr/bin/env node
// `npx palyra-secrets` on Node: load the TypeScript CLI through tsx.
import process from "node:process";
import { register } from "tsx/esm/api";

register();
const { main } = await import("../cli.ts");
process.exit(await main(process.argv.slice(2)));
