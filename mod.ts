/**
 * `@palyra/vault`: an encrypted secrets vault for Deno, Bun and Node.
 *
 * Every value is sealed with a fresh data key under a device key derived from
 * the device identity, so the folder it is stored in need not be trusted.
 *
 * @example
 * ```ts
 * import { Vault } from "@palyra/vault";
 * const vault = await Vault.open();
 * await vault.putSecret("global", "openai_api_key", "sk-...");
 * using key = await vault.resolve("global/openai_api_key");
 * ```
 *
 * @module
 */
export {
  type MigrateOptions,
  migrateVault,
  type PutOptions,
  type PutResult,
  type SecretMetadata,
  Vault,
  type VaultOptions,
} from "./src/vault.ts";
export type { MigrateResult } from "./src/store/migrate.ts";
export type { LayoutName } from "./src/store/layout.ts";
export { VaultError, type VaultErrorCode } from "./src/errors.ts";
export { SensitiveBytes } from "./src/crypto/sensitive.ts";
export {
  formatScope,
  formatVaultRef,
  fromTaggedScope,
  KEY_GRAMMAR,
  parseScope,
  parseVaultRef,
  REF_GRAMMAR,
  SCOPE_GRAMMAR,
  type TaggedScope,
  toTaggedScope,
  validateKey,
  type VaultRef,
  type VaultScope,
} from "./src/scope.ts";
export { BACKEND_KINDS, type BackendKind, type BlobBackend } from "./src/backends/backend.ts";
export { MemoryBackend } from "./src/backends/memory.ts";
export {
  auditConfig,
  type AuditFinding,
  type AuditOptions,
  type AuditReference,
  type AuditReport,
  type AuditSummary,
  type FindingCode,
  type FindingSeverity,
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
export { VERSION } from "./src/version.ts";
export {
  diagnose,
  type DoctorOptions,
  type DoctorProblem,
  type DoctorReport,
  type FolderReport,
  type LockReport,
} from "./src/doctor.ts";
export type { BackendAvailability } from "./src/backends/select.ts";
export { LinuxSecretServiceBackend, type LinuxSecretServiceOptions } from "./src/backends/linux_secret_service.ts";
export { MacosKeychainBackend, type MacosKeychainOptions } from "./src/backends/macos_keychain.ts";
export type { CommandResult, CommandRunner, RunOptions } from "./src/platform/subprocess.ts";
export { EncryptedFileBackend } from "./src/backends/encrypted_file.ts";
