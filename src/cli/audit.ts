/** `palyra-secrets audit [--path FILE] [--strict]`. */
import { auditConfig, type AuditReport, orphanSecrets } from "../config/audit.ts";
import { findConfigFile } from "../config/locate.ts";
import type { ParsedArgs } from "./args.ts";
import { openVault, readUserText } from "./common.ts";
import { EXIT, factLine, print, printJson } from "./output.ts";

/** Audits a Palyra config file; exit 3 with `--strict` when a finding blocks. */
export async function run(args: ParsedArgs): Promise<number> {
  const explicit = typeof args.values.path === "string" ? args.values.path : undefined;
  const path = await findConfigFile(explicit);
  const text = await readUserText(path, "config file", "pass --path with the config file");
  const report = await auditConfig(text, {
    path,
    vault: () => openVault(args),
    backupsOf: path,
    ...(path === "palyra.toml" ? {} : { pathArgument: path }),
  });
  // --orphans: the vault's secrets that no reference of this file names.
  const orphans = args.values.orphans === true
    ? orphanSecrets(report, await (await openVault(args)).listSecrets())
    : undefined;
  if (args.values.json) await printJson(orphans === undefined ? report : { ...report, orphans });
  else await print(auditText(report) + (orphans === undefined ? "" : orphansText(orphans)));
  return args.values.strict && report.summary.blocking_findings > 0 ? EXIT.blocking : EXIT.ok;
}

function auditText(report: AuditReport): string {
  let out = "";
  for (const f of report.findings) {
    out += factLine("audit", [
      ["finding", f.code],
      ["severity", f.severity],
      ["file", f.file],
      ["line", f.line],
      ["column", f.column],
      ["field", f.field],
      ["message", f.message],
      ["remediation", f.remediation],
    ]);
  }
  const s = report.summary;
  out += factLine("audit", [
    ["path", report.path],
    ["total_references", s.total_references],
    ["resolved_references", s.resolved_references],
    ["blocking_findings", s.blocking_findings],
    ["warning_findings", s.warning_findings],
    ["info_findings", s.info_findings],
  ]);
  return out;
}

function orphansText(orphans: ReadonlyArray<{ scope: string; key: string }>): string {
  return orphans.map((o) => factLine("audit", [["orphan_scope", o.scope], ["orphan_key", o.key]])).join("") +
    factLine("audit", [["orphans", orphans.length]]);
}
