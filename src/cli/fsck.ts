/** `palyra-secrets fsck [--repair]`. */
import { checkVault } from "../fsck.ts";
import type { ParsedArgs } from "./args.ts";
import { openVault } from "./common.ts";
import { EXIT, factLine, print, printJson } from "./output.ts";

/** Reports (and with --repair, fixes) what is wrong in the vault folder; exit 3 while findings stand. */
export async function run(args: ParsedArgs): Promise<number> {
  const vault = await openVault(args);
  try {
    const report = await checkVault(vault, { repair: args.values.repair === true });
    if (args.values.json) {
      await printJson(report);
    } else {
      let out = "";
      for (const f of report.findings) {
        out += factLine("fsck", [
          ["finding", f.code],
          ["scope", f.scope ?? "-"],
          ["key", f.key ?? "-"],
          ["path", f.path],
          ["repair", f.repair],
          ["message", f.message],
        ]);
      }
      out += factLine("fsck", [
        ["secrets", report.secrets],
        ["objects", report.objects],
        ["findings", report.findings.length],
        ["repaired", report.repaired],
        ["unresolved", report.unresolved],
      ]);
      await print(out);
    }
    return report.unresolved === 0 ? EXIT.ok : EXIT.blocking;
  } finally {
    vault.close();
  }
}
