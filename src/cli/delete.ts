/** `palyra-secrets delete <scope> <key>`. */
import type { ParsedArgs } from "./args.ts";
import { openVault, scopeAndKey } from "./common.ts";
import { EXIT, factLine, print, printJson } from "./output.ts";

/** Deletes a secret; `deleted=false` when there was none. */
export async function run(args: ParsedArgs): Promise<number> {
  const [scope, key] = scopeAndKey(args);
  const vault = await openVault(args);
  const deleted = await vault.deleteSecret(scope, key);
  if (args.values.json) await printJson({ scope, key, deleted });
  else await print(factLine("delete", [["scope", scope], ["key", key], ["deleted", deleted]]));
  return EXIT.ok;
}
