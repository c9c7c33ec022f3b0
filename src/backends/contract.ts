/**
 * The `BlobBackend` contract, checked once for every built-in backend (as
 * `@noble/ciphers` checks every cipher in one wrapper): object ids are
 * `obj_<64 hex>` before any tool or path sees them, an envelope over the
 * backend's cap is refused before anything is written, a missing object is
 * one `not_found` error, and a keychain tool's failure becomes a typed error
 * through one table per tool.
 */
import { VaultError, type VaultErrorCode } from "../errors.ts";
import { isObjectId } from "../crypto/ids.ts";
import type { CommandResult } from "../platform/subprocess.ts";
import type { BlobBackend } from "./backend.ts";

/**
 * A backend whose public methods check the contract and whose subclass
 * implements only the storage: `store`, `load` (`undefined` when there is no
 * such object) and `remove` (absent is fine).
 *
 * @internal not exported by the package: its public methods are those of
 * `BlobBackend`, which the built-in backends document.
 */
export abstract class CheckedBackend implements BlobBackend {
  /** The backend's name, shown as `Vault.backendKind`. */
  abstract readonly kind: string;
  /** The largest envelope this backend keeps, when it has a cap. */
  readonly maxPayloadBytes?: number;
  /** Where objects are kept, for messages: "the Secret Service", "the keychain", … */
  protected abstract readonly where: string;

  /** Stores an envelope under a checked object id. */
  protected abstract store(objectId: string, bytes: Uint8Array): Promise<void>;
  /** Reads an envelope, or `undefined` when there is none. */
  protected abstract load(objectId: string): Promise<Uint8Array | undefined>;
  /** Removes an envelope; absent is fine. */
  protected abstract remove(objectId: string): Promise<void>;

  /** Stores `bytes` as `objectId`, replacing what was there. */
  async put(objectId: string, bytes: Uint8Array): Promise<void> {
    checkObjectId(objectId);
    if (!(bytes instanceof Uint8Array)) throw new TypeError("store object failed: the envelope must be a Uint8Array");
    const cap = this.maxPayloadBytes;
    if (cap !== undefined && bytes.length > cap) {
      throw new VaultError(
        "value_too_large",
        `store object "${objectId}" in ${this.where} failed: this backend keeps at most ${cap} bytes`,
        { hint: "use the encrypted_file backend for larger values" },
      );
    }
    await this.store(objectId, bytes);
  }

  /** Reads `objectId`; `not_found` when there is no such object. */
  async get(objectId: string): Promise<Uint8Array> {
    checkObjectId(objectId);
    const bytes = await this.load(objectId);
    if (bytes === undefined) {
      throw new VaultError("not_found", `read object "${objectId}" failed: it is not in ${this.where}`);
    }
    return bytes;
  }

  /** Removes `objectId`; removing an absent object succeeds. */
  async delete(objectId: string): Promise<void> {
    checkObjectId(objectId);
    await this.remove(objectId);
  }
}

/** Refuses anything but `obj_<64 hex>`, which could name a path or an option of a tool. */
export function checkObjectId(objectId: string): void {
  if (!isObjectId(objectId)) {
    throw new VaultError("io", `use object id ${JSON.stringify(objectId)} failed: not of the form obj_<64 hex>`);
  }
}

/** One row of a tool's error table: when it matches, the failure is this error. */
export interface ToolErrorRule {
  /** Matches the tool's trimmed stderr and exit code. */
  readonly when: (stderr: string, code: number) => boolean;
  readonly code: VaultErrorCode;
  /** What went wrong, in words; the tool's own output follows in parentheses unless `quiet`. */
  readonly why: string;
  readonly hint?: string;
  /** Leave the tool's output out of the message. */
  readonly quiet?: boolean;
}

/** How a tool's failures read: its name, its table, and what to say when no row matches. */
export interface ToolErrors {
  readonly tool: string;
  readonly rules: readonly ToolErrorRule[];
  readonly fallbackHint?: string;
  /** Cut stderr to this many characters (a tool may print a whole script). */
  readonly maxStderrChars?: number;
}

/** Turns a failed tool run into the typed error its table names. */
export function toolError(errors: ToolErrors, action: string, r: CommandResult): VaultError {
  let stderr = r.stderr.trim();
  const max = errors.maxStderrChars;
  if (max !== undefined && stderr.length > max) stderr = stderr.slice(0, max) + " …";
  const detail = stderr === "" ? `exit ${r.code}` : `exit ${r.code}: ${stderr}`;
  for (const rule of errors.rules) {
    if (!rule.when(stderr, r.code)) continue;
    const message = `${action} failed: ${rule.why}${rule.quiet ? "" : ` (${detail})`}`;
    return new VaultError(rule.code, message, rule.hint === undefined ? {} : { hint: rule.hint });
  }
  return new VaultError(
    "io",
    `${action} failed: ${errors.tool} ${detail}`,
    errors.fallbackHint === undefined ? {} : { hint: errors.fallbackHint },
  );
}
