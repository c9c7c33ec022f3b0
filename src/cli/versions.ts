/** `palyra-secrets versions <scope> <key>` (PostgreSQL store). */
import type { ParsedArgs } from "./args.ts";
import { openVault, scopeAndKey } from "./common.ts";
import { EXIT, factLine, print, printJson } from "./output.ts";

/** Lists the versions kept of a secret, newest first; never a value. */
export async function run(args: ParsedArgs): Promise<number> {
  const [scope, key] = scopeAndKey(args);
  const vault = await openVault(args);
  const versions = await vault.versions(scope, key);
  if (args.values.json) {
    await printJson({
      scope,
      key,
      versions: versions.map((v) => ({
        version: v.version,
        value_bytes: v.valueBytes,
        updated_at_unix_ms: v.updatedAtUnixMs,
        deleted_at_unix_ms: v.deletedAtUnixMs ?? null,
      })),
    });
  } else {
    let out = "";
    for (const v of versions) {
      out += factLine("versions", [["scope", scope], ["key", key], ["version", v.version ?? 0], [
        "updated_at_unix_ms",
        v.updatedAtUnixMs,
      ], ["deleted", v.deletedAtUnixMs !== undefined]]);
    }
    await print(out);
  }
  return EXIT.ok;
}
