/**
 * The storage interface for envelopes (docs/FORMAT.md §8). Backends only ever see
 * sealed envelopes, never plaintext.
 */

/** The backends that ship with the library. */
export type BackendKind = "encrypted_file" | "macos_keychain" | "windows_dpapi" | "linux_secret_service";

/** Every built-in backend kind. */
export const BACKEND_KINDS: readonly BackendKind[] = [
  "encrypted_file",
  "macos_keychain",
  "windows_dpapi",
  "linux_secret_service",
];

/**
 * Where envelopes are kept. Implement it to plug in your own store.
 *
 * - `get` of a missing object throws `VaultError` with code `not_found`;
 * - `delete` of a missing object succeeds;
 * - `maxPayloadBytes`, when set, is the largest envelope the store can keep:
 *   the vault refuses larger values with `value_too_large` before writing.
 */
export interface BlobBackend {
  /** The backend's name, shown as `Vault.backendKind` (a `BackendKind` for the built-in ones). */
  readonly kind: string;
  /** The largest envelope the store can keep, in bytes; omit when there is no limit. */
  readonly maxPayloadBytes?: number;
  /**
   * Stores `bytes` (one sealed envelope, docs/FORMAT.md §3) under `objectId`
   * (`obj_<64 hex>`, docs/FORMAT.md §1), replacing what was there.
   */
  put(objectId: string, bytes: Uint8Array): Promise<void>;
  /** The bytes stored under `objectId`; a `VaultError` with code `not_found` when there are none. */
  get(objectId: string): Promise<Uint8Array>;
  /** Removes the object; succeeds when there is none. */
  delete(objectId: string): Promise<void>;
}
