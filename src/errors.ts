/**
 * The one error class of the library. Every failure carries a stable `code`;
 * messages name the failed action first, quote the values involved and say how
 * to fix the problem. No message ever carries secret bytes.
 */

/** Stable error codes. Callers branch on these, never on message text. */
export type VaultErrorCode =
  | "not_found"
  | "invalid_scope"
  | "invalid_key"
  | "invalid_ref"
  | "value_too_large"
  | "backend_unavailable"
  | "crypto"
  | "io"
  | "lock_timeout"
  | "permission"
  | "identity"
  | "corrupt"
  | "invalid_config"
  | "conflict";

const CODES: ReadonlySet<string> = new Set<VaultErrorCode>([
  "not_found",
  "invalid_scope",
  "invalid_key",
  "invalid_ref",
  "value_too_large",
  "backend_unavailable",
  "crypto",
  "io",
  "lock_timeout",
  "permission",
  "identity",
  "corrupt",
  "invalid_config",
  "conflict",
]);

/**
 * Error thrown by every `@palyra/vault` operation.
 *
 * @example
 * ```ts
 * import { Vault, VaultError } from "@palyra/vault";
 * const vault = await Vault.open();
 * try {
 *   await vault.getSecret("global", "missing_key");
 * } catch (e) {
 *   if (e instanceof VaultError && e.code === "not_found") console.log("not set yet");
 *   else throw e;
 * }
 * ```
 */
export class VaultError extends Error {
  /** Stable machine-readable code. */
  readonly code: VaultErrorCode;
  /** A short suggestion of how to fix the problem, when there is one. */
  readonly hint: string | undefined;

  /**
   * `message` names the failed action first (`get secret "x" in scope "global" failed: …`);
   * `options.cause` becomes the standard `Error.cause`.
   */
  constructor(
    code: VaultErrorCode,
    message: string,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "VaultError";
    this.code = code;
    this.hint = options.hint;
  }

  /** True when `value` is a `VaultError`, optionally with the given code. */
  static is(value: unknown, code?: VaultErrorCode): value is VaultError {
    return value instanceof VaultError && (code === undefined || value.code === code);
  }
}

/** True when `code` is one of the stable error codes. */
export function isVaultErrorCode(code: string): code is VaultErrorCode {
  return CODES.has(code);
}

/** The errno-style code of a runtime error (`ENOENT`, `EEXIST`, …), if any. */
export function errnoCode(e: unknown): string | undefined {
  if (typeof e === "object" && e !== null && "code" in e) {
    const c = (e as { code: unknown }).code;
    if (typeof c === "string") return c;
  }
  return undefined;
}

/**
 * Wraps a runtime file-system error into a `VaultError`: symbolic-link and
 * access errors become `permission`, everything else `io` (a full or
 * read-only file system, or an overlay that cannot rename, says so, with
 * what to do). Already-typed errors pass through unchanged.
 */
export function fsError(action: string, path: string, e: unknown): VaultError {
  if (e instanceof VaultError) return e;
  const errno = errnoCode(e);
  const detail = errno ?? (e instanceof Error ? e.message : String(e));
  if (errno === "ELOOP" || errno === "EMLINK") {
    return new VaultError("permission", `${action} failed: "${path}" is a symbolic link (${detail})`, {
      hint: "remove the symbolic link; the vault never follows links inside its folder",
      cause: e,
    });
  }
  const name = (e as { name?: unknown } | null)?.name;
  if (name === "NotCapable" || name === "PermissionDenied") {
    // A Deno permission that was not granted.
    return new VaultError("permission", `${action} failed: the runtime was not allowed to access "${path}"`, {
      hint: "grant Deno the permissions listed in the README (--allow-read, --allow-write, …)",
      cause: e,
    });
  }
  if (errno === "EACCES" || errno === "EPERM") {
    return new VaultError("permission", `${action} failed: access to "${path}" was denied (${detail})`, {
      hint: "check that the folder belongs to the current user",
      cause: e,
    });
  }
  const refusal = errno === undefined ? undefined : REFUSALS[errno];
  if (refusal !== undefined) {
    return new VaultError("io", `${action} failed for "${path}": ${refusal[0]} (${errno})`, {
      hint: refusal[1],
      cause: e,
    });
  }
  return new VaultError("io", `${action} failed for "${path}" (${detail})`, { cause: e });
}

/** Errors of a file system that will not take a write, whatever is retried: what the message says, and the hint. */
const REFUSALS: Record<string, readonly [string, string]> = {
  ENOSPC: ["the file system is full", "free space on the file system that holds it, then run the command again"],
  EDQUOT: [
    "the disk quota is used up",
    "free space on the file system that holds it (or have the quota raised), then run the command again",
  ],
  EROFS: [
    "the file system is read-only",
    "mount it read-write, or keep the vault and identity folders on a writable file system (--vault-dir, " +
    "--identity-dir)",
  ],
  // rename(2) within one folder fails so only on an overlay file system whose lower layer holds the folder (a vault
  // built into a container image).
  EXDEV: [
    "the file system cannot rename it in place (an overlay file system's lower layer, as in a container image)",
    "copy the vault folder to a plain file system (cp -a), run the command there, and copy it back",
  ],
};
