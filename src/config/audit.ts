/**
 * The configuration audit (SPEC §8): plaintext secrets, strings shaped like
 * known credentials, and `*_vault_ref` fields checked against the vault.
 * Findings never carry the plaintext value.
 */
import { VaultError } from "../errors.ts";
import { formatScope, parseVaultRef } from "../scope.ts";
import { detectCredential, isSensitiveField, VAULT_REF_SUFFIX } from "./sensitive.ts";
import { type ConfigField, parseConfigFields } from "./toml.ts";

/** How serious a finding is. */
export type FindingSeverity = "blocking" | "warning" | "info";

/** Stable finding codes. */
export type FindingCode =
  | "plaintext_secret"
  | "known_credential"
  | "invalid_vault_ref"
  | "missing_vault_ref"
  | "unchecked_vault_ref"
  | "resolved_vault_ref";

/** One finding, located in the file. */
export interface AuditFinding {
  file: string;
  line: number;
  column: number;
  field: string;
  severity: FindingSeverity;
  code: FindingCode;
  message: string;
  remediation: string;
}

/** One `*_vault_ref` field and what it resolved to. */
export interface AuditReference {
  field: string;
  reference: string;
  scope: string | null;
  key: string | null;
  status: "resolved" | "missing" | "invalid" | "unchecked";
}

/** The counts Palyra reports. */
export interface AuditSummary {
  total_references: number;
  resolved_references: number;
  blocking_findings: number;
  warning_findings: number;
  info_findings: number;
}

/** The result of an audit. */
export interface AuditReport {
  path: string;
  summary: AuditSummary;
  findings: AuditFinding[];
  references: AuditReference[];
}

/** What the audit needs to know whether a secret exists. */
export interface SecretLister {
  listSecrets(scope: string): Promise<Array<{ key: string }>>;
}

/** Options of `auditConfig`. */
export interface AuditOptions {
  /** The file name to report in findings. */
  path: string;
  /**
   * The vault to resolve references against, or a function that opens it
   * (called only when the file has references). When it cannot be opened,
   * references are reported as `unchecked` warnings.
   */
  vault?: SecretLister | (() => Promise<SecretLister>);
  /** How the remediation commands should name the file (`--path …`); omit for the default file. */
  pathArgument?: string;
}

/** Shell-quotes an argument when it needs it. */
function shellArg(text: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

/** A vault key suggested for a field: its name, reduced to the key alphabet. */
export function suggestKey(field: ConfigField): string {
  const base = field.segments.map(String).slice(-1)[0]!.toLowerCase().replace(/[^a-z0-9._-]+/g, "_");
  const indexed = typeof field.segments.at(-1) === "number" ? `${field.name.toLowerCase()}_${base}` : base;
  return (indexed.replace(/^_+|_+$/g, "") || "secret").slice(0, 128);
}

/**
 * Audits TOML text.
 *
 * @example
 * ```ts
 * import { auditConfig, Vault } from "@palyra/vault";
 * const text = await Deno.readTextFile("palyra.toml");
 * const report = await auditConfig(text, { path: "palyra.toml", vault: () => Vault.open() });
 * if (report.summary.blocking_findings > 0) Deno.exit(3);
 * ```
 */
export async function auditConfig(text: string, options: AuditOptions): Promise<AuditReport> {
  const file = options.path;
  const fields = parseConfigFields(text, file);
  const findings: AuditFinding[] = [];
  const references: AuditReference[] = [];
  const pathArg = options.pathArgument === undefined ? "" : ` --path ${shellArg(options.pathArgument)}`;
  const at = (f: ConfigField) => ({ file, line: f.line, column: f.column, field: f.path });

  let lister: SecretLister | undefined;
  let listerError: string | undefined;
  const keysByScope = new Map<string, Set<string>>();
  const exists = async (scope: string, key: string): Promise<boolean | undefined> => {
    if (lister === undefined && listerError === undefined) {
      try {
        lister = typeof options.vault === "function" ? await options.vault() : options.vault;
        if (lister === undefined) listerError = "no vault was given";
      } catch (e) {
        listerError = e instanceof VaultError ? `${e.code}: ${e.message}` : String(e);
      }
    }
    if (lister === undefined) return undefined;
    let keys = keysByScope.get(scope);
    if (keys === undefined) {
      keys = new Set((await lister.listSecrets(scope)).map((m) => m.key));
      keysByScope.set(scope, keys);
    }
    return keys.has(key);
  };

  for (const f of fields) {
    const isRef = typeof f.segments.at(-1) === "string" && f.name.toLowerCase().endsWith(VAULT_REF_SUFFIX);
    if (isRef) {
      const shown = f.value ?? "";
      if (f.value === undefined) {
        references.push({ field: f.path, reference: "", scope: null, key: null, status: "invalid" });
        findings.push({
          ...at(f),
          severity: "blocking",
          code: "invalid_vault_ref",
          message: `${f.path} must be a string reference like "global/openai_api_key"`,
          remediation: `set ${f.path} = "<scope>/<key>", e.g. "global/${f.name.slice(0, -VAULT_REF_SUFFIX.length)}"`,
        });
        continue;
      }
      let scope: string;
      let key: string;
      try {
        const ref = parseVaultRef(f.value);
        scope = formatScope(ref.scope);
        key = ref.key;
      } catch (e) {
        references.push({ field: f.path, reference: shown, scope: null, key: null, status: "invalid" });
        findings.push({
          ...at(f),
          severity: "blocking",
          code: "invalid_vault_ref",
          message: `${f.path} is not a valid vault reference: ${(e as Error).message}`,
          remediation: `fix the reference: [vault://]<scope>/<key>, e.g. "global/openai_api_key"`,
        });
        continue;
      }
      const found = await exists(scope, key);
      if (found === undefined) {
        references.push({ field: f.path, reference: shown, scope, key, status: "unchecked" });
        findings.push({
          ...at(f),
          severity: "warning",
          code: "unchecked_vault_ref",
          message:
            `${f.path} names ${scope}/${key}, which could not be checked: the vault did not open (${listerError})`,
          remediation: "palyra-secrets doctor",
        });
      } else if (found) {
        references.push({ field: f.path, reference: shown, scope, key, status: "resolved" });
        findings.push({
          ...at(f),
          severity: "info",
          code: "resolved_vault_ref",
          message: `${f.path} resolves to ${scope}/${key}`,
          remediation: "none needed",
        });
      } else {
        references.push({ field: f.path, reference: shown, scope, key, status: "missing" });
        findings.push({
          ...at(f),
          severity: "blocking",
          code: "missing_vault_ref",
          message: `${f.path} names ${scope}/${key}, which is not in the vault`,
          remediation: `palyra-secrets set ${shellArg(scope)} ${key}`,
        });
      }
      continue;
    }
    if (f.value === undefined || f.value.length === 0) continue;
    const credential = detectCredential(f.value);
    const sensitive = typeof f.segments.at(-1) === "string" && isSensitiveField(f.name);
    if (!sensitive && credential === undefined) continue;
    const key = suggestKey(f);
    const movable = f.keyRange !== undefined;
    const remediation = movable
      ? `palyra-secrets configure ${shellArg(f.path)} global ${key} --from-config${pathArg}`
      : `remove the value from ${f.path} and store it with: palyra-secrets set global ${key}`;
    const kind = credential === undefined ? "" : ` (recognised as: ${credential})`;
    findings.push({
      ...at(f),
      severity: "blocking",
      code: sensitive ? "plaintext_secret" : "known_credential",
      message: `${f.path} holds a plaintext ${sensitive ? "secret" : "credential"}${kind}`,
      remediation,
    });
  }

  const count = (s: FindingSeverity) => findings.filter((x) => x.severity === s).length;
  return {
    path: file,
    summary: {
      total_references: references.length,
      resolved_references: references.filter((r) => r.status === "resolved").length,
      blocking_findings: count("blocking"),
      warning_findings: count("warning"),
      info_findings: count("info"),
    },
    findings,
    references,
  };
}
