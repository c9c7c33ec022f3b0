#!/usr/bin/env -S deno run -q --unstable-lazy-dynamic-imports --allow-read --allow-write --allow-env --allow-sys=hostname,uid --allow-run=kill,security,powershell,secret-tool
/**
 * `palyra-secrets`: the command-line interface of `@palyra/vault` (README,
 * "The CLI"). This file only dispatches: each command's code lives in
 * `src/cli/<command>.ts` and is loaded when that command runs, so `get` loads
 * neither the config tools nor the keychain backends.
 *
 * @example
 * ```sh
 * printf '%s' "$OPENAI_API_KEY" | palyra-secrets set global openai_api_key
 * palyra-secrets get global openai_api_key --reveal
 * ```
 *
 * @module
 */
import { main } from "./src/cli/main.ts";
import { exitProcess, isEntryPoint, programArgs } from "./src/platform/terminal.ts";

export { main };

if (isEntryPoint(import.meta)) {
  exitProcess(await main(programArgs()));
}
