/** `palyra-secrets import --from FILE [--identity FILE]… [--on-conflict fail|skip|overwrite]`. */
import { ageRecipientTypes, type ImportConflict, type ImportOptions, importVault } from "../export.ts";
import type { ParsedArgs } from "./args.ts";
import { openVault, readPassphrase, readUserBytes, readUserText } from "./common.ts";
import { EXIT, factLine, print, printJson, UsageError } from "./output.ts";

const CONFLICT_CHOICES: readonly ImportConflict[] = ["fail", "skip", "overwrite"];

/** Reads an age file made by `export` or `age -e` into the vault. */
export async function run(args: ParsedArgs): Promise<number> {
  const from = args.values.from;
  if (typeof from !== "string" || from === "") throw new UsageError("missing --from FILE", "import");
  const conflict = args.values["on-conflict"] ?? "fail";
  if (!CONFLICT_CHOICES.includes(conflict as ImportConflict)) {
    throw new UsageError(`--on-conflict must be fail, skip or overwrite; got ${JSON.stringify(conflict)}`, "import");
  }
  const identityFiles = (args.values.identity as string[] | undefined) ?? [];
  const file = await readUserBytes(from, "import file", "pass --from with the file that export (or age -e) wrote");
  const options: ImportOptions = { onConflict: conflict as ImportConflict };
  if (identityFiles.length > 0) {
    options.identities = await Promise.all(
      identityFiles.map((f) => readUserText(f, "identity file", "pass --identity with the file age-keygen wrote")),
    );
  } else if (!(await ageRecipientTypes(file)).includes("scrypt")) {
    throw new UsageError(
      `"${from}" is encrypted to age recipients, not a passphrase: pass --identity FILE (the file age-keygen wrote)`,
      "import",
    );
  }
  const vault = await openVault(args);
  try {
    if (options.identities === undefined) options.passphrase = await readPassphrase(`for "${from}"`, false);
    let done;
    try {
      done = await importVault(vault, file, options);
    } catch (e) {
      if (e instanceof TypeError) throw new UsageError(e.message, "import");
      throw e;
    }
    const { scopes, ...counts } = done;
    if (args.values.json) await printJson({ from, ...counts, scopes });
    else {
      await print(factLine("import", [
        ["from", from],
        ...Object.entries(counts) as Array<[string, number]>,
        ["scopes", scopes.join(",")],
      ]));
    }
    return EXIT.ok;
  } finally {
    vault.close();
  }
}
