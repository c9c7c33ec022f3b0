/**
 * The macOS Keychain backend (docs/FORMAT.md §8): generic-password items (service
 * `palyra.vault.v1`, account = object id, label `Palyra Vault Secret`,
 * password = base64 of the envelope), written by `security -i` with the
 * command on stdin so the payload never reaches argv, and verified by reading
 * it back, because that path has been seen to truncate silently.
 */
import { VaultError } from "../errors.ts";
import { fromBase64, toBase64, utf8 } from "../crypto/encoding.ts";
import { CheckedBackend, toolError, type ToolErrors } from "./contract.ts";
import { type CommandResult, type CommandRunner, runCommand } from "../platform/subprocess.ts";
import { ITEM_LABEL, SECRET_SERVICE_NAME } from "./linux_secret_service.ts";

/**
 * The largest envelope (in bytes) this backend stores: its base64 plus the
 * command must fit in the ~4 KB line `security -i` reads.
 */
export const MACOS_MAX_PAYLOAD_BYTES = 2_800;

/** Options of the backend; tests hand in a runner (or put a fake `security` on PATH). */
export interface MacosKeychainOptions {
  /** Runs `security`. Default: the library's runner (no shell; the payload only on stdin and stdout). */
  run?: CommandRunner;
  /** How long one `security` run may take before it is killed, in milliseconds. Default 10 000. */
  timeoutMs?: number;
}

const TOOL = "security";

/** How `security`'s failures read. */
const SECURITY_ERRORS: ToolErrors = {
  tool: TOOL,
  rules: [
    {
      when: (e, code) => code === 44 || /could not be found/i.test(e),
      code: "not_found",
      why: "the keychain has no such item",
      quiet: true,
    },
    {
      when: (e, code) => /User interaction is not allowed|interaction not allowed|-25308/i.test(e) || code === 36,
      code: "permission",
      why: "the keychain is locked, or this session has no user interface (SSH)",
      hint:
        "unlock it with: security unlock-keychain ~/Library/Keychains/login.keychain-db, or use --backend encrypted_file",
    },
    {
      when: (e, code) => /User canceled|cancelled|-128/i.test(e) || code === 128,
      code: "permission",
      why: "the user cancelled the keychain prompt",
      hint: "run again and allow access to the Palyra Vault item",
    },
    {
      when: (e, code) => /not correct|denied|not permitted|-25293|authorization/i.test(e) || code === 51,
      code: "permission",
      why: "access to the keychain was denied",
      hint: "allow this program in the item's access control list in Keychain Access",
    },
  ],
};

/** Turns a failed `security` run into a typed error with a hint. */
export function securityError(action: string, r: CommandResult): VaultError {
  return toolError(SECURITY_ERRORS, action, r);
}

/** Stores envelopes in the login keychain through the `security` command. */
export class MacosKeychainBackend extends CheckedBackend {
  /** Always `"macos_keychain"`. */
  readonly kind = "macos_keychain";
  /** `MACOS_MAX_PAYLOAD_BYTES` (2 800): a larger envelope is `value_too_large` before anything runs. */
  override readonly maxPayloadBytes: number = MACOS_MAX_PAYLOAD_BYTES;
  /** Names the store in error messages. */
  protected readonly where = "the keychain";
  readonly #run: CommandRunner;
  readonly #timeoutMs: number;

  /** Runs nothing yet: the first operation starts `security`. */
  constructor(options: MacosKeychainOptions = {}) {
    super();
    this.#run = options.run ?? runCommand;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  async #read(objectId: string, action: string): Promise<string> {
    const r = await this.#run(TOOL, ["find-generic-password", "-s", SECRET_SERVICE_NAME, "-a", objectId, "-w"], {
      timeoutMs: this.#timeoutMs,
    });
    if (r.code !== 0) throw securityError(action, r);
    return new TextDecoder().decode(r.stdout).trim();
  }

  /**
   * Adds or updates the item (`add-generic-password -U`, sent to `security -i`
   * on stdin), then reads it back: a truncated item is an `io` error, never a
   * stored value.
   */
  protected async store(objectId: string, bytes: Uint8Array): Promise<void> {
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

  /** Reads the item's password: `undefined` when there is no such item, `crypto` when it is not base64. */
  protected async load(objectId: string): Promise<Uint8Array | undefined> {
    let text: string;
    try {
      text = await this.#read(objectId, `read object "${objectId}" from the keychain`);
    } catch (e) {
      if (VaultError.is(e, "not_found")) return undefined;
      throw e;
    }
    const bytes = fromBase64(text);
    if (bytes === undefined) {
      throw new VaultError("crypto", `read object "${objectId}" failed: the keychain item is not a base64 envelope`);
    }
    return bytes;
  }

  /** Deletes the item (`delete-generic-password`); no such item is fine. */
  protected async remove(objectId: string): Promise<void> {
    const r = await this.#run(TOOL, ["delete-generic-password", "-s", SECRET_SERVICE_NAME, "-a", objectId], {
      timeoutMs: this.#timeoutMs,
    });
    if (r.code === 0) return;
    const e = securityError(`remove object "${objectId}" from the keychain`, r);
    if (e.code !== "not_found") throw e;
  }
}
