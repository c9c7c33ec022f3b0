/** `palyra-secrets audit [--path FILE] [--strict]`. */
import { auditConfig, type AuditReport } from "../config/audit.ts";
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
  if (args.values.json) await printJson(report);
  else await print(auditText(report));
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
