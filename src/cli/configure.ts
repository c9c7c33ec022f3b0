/** `palyra-secrets configure <dotted.field> <scope> <key>`. */
import { configureField } from "../config/configure.ts";
import { findConfigFile } from "../config/locate.ts";
import { writeStderr } from "../platform/terminal.ts";
import { formatScope, parseScope, validateKey } from "../scope.ts";
import type { ParsedArgs } from "./args.ts";
import { maxBytes, openVault, readValue } from "./common.ts";
import { EXIT, factLine, print, printJson, UsageError } from "./output.ts";

/** Moves a config field's secret into the vault and leaves a `_vault_ref` in its place. */
export async function run(args: ParsedArgs): Promise<number> {
  const [field, rawScope, rawKey] = args.positionals as [string, string, string];
  const scope = formatScope(parseScope(rawScope));
  const key = validateKey(rawKey);
  let backups = 5;
  if (typeof args.values.backups === "string") {
    if (!/^\d{1,3}$/.test(args.values.backups)) throw new UsageError("--backups takes a whole number", "configure");
    backups = Number(args.values.backups);
  }
  const path = await findConfigFile(typeof args.values.path === "string" ? args.values.path : undefined);
  const vault = await openVault(args);
  const fromConfig = args.values["from-config"] === true;
  const value = fromConfig ? undefined : await readValue(`${scope}/${key}`, maxBytes(args));
  try {
    const r = await configureField({
      path,
      field,
      scope,
      key,
      fromConfig,
      force: args.values.force === true,
      backups,
      vault,
      ...(value === undefined ? {} : { value }),
    });
    if (args.values.json) {
      await printJson({
        path,
        field: r.field,
        reference: r.reference,
        stored: r.stored,
        replaced: r.replaced,
        changed: r.changed,
        backup: r.backup ?? null,
        plaintext_backups: r.plaintextBackups,
      });
    } else {
      await print(factLine("configure", [
        ["path", path],
        ["field", r.field],
        ["ref", r.reference],
        ["stored", r.stored],
        ["replaced", r.replaced],
        ["changed", r.changed],
        ...(r.backup === undefined ? [] : [["backup", r.backup] as [string, string]]),
      ]));
    }
    if (r.plaintextBackups.length > 0) {
      await writeStderr(
        `warning: plaintext secrets remain in ${r.plaintextBackups.join(", ")}; ` +
          `delete ${r.plaintextBackups.length === 1 ? "it" : "them"} once the new file works\n`,
      );
    }
  } finally {
    value?.fill(0);
  }
  return EXIT.ok;
}
