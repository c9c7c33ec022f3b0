/**
 * The Linux Secret Service backend (docs/FORMAT.md §8): envelopes as items of the
 * user's keyring (gnome-keyring, KeePassXC, …) through `secret-tool`, with
 * attributes `service palyra.vault.v1` and `key <object id>`. The payload
 * (base64 of the envelope) goes through stdin and stdout only.
 */
import { VaultError } from "../errors.ts";
import { fromBase64, toBase64, utf8 } from "../crypto/encoding.ts";
import { CheckedBackend, toolError, type ToolErrors } from "./contract.ts";
import { type CommandResult, type CommandRunner, runCommand } from "../platform/subprocess.ts";

/** The `service` attribute of every item. */
export const SECRET_SERVICE_NAME = "palyra.vault.v1";
/** The label every item shows in keyring managers. */
export const ITEM_LABEL = "Palyra Vault Secret";

/**
 * The largest envelope (in bytes) this backend stores. `secret-tool store`
 * keeps at most 8 191 characters of its input — and exits 0 after printing
 * "password is too long" — so the base64 of the envelope must stay below that.
 */
export const SECRET_TOOL_MAX_PAYLOAD_BYTES = 6_000;

/** Options of the backend; tests hand in a fake runner or their own service name. */
export interface LinuxSecretServiceOptions {
  /** Runs `secret-tool`. Default: the library's runner (no shell; the payload only on stdin and stdout). */
  run?: CommandRunner;
  /** The `service` attribute (default `palyra.vault.v1`). */
  service?: string;
  /** How long one `secret-tool` run may take before it is killed, in milliseconds. Default 10 000. */
  timeoutMs?: number;
}

const TOOL = "secret-tool";

/** How `secret-tool`'s failures read. */
const SECRET_TOOL_ERRORS: ToolErrors = {
  tool: TOOL,
  rules: [
    {
      when: (e) =>
        /autolaunch D-Bus|Could not connect|DBUS_SESSION_BUS_ADDRESS|Failed to connect to|Unable to autolaunch/i.test(
          e,
        ),
      code: "backend_unavailable",
      why: "there is no D-Bus session",
      hint:
        "run inside a desktop session or set DBUS_SESSION_BUS_ADDRESS; on a headless server use --backend encrypted_file",
    },
    {
      when: (e) => /not provided by any \.service files|ServiceUnknown|org\.freedesktop\.secrets/i.test(e),
      code: "backend_unavailable",
      why: "no Secret Service is running",
      hint: "start gnome-keyring (or another Secret Service), or use --backend encrypted_file",
    },
    {
      when: (e) => /locked|prompt|dismissed|cancel|collection\/login|Cannot create an item/i.test(e),
      code: "permission",
      why: "the keyring is locked",
      hint: "unlock your keyring (log in to the desktop session, or run gnome-keyring-daemon --unlock)",
    },
  ],
};

/** Turns a failed `secret-tool` run into a typed error with a hint. */
export function secretToolError(action: string, r: CommandResult): VaultError {
  return toolError(SECRET_TOOL_ERRORS, action, r);
}

/** Stores envelopes in the Secret Service through `secret-tool`. */
export class LinuxSecretServiceBackend extends CheckedBackend {
  /** Always `"linux_secret_service"`. */
  readonly kind = "linux_secret_service";
  /** `SECRET_TOOL_MAX_PAYLOAD_BYTES` (6 000): a larger envelope is `value_too_large` before anything runs. */
  override readonly maxPayloadBytes: number = SECRET_TOOL_MAX_PAYLOAD_BYTES;
  /** Names the store in error messages. */
  protected readonly where = "the Secret Service";
  readonly #run: CommandRunner;
  readonly #service: string;
  readonly #timeoutMs: number;

  /** Runs nothing yet: the first operation starts `secret-tool` (`probe` tells whether it can work here). */
  constructor(options: LinuxSecretServiceOptions = {}) {
    super();
    this.#run = options.run ?? runCommand;
    this.#service = options.service ?? SECRET_SERVICE_NAME;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  #attributes(objectId: string): string[] {
    return ["service", this.#service, "key", objectId];
  }

  /**
   * Stores the base64 of `bytes` with `secret-tool store`, then reads it
   * back: an item the tool shortened is an `io` error, never a stored value.
   */
  protected async store(objectId: string, bytes: Uint8Array): Promise<void> {
    const action = `store object "${objectId}" in the Secret Service`;
    const payload = toBase64(bytes);
    const args = ["store", `--label=${ITEM_LABEL}`, ...this.#attributes(objectId)];
    const r = await this.#run(TOOL, args, { stdin: utf8(payload), timeoutMs: this.#timeoutMs });
    // secret-tool reports some failures (a truncated value) on stderr with exit 0.
    if (r.code !== 0 || r.stderr.trim() !== "") throw secretToolError(action, r);
    // Verify by reading back: a silently shortened item must never count as stored.
    const back = await this.#run(TOOL, ["lookup", ...this.#attributes(objectId)], { timeoutMs: this.#timeoutMs });
    if (back.code !== 0) throw secretToolError(`verify ${action}`, back);
    const got = new TextDecoder().decode(back.stdout).trim();
    if (got !== payload) {
      throw new VaultError(
        "io",
        `${action} failed: reading it back gave ${got.length} characters instead of ${payload.length}`,
        {
          hint: "use the encrypted_file backend for this value",
        },
      );
    }
  }

  /** Reads the item with `secret-tool lookup`: `undefined` when there is none, `crypto` when it is not base64. */
  protected async load(objectId: string): Promise<Uint8Array | undefined> {
    const r = await this.#run(TOOL, ["lookup", ...this.#attributes(objectId)], { timeoutMs: this.#timeoutMs });
    // secret-tool says nothing and exits 1 when no item matches.
    if (r.code === 1 && r.stderr.trim() === "" && r.stdout.length === 0) return undefined;
    if (r.code !== 0) throw secretToolError(`read object "${objectId}" from the Secret Service`, r);
    const bytes = fromBase64(new TextDecoder().decode(r.stdout).trim());
    if (bytes === undefined) {
      throw new VaultError("crypto", `read object "${objectId}" failed: the keyring item is not a base64 envelope`);
    }
    return bytes;
  }

  /** Removes the item with `secret-tool clear`; no such item is fine. */
  protected async remove(objectId: string): Promise<void> {
    const r = await this.#run(TOOL, ["clear", ...this.#attributes(objectId)], { timeoutMs: this.#timeoutMs });
    if (r.code === 0 || (r.code === 1 && r.stderr.trim() === "")) return; // nothing matched: already gone
    throw secretToolError(`remove object "${objectId}" from the Secret Service`, r);
  }

  /**
   * Whether a Secret Service answers here within `timeoutMs`: `secret-tool`
   * is installed and a lookup of an item that does not exist comes back
   * cleanly.
   */
  static async probe(
    run: CommandRunner = runCommand,
    // Generous: a busy machine answers slowly, and `auto` records its choice for good.
    timeoutMs = 10_000,
  ): Promise<{ available: boolean; reason: string }> {
    try {
      const r = await run(TOOL, ["lookup", "service", SECRET_SERVICE_NAME, "key", "palyra-probe"], { timeoutMs });
      if (r.code === 0 || (r.code === 1 && r.stderr.trim() === "")) {
        return { available: true, reason: "a Secret Service answered" };
      }
      return { available: false, reason: secretToolError("probe the Secret Service", r).message };
    } catch (e) {
      return { available: false, reason: e instanceof Error ? e.message : String(e) };
    }
  }
}
