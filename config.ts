/**
 * `@palyra/vault/config`: the config audit and `configure`, on their own, for
 * tools that check or rewrite a Palyra config file (README, "Config audit").
 * The TOML parser is loaded the first time a file is parsed.
 *
 * @example
 * ```ts
 * import { auditConfig } from "@palyra/vault/config";
 * import { Vault } from "@palyra/vault";
 * const report = await auditConfig('openai_api_key = "sk-live-0123456789abcdefghij"', {
 *   path: "palyra.toml",
 *   vault: () => Vault.open(),
 * });
 * console.log(report.summary.blocking_findings);
 * ```
 *
 * @module
 */
export {
  auditConfig,
  type AuditFinding,
  type AuditOptions,
  type AuditReference,
  type AuditReport,
  type AuditSummary,
  type FindingCode,
  type FindingSeverity,
  orphanSecrets,
  type SecretLister,
} from "./src/config/audit.ts";
export {
  configureField,
  type ConfigureOptions,
  type ConfigureResult,
  type SecretStore,
} from "./src/config/configure.ts";
export {
  CREDENTIAL_PATTERNS,
  type CredentialPattern,
  detectCredential,
  isSensitiveField,
  SENSITIVE_FIELD_SUFFIXES,
} from "./src/config/sensitive.ts";
export { findConfigFile } from "./src/config/locate.ts";
