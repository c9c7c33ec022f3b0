/** `palyra-secrets audit [--path FILE] [--strict]`. */
import { auditConfig, type AuditReport } from "../config/audit.ts";
import { findConfigFile } from "../config/locate.ts";
import { errnoCode, VaultError } from "../errors.ts";
import { readUserFile } from "../platform/fs.ts";
import type { ParsedArgs } from "./args.ts";
import { openVault } from "./common.ts";
import { EXIT, factLine, print, printJson } from "./output.ts";

/** Audits a Palyra config file; exit 3 with `--strict` when a finding blocks. */
export async function run(args: ParsedArgs): Promise<number> {
  const explicit = typeof args.values.path === "string" ? args.values.path : undefined;
  const path = await findConfigFile(explicit);
  const text = await readConfigText(path);
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

async function readConfigText(path: string): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await readUserFile(path);
  } catch (e) {
    const code = errnoCode(e);
    throw new VaultError(
      code === "ENOENT" ? "not_found" : "io",
      `read config file "${path}" failed (${code ?? String(e)})`,
      { hint: "pass --path with the config file" },
    );
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new VaultError("invalid_config", `read config file "${path}" failed: it is not valid UTF-8`, {
      hint: "save the file as UTF-8",
    });
  }
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
