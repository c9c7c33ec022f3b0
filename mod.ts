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
  type DeviceInfo,
  deviceRecipient,
  type GetOptions,
  type MigrateOptions,
  migrateVault,
  type PutOptions,
  type PutResult,
  type RewrapProgress,
  type SecretMetadata,
  Vault,
  type VaultChange,
  type VaultHost,
  type VaultOptions,
} from "./src/vault.ts";
export type { FileInfo, FileSystem } from "./src/platform/fs.ts";
export type { MigrateResult } from "./src/store/migrate.ts";
export type { LayoutName } from "./src/store/layout.ts";
export type { CipherEngine } from "./src/crypto/envelope_async.ts";
export { VaultError, type VaultErrorCode } from "./src/errors.ts";
export { SensitiveBytes } from "./src/crypto/sensitive.ts";
export {
  ageRecipientTypes,
  EXPORT_FORMAT,
  type ExportOptions,
  type ExportResult,
  exportVault,
  type ImportConflict,
  type ImportOptions,
  type ImportResult,
  importVault,
} from "./src/export.ts";
export {
  checkVault,
  type FsckCode,
  type FsckFinding,
  type FsckOptions,
  type FsckRepair,
  type FsckReport,
} from "./src/fsck.ts";
export { type RekeyOptions, type RekeyResult, rekeyVault } from "./src/rekey.ts";
export { type EnvReference, parseEnvAssignment, parseEnvFile, ResolvedEnv, resolveEnv } from "./src/resolve_env.ts";
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
export * from "./config.ts";
export * from "./backends.ts";
export { VERSION } from "./src/version.ts";
export {
  diagnose,
  type DoctorOptions,
  type DoctorProblem,
  type DoctorReport,
  type FolderReport,
  type LockReport,
} from "./src/doctor.ts";
