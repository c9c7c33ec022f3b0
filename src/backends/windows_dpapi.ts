/**
 * The Windows DPAPI backend (SPEC §6): each envelope is additionally
 * protected with `ProtectedData.Protect` (CurrentUser scope, the object id as
 * entropy) and kept in `objects_dpapi/obj_…`, replaced atomically like the
 * file backend. PowerShell runs a constant script; the payload travels only
 * on stdin and stdout (no -EncodedCommand, which security products flag).
 */
import { join } from "node:path";
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { fromBase64, toBase64, utf8 } from "../crypto/encoding.ts";
import { isObjectId } from "../crypto/ids.ts";
import type { FileSystem } from "../platform/fs.ts";
import { type CommandResult, type CommandRunner, runCommand } from "../platform/subprocess.ts";
import { secureDir } from "../folders.ts";
import type { BlobBackend } from "./backend.ts";

/**
 * The constant PowerShell script. Reads three lines from stdin — `protect` or
 * `unprotect`, the entropy, the padded base64 input — and writes padded
 * base64 to stdout. Exit 3 is a DPAPI (cryptographic) failure.
 */
export const DPAPI_SCRIPT = [
  "$ErrorActionPreference = 'Stop'",
  "Add-Type -AssemblyName System.Security",
  "$mode = [Console]::In.ReadLine()",
  "$entropy = [Text.Encoding]::UTF8.GetBytes([Console]::In.ReadLine())",
  "$data = [Convert]::FromBase64String([Console]::In.ReadLine())",
  "$scope = [Security.Cryptography.DataProtectionScope]::CurrentUser",
  "try {",
  "  if ($mode -eq 'protect') { $out = [Security.Cryptography.ProtectedData]::Protect($data, $entropy, $scope) }",
  "  elseif ($mode -eq 'unprotect') { $out = [Security.Cryptography.ProtectedData]::Unprotect($data, $entropy, $scope) }",
  "  else { [Console]::Error.WriteLine('palyra: unknown mode'); exit 2 }",
  "  [Console]::Out.Write([Convert]::ToBase64String($out))",
  "} catch [Security.Cryptography.CryptographicException] {",
  "  [Console]::Error.WriteLine('palyra: cryptographic error: ' + $_.Exception.Message); exit 3",
  "}",
].join("; ");

/** The powershell arguments: always exactly these. */
export const DPAPI_ARGS: readonly string[] = ["-NoProfile", "-NonInteractive", "-Command", DPAPI_SCRIPT];

/** Options of the backend. */
export interface WindowsDpapiOptions {
  run?: CommandRunner;
  timeoutMs?: number;
}

const padded = (b: Uint8Array) => {
  const s = toBase64(b);
  return s + "=".repeat((4 - (s.length % 4)) % 4);
};

/** Turns a failed powershell run into a typed error with a hint. */
export function dpapiError(action: string, r: CommandResult): VaultError {
  const stderr = r.stderr.trim();
  const detail = stderr === "" ? `exit ${r.code}` : `exit ${r.code}: ${stderr}`;
  if (r.code === 3 || /cryptographic/i.test(stderr)) {
    return new VaultError("crypto", `${action} failed: DPAPI could not unprotect it (${detail})`, {
      hint: "DPAPI data opens only for the Windows user (and machine) that protected it",
    });
  }
  if (/access is denied|unauthorized|denied/i.test(stderr)) {
    return new VaultError("permission", `${action} failed: access was denied (${detail})`, {
      hint: "run as the Windows user that owns the vault",
    });
  }
  if (/cancel/i.test(stderr)) {
    return new VaultError("permission", `${action} failed: the user cancelled (${detail})`);
  }
  return new VaultError("io", `${action} failed: powershell ${detail}`);
}

/** Envelopes protected by DPAPI, in `objects_dpapi/` under the vault root. */
export class WindowsDpapiBackend implements BlobBackend {
  readonly kind = "windows_dpapi";
  readonly #dir: string;
  readonly #fs: FileSystem;
  readonly #run: CommandRunner;
  readonly #timeoutMs: number;

  constructor(root: string, fs: FileSystem, options: WindowsDpapiOptions = {}) {
    this.#dir = join(root, "objects_dpapi");
    this.#fs = fs;
    this.#run = options.run ?? runCommand;
    this.#timeoutMs = options.timeoutMs ?? 20_000;
  }

  #pathOf(objectId: string): string {
    if (!isObjectId(objectId)) {
      throw new VaultError("io", `use object id ${JSON.stringify(objectId)} failed: not of the form obj_<64 hex>`);
    }
    return join(this.#dir, objectId);
  }

  async #dpapi(mode: "protect" | "unprotect", objectId: string, data: Uint8Array): Promise<Uint8Array> {
    const input = utf8(`${mode}\n${objectId}\n${padded(data)}\n`);
    const action = `${mode} object "${objectId}" with DPAPI`;
    const r = await this.#run("powershell", DPAPI_ARGS, { stdin: input, timeoutMs: this.#timeoutMs });
    if (r.code !== 0) throw dpapiError(action, r);
    const out = fromBase64(new TextDecoder().decode(r.stdout).trim().replace(/=+$/, ""));
    if (out === undefined) throw new VaultError("io", `${action} failed: powershell did not print base64`);
    return out;
  }

  async put(objectId: string, bytes: Uint8Array): Promise<void> {
    const path = this.#pathOf(objectId);
    const protectedBytes = await this.#dpapi("protect", objectId, bytes);
    await secureDir(this.#fs, this.#dir, "DPAPI objects folder");
    try {
      await this.#fs.writeFileAtomic(path, protectedBytes);
    } catch (e) {
      throw fsError("write object", path, e);
    }
  }

  async get(objectId: string): Promise<Uint8Array> {
    const path = this.#pathOf(objectId);
    let stored: Uint8Array;
    try {
      stored = await this.#fs.readFile(path);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") {
        throw new VaultError("not_found", `read object "${objectId}" failed: it does not exist`);
      }
      throw fsError("read object", path, e);
    }
    return await this.#dpapi("unprotect", objectId, stored);
  }

  async delete(objectId: string): Promise<void> {
    const path = this.#pathOf(objectId);
    try {
      await this.#fs.remove(path);
    } catch (e) {
      throw fsError("remove object", path, e);
    }
  }
}
