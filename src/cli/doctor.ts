/** `palyra-secrets doctor`. */
import { diagnose, type DoctorReport } from "../doctor.ts";
import type { ParsedArgs } from "./args.ts";
import { folderOptions, maxBytes } from "./common.ts";
import { EXIT, factLine, print, printJson } from "./output.ts";

/** Reports the runtime, folders, backends and locks; reads no secret. */
export async function run(args: ParsedArgs): Promise<number> {
  const report = await diagnose({ ...folderOptions(args), maxSecretBytes: maxBytes(args) });
  if (args.values.json) await printJson(report);
  else await print(doctorText(report));
  return EXIT.ok;
}

function doctorText(r: DoctorReport): string {
  let out = factLine("doctor", [["runtime", r.runtime], ["platform", r.platform]]);
  out += factLine("doctor", [["vault_dir", r.vault.path], ["exists", r.vault.exists], ["mode", r.vault.mode ?? "-"]]);
  out += factLine("doctor", [
    ["identity_dir", r.identity.path],
    ["exists", r.identity.exists],
    ["mode", r.identity.mode ?? "-"],
    ["identity_file", r.identity.file ?? "-"],
  ]);
  out += factLine("doctor", [
    ["backend_in_use", r.backendInUse ?? "none (vault not created yet)"],
    ["layout", r.layout ?? "-"],
    ["auto_would_choose", r.autoChoice.kind],
  ]);
  for (const b of r.backends) {
    out += factLine("doctor", [["backend", b.kind], ["available", b.available], ["reason", b.reason]]);
  }
  for (const l of r.locks) {
    out += factLine("doctor", [["lock", l.path], ["holder", l.holder], ["holder_state", l.holderState], [
      "age_ms",
      l.ageMs ?? "-",
    ]]);
  }
  out += factLine("doctor", [["locks_held", r.locks.length]]);
  for (const p of r.problems) {
    out += factLine("doctor", [["problem", p.code], ["path", p.path], ["message", p.message], ["hint", p.hint]]);
  }
  out += factLine("doctor", [["problems", r.problems.length]]);
  return out;
}
