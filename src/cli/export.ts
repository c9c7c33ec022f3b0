/** `palyra-secrets export --to FILE (--passphrase | --recipient age1…) [<scope>…]`. */
import { fsError } from "../errors.ts";
import { type ExportOptions, exportVault } from "../export.ts";
import { defaultFileSystem } from "../platform/fs.ts";
import { resolve } from "../platform/path.ts";
import type { ParsedArgs } from "./args.ts";
import { openVault, readPassphrase } from "./common.ts";
import { EXIT, factLine, print, printJson, UsageError } from "./output.ts";

/** Writes the secrets of the vault (or of the scopes given) into an age file, mode 0600. */
export async function run(args: ParsedArgs): Promise<number> {
  const to = args.values.to;
  if (typeof to !== "string" || to === "") throw new UsageError("missing --to FILE", "export");
  const recipients = (args.values.recipient as string[] | undefined) ?? [];
  const usePassphrase = args.values.passphrase === true;
  if (usePassphrase === (recipients.length > 0)) {
    throw new UsageError("choose who can open the file: --passphrase, or --recipient age1… (one or more)", "export");
  }
  const options: ExportOptions = usePassphrase ? {} : { recipients };
  if (args.positionals.length > 0) options.scopes = args.positionals;
  const vault = await openVault(args);
  try {
    // Checked before a passphrase is asked for: a bad recipient or scope is a usage error, not a prompt.
    if (usePassphrase) options.passphrase = await readPassphrase("for the export", true);
    let out;
    try {
      out = await exportVault(vault, options);
    } catch (e) {
      if (e instanceof TypeError) throw new UsageError(e.message, "export");
      throw e;
    }
    const target = resolve(to);
    try {
      await defaultFileSystem.writeFileAtomic(target, out.file, 0o600);
    } catch (e) {
      throw fsError("write the export file", target, e);
    }
    if (args.values.json) await printJson({ to, secrets: out.secrets, scopes: out.scopes });
    else await print(factLine("export", [["to", to], ["secrets", out.secrets], ["scopes", out.scopes.join(",")]]));
    return EXIT.ok;
  } finally {
    vault.close();
  }
}
