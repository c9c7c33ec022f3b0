/**
 * The macOS Keychain backend (docs/FORMAT.md §8): generic-password items (service
 * `palyra.vault.v1`, account = object id, label `Palyra Vault Secret`,
 * password = base64 of the envelope), written by `security -i` with the
 * command on stdin so the payload never reaches argv, and verified by reading
 * it back, because that path has been seen to truncate silently.
 */
import { VaultError } from "../errors.ts";
import { fromBase64, toBase64, utf8 } from "../crypto/encoding.ts";
import { isObjectId } from "../crypto/ids.ts";
import { type CommandResult, type CommandRunner, runCommand } from "../platform/subprocess.ts";
import type { BlobBackend } from "./backend.ts";
import { ITEM_LABEL, SECRET_SERVICE_NAME } from "./linux_secret_service.ts";

/**
 * The largest envelope (in bytes) this backend stores: its base64 plus the
 * command must fit in the ~4 KB line `security -i` reads.
 */
export const MACOS_MAX_PAYLOAD_BYTES = 2_800;

/** Options of the backend; tests hand in a runner (or put a fake `security` on PATH). */
export interface MacosKeychainOptions {
  run?: CommandRunner;
  timeoutMs?: number;
}

const TOOL = "security";

/** Turns a failed `security` run into a typed error with a hint. */
export function securityError(action: string, r: CommandResult): VaultError {
  const stderr = r.stderr.trim();
  const detail = stderr === "" ? `exit ${r.code}` : `exit ${r.code}: ${stderr}`;
  if (r.code === 44 || /could not be found/i.test(stderr)) {
    return new VaultError("not_found", `${action} failed: the keychain has no such item`);
  }
  if (/User interaction is not allowed|interaction not allowed|-25308/i.test(stderr) || r.code === 36) {
    return new VaultError(
      "permission",
      `${action} failed: the keychain is locked, or this session has no user interface (SSH) (${detail})`,
      {
        hint:
          "unlock it with: security unlock-keychain ~/Library/Keychains/login.keychain-db, or use --backend encrypted_file",
      },
    );
  }
  if (/User canceled|cancelled|-128/i.test(stderr) || r.code === 128) {
    return new VaultError("permission", `${action} failed: the user cancelled the keychain prompt (${detail})`, {
      hint: "run again and allow access to the Palyra Vault item",
    });
  }
  if (/not correct|denied|not permitted|-25293|authorization/i.test(stderr) || r.code === 51) {
    return new VaultError("permission", `${action} failed: access to the keychain was denied (${detail})`, {
      hint: "allow this program in the item's access control list in Keychain Access",
    });
  }
  return new VaultError("io", `${action} failed: ${TOOL} ${detail}`);
}

/** Stores envelopes in the login keychain through the `security` command. */
export class MacosKeychainBackend implements BlobBackend {
  readonly kind = "macos_keychain";
  readonly maxPayloadBytes = MACOS_MAX_PAYLOAD_BYTES;
  readonly #run: CommandRunner;
  readonly #timeoutMs: number;

  constructor(options: MacosKeychainOptions = {}) {
    this.#run = options.run ?? runCommand;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  #check(objectId: string): string {
    if (!isObjectId(objectId)) {
      throw new VaultError("io", `use object id ${JSON.stringify(objectId)} failed: not of the form obj_<64 hex>`);
    }
    return objectId;
  }

  async #read(objectId: string, action: string): Promise<string> {
    const r = await this.#run(TOOL, ["find-generic-password", "-s", SECRET_SERVICE_NAME, "-a", objectId, "-w"], {
      timeoutMs: this.#timeoutMs,
    });
    if (r.code !== 0) throw securityError(action, r);
    return new TextDecoder().decode(r.stdout).trim();
  }

  async put(objectId: string, bytes: Uint8Array): Promise<void> {
    this.#check(objectId);
    if (bytes.length > MACOS_MAX_PAYLOAD_BYTES) {
      throw new VaultError(
        "value_too_large",
        `store object "${objectId}" failed: the keychain backend keeps at most ${MACOS_MAX_PAYLOAD_BYTES} bytes`,
        {
          hint: "use the encrypted_file backend for larger values",
        },
      );
    }
    const payload = toBase64(bytes);
    // -U updates in place; the command (with the payload) travels on stdin, never in argv.
    const line = `add-generic-password -U -s ${SECRET_SERVICE_NAME} -a ${objectId} -l "${ITEM_LABEL}" -w ${payload}\n`;
    const action = `store object "${objectId}" in the keychain`;
    const r = await this.#run(TOOL, ["-i"], { stdin: utf8(line), timeoutMs: this.#timeoutMs });
    if (r.code !== 0 || r.stderr.trim() !== "") throw securityError(action, r);
    const back = await this.#read(objectId, `verify ${action}`);
    if (back !== payload) {
      throw new VaultError(
        "io",
        `${action} failed: reading it back gave ${back.length} characters instead of ${payload.length} (the keychain truncated it)`,
        { hint: "use the encrypted_file backend for this value" },
      );
    }
  }

  async get(objectId: string): Promise<Uint8Array> {
    this.#check(objectId);
    const text = await this.#read(objectId, `read object "${objectId}" from the keychain`);
    const bytes = fromBase64(text);
    if (bytes === undefined) {
      throw new VaultError("crypto", `read object "${objectId}" failed: the keychain item is not a base64 envelope`);
    }
    return bytes;
  }

  async delete(objectId: string): Promise<void> {
    this.#check(objectId);
    const r = await this.#run(TOOL, ["delete-generic-password", "-s", SECRET_SERVICE_NAME, "-a", objectId], {
      timeoutMs: this.#timeoutMs,
    });
    if (r.code === 0) return;
    const e = securityError(`remove object "${objectId}" from the keychain`, r);
    if (e.code !== "not_found") throw e;
  }
}
