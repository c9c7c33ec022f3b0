/** `palyra-secrets set <scope> <key> [--force]`. */
import { VaultError } from "../errors.ts";
import type { ParsedArgs } from "./args.ts";
import { maxBytes, openVault, readValue, scopeAndKey, versionArg } from "./common.ts";
import { EXIT, factLine, print, printJson, PROGRAM } from "./output.ts";

/** Stores the value read from stdin or a hidden prompt. */
export async function run(args: ParsedArgs): Promise<number> {
  const [scope, key] = scopeAndKey(args);
  const ifVersion = args.values["if-version"] === undefined
    ? undefined
    : versionArg(args.values["if-version"], "--if-version", 0);
  const vault = await openVault(args);
  const value = await readValue(`${scope}/${key}`, maxBytes(args));
  let meta;
  try {
    meta = await vault.putSecret(scope, key, value, {
      overwrite: args.values.force === true || ifVersion !== undefined,
      ...(ifVersion === undefined ? {} : { ifVersion }),
    });
  } catch (e) {
    if (VaultError.is(e, "conflict") && ifVersion === undefined) {
      throw new VaultError("conflict", `set ${scope}/${key} failed: it already holds a different value`, {
        hint: `run again with --force to replace it (see the current one with: ${PROGRAM} get ${scope} ${key})`,
        cause: e,
      });
    }
    throw e;
  } finally {
    value.fill(0);
  }
  if (args.values.json) {
    await printJson({
      scope,
      key,
      stored: true,
      replaced: meta.replaced,
      created_at_unix_ms: meta.createdAtUnixMs,
      updated_at_unix_ms: meta.updatedAtUnixMs,
      ...(meta.version === undefined ? {} : { version: meta.version }),
    });
  } else {
    await print(factLine("set", [
      ["scope", scope],
      ["key", key],
      ["stored", true],
      ["replaced", meta.replaced],
      ["updated_at_unix_ms", meta.updatedAtUnixMs],
      ...(meta.version === undefined ? [] : [["version", meta.version] as [string, number]]),
    ]));
  }
  return EXIT.ok;
}
