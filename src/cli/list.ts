/** `palyra-secrets list [<scope>]`. */
import { formatScope, parseScope } from "../scope.ts";
import type { ParsedArgs } from "./args.ts";
import { openVault } from "./common.ts";
import { EXIT, factLine, print, printJson } from "./output.ts";

/** Lists keys and their times, never values. */
export async function run(args: ParsedArgs): Promise<number> {
  const scope = args.positionals[0] === undefined ? undefined : formatScope(parseScope(args.positionals[0]));
  const vault = await openVault(args);
  const items = await vault.listSecrets(scope);
  if (args.values.json) {
    await printJson({
      scope: scope ?? null,
      secrets: items.map((m) => ({
        scope: m.scope,
        key: m.key,
        created_at_unix_ms: m.createdAtUnixMs,
        updated_at_unix_ms: m.updatedAtUnixMs,
        ...(m.version === undefined ? {} : { version: m.version }),
      })),
    });
  } else {
    let out = "";
    for (const m of items) {
      out += factLine("list", [["scope", m.scope], ["key", m.key], ["created_at_unix_ms", m.createdAtUnixMs], [
        "updated_at_unix_ms",
        m.updatedAtUnixMs,
      ]]);
    }
    out += factLine("list", [["count", items.length]]);
    await print(out);
  }
  return EXIT.ok;
}
