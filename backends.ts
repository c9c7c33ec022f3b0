/**
 * `@palyra/vault/backends`: the storage backends a vault can keep its sealed
 * objects in, for a program that builds one itself and passes it as
 * `Vault.open({ backend })` (README, "Backends"). A vault opened by kind
 * loads only the backend it uses.
 *
 * @example
 * ```ts
 * import { MemoryBackend } from "@palyra/vault/backends";
 * import { Vault } from "@palyra/vault";
 * const vault = await Vault.open({
 *   root: "/tmp/vault-test",
 *   backend: new MemoryBackend(),
 *   kek: crypto.getRandomValues(new Uint8Array(32)),
 * });
 * ```
 *
 * @module
 */
export { BACKEND_KINDS, type BackendKind, type BlobBackend } from "./src/backends/backend.ts";
export { MemoryBackend } from "./src/backends/memory.ts";
export { EncryptedFileBackend } from "./src/backends/encrypted_file.ts";
export { LinuxSecretServiceBackend, type LinuxSecretServiceOptions } from "./src/backends/linux_secret_service.ts";
export { MacosKeychainBackend, type MacosKeychainOptions } from "./src/backends/macos_keychain.ts";
export type { CommandResult, CommandRunner, RunOptions } from "./src/platform/subprocess.ts";
export type { BackendAvailability } from "./src/backends/select.ts";
