/**
 * The Linux Secret Service backend (docs/FORMAT.md §8): envelopes as items of the
 * user's keyring (gnome-keyring, KeePassXC, …) through `secret-tool`, with
 * attributes `service palyra.vault.v1` and `key <object id>`. The payload
 * (base64 of the envelope) goes through stdin and stdout only.
 */
import { VaultError } from "../errors.ts";
import { fromBase64, toBase64, utf8 } from "../crypto/encoding.ts";
import { isObjectId } from "../crypto/ids.ts";
import { type CommandResult, type CommandRunner, runCommand } from "../platform/subprocess.ts";
import type { BlobBackend } from "./backend.ts";

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
  run?: CommandRunner;
  /** The `service` attribute (default `palyra.vault.v1`). */
  service?: string;
  timeoutMs?: number;
}

const TOOL = "secret-tool";

/** Turns a failed `secret-tool` run into a typed error with a hint. */
export function secretToolError(action: string, r: CommandResult): VaultError {
  const stderr = r.stderr.trim();
  const detail = stderr === "" ? `exit ${r.code}` : `exit ${r.code}: ${stderr}`;
  if (
    /autolaunch D-Bus|Could not connect|DBUS_SESSION_BUS_ADDRESS|Failed to connect to|Unable to autolaunch/i.test(
      stderr,
    )
  ) {
    return new VaultError("backend_unavailable", `${action} failed: there is no D-Bus session (${detail})`, {
      hint:
        "run inside a desktop session or set DBUS_SESSION_BUS_ADDRESS; on a headless server use --backend encrypted_file",
    });
  }
  if (/not provided by any \.service files|ServiceUnknown|org\.freedesktop\.secrets/i.test(stderr)) {
    return new VaultError("backend_unavailable", `${action} failed: no Secret Service is running (${detail})`, {
      hint: "start gnome-keyring (or another Secret Service), or use --backend encrypted_file",
    });
  }
  if (/locked|prompt|dismissed|cancel|collection\/login|Cannot create an item/i.test(stderr)) {
    return new VaultError("permission", `${action} failed: the keyring is locked (${detail})`, {
      hint: "unlock your keyring (log in to the desktop session, or run gnome-keyring-daemon --unlock)",
    });
  }
  return new VaultError("io", `${action} failed: ${TOOL} ${detail}`);
}

/** Stores envelopes in the Secret Service through `secret-tool`. */
export class LinuxSecretServiceBackend implements BlobBackend {
  readonly kind = "linux_secret_service";
  readonly maxPayloadBytes = SECRET_TOOL_MAX_PAYLOAD_BYTES;
  readonly #run: CommandRunner;
  readonly #service: string;
  readonly #timeoutMs: number;

  constructor(options: LinuxSecretServiceOptions = {}) {
    this.#run = options.run ?? runCommand;
    this.#service = options.service ?? SECRET_SERVICE_NAME;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  #attributes(objectId: string): string[] {
    if (!isObjectId(objectId)) {
      throw new VaultError("io", `use object id ${JSON.stringify(objectId)} failed: not of the form obj_<64 hex>`);
    }
    return ["service", this.#service, "key", objectId];
  }

  async put(objectId: string, bytes: Uint8Array): Promise<void> {
    const action = `store object "${objectId}" in the Secret Service`;
    if (bytes.length > SECRET_TOOL_MAX_PAYLOAD_BYTES) {
      throw new VaultError(
        "value_too_large",
        `${action} failed: this backend keeps at most ${SECRET_TOOL_MAX_PAYLOAD_BYTES} bytes`,
        {
          hint: "use the encrypted_file backend for larger values",
        },
      );
    }
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

  async get(objectId: string): Promise<Uint8Array> {
    const r = await this.#run(TOOL, ["lookup", ...this.#attributes(objectId)], { timeoutMs: this.#timeoutMs });
    // secret-tool says nothing and exits 1 when no item matches.
    if (r.code === 1 && r.stderr.trim() === "" && r.stdout.length === 0) {
      throw new VaultError("not_found", `read object "${objectId}" failed: it is not in the Secret Service`);
    }
    if (r.code !== 0) throw secretToolError(`read object "${objectId}" from the Secret Service`, r);
    const bytes = fromBase64(new TextDecoder().decode(r.stdout).trim());
    if (bytes === undefined) {
      throw new VaultError("crypto", `read object "${objectId}" failed: the keyring item is not a base64 envelope`);
    }
    return bytes;
  }

  async delete(objectId: string): Promise<void> {
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
