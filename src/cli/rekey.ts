/** `palyra-secrets rekey --to-identity DIR | --to-kek-file FILE`. */
import { type RekeyOptions, rekeyVault } from "../rekey.ts";
import type { ParsedArgs } from "./args.ts";
import { openVault, readKekFile } from "./common.ts";
import { EXIT, factLine, print, printJson, UsageError } from "./output.ts";

/** Wraps every data key under the new key, then proves each secret opens with it. */
export async function run(args: ParsedArgs): Promise<number> {
  const toIdentity = args.values["to-identity"];
  const toKekFile = args.values["to-kek-file"];
  if ((typeof toIdentity === "string") === (typeof toKekFile === "string")) {
    throw new UsageError("give the new key: --to-identity DIR or --to-kek-file FILE (one of them)", "rekey");
  }
  const options: RekeyOptions = typeof toIdentity === "string"
    ? { toIdentity }
    : { toKek: await readKekFile(toKekFile as string, "--to-kek-file") };
  const vault = await openVault(args);
  try {
    const done = await rekeyVault(vault, options);
    const next = typeof toIdentity === "string" ? `--identity-dir ${toIdentity}` : `--kek-file ${toKekFile}`;
    if (args.values.json) {
      await printJson({
        secrets: done.secrets,
        rewrapped: done.rewrapped,
        already_done: done.alreadyDone,
        kek_id: done.kekId,
      });
    } else {
      await print(factLine("rekey", [
        ["secrets", done.secrets],
        ["rewrapped", done.rewrapped],
        ["already_done", done.alreadyDone],
        ["kek_id", done.kekId],
        ["open_with", next],
      ]));
    }
    return EXIT.ok;
  } finally {
    options.toKek?.fill(0);
    vault.close();
  }
}
