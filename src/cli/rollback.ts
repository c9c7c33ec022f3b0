/** `palyra-secrets rollback <scope> <key> --to N` (PostgreSQL store). */
import type { ParsedArgs } from "./args.ts";
import { openVault, scopeAndKey, versionArg } from "./common.ts";
import { EXIT, factLine, print, printJson, UsageError } from "./output.ts";

/** Makes an earlier version's value live again, as a new version. */
export async function run(args: ParsedArgs): Promise<number> {
  const [scope, key] = scopeAndKey(args);
  if (args.values.to === undefined) {
    throw new UsageError("rollback needs --to N, the version to bring back", "rollback");
  }
  const to = versionArg(args.values.to, "--to", 1);
  const vault = await openVault(args);
  const meta = await vault.rollback(scope, key, to);
  if (args.values.json) await printJson({ scope, key, rolled_back_to: to, version: meta.version });
  else await print(factLine("rollback", [["scope", scope], ["key", key], ["to", to], ["version", meta.version ?? 0]]));
  return EXIT.ok;
}
