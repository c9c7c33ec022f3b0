/** `palyra-secrets migrate --to scoped|palyra`. */
import { type MigrateOptions, migrateVault } from "../vault.ts";
import type { ParsedArgs } from "./args.ts";
import { folderOptions, layoutArg, maxBytes } from "./common.ts";
import { EXIT, factLine, print, printJson, UsageError } from "./output.ts";

/** Converts the vault folder to the other layout (resumable). */
export async function run(args: ParsedArgs): Promise<number> {
  const to = layoutArg(args.values.to, "--to");
  if (args.values.layout !== undefined) throw new UsageError("migrate takes --to, not --layout");
  const options: MigrateOptions = { to, maxSecretBytes: maxBytes(args), ...folderOptions(args) };
  const r = await migrateVault(options);
  if (args.values.json) {
    await printJson({ from: r.from, to: r.to, secrets: r.secrets, already_done: r.alreadyDone, resumed: r.resumed });
  } else {
    await print(factLine("migrate", [["from", r.from], ["to", r.to], ["secrets", r.secrets], [
      "already_done",
      r.alreadyDone,
    ], ["resumed", r.resumed]]));
  }
  return EXIT.ok;
}
