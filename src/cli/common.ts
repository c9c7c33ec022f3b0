/** What several commands share: the global options that open a vault, scope and key arguments, the value prompt. */
import { Vault, type VaultOptions } from "../vault.ts";
import { errnoCode, VaultError } from "../errors.ts";
import { readUserFile } from "../platform/fs.ts";
import { fromUtf8, sameBytes } from "../crypto/encoding.ts";
import { BACKEND_KINDS, type BackendKind } from "../backends/backend.ts";
import type { LayoutName } from "../store/layout.ts";
import { formatScope, parseScope, parseVaultRef, validateKey } from "../scope.ts";
import type { ParsedArgs } from "./args.ts";
import { EXIT, PROGRAM, UsageError } from "./output.ts";

const BACKEND_CHOICES = ["auto", ...BACKEND_KINDS];
const DEFAULT_MAX_BYTES = 65536;

/** `--max-bytes`, checked: a usage error when it is not a whole number. */
export function maxBytes(args: ParsedArgs): number {
  const raw = args.values["max-bytes"];
  if (raw === undefined) return DEFAULT_MAX_BYTES;
  if (typeof raw !== "string" || !/^\d{1,10}$/.test(raw) || Number(raw) < 1) {
    throw new UsageError(`--max-bytes takes a whole number of bytes (at least 1), got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

/** `--vault-dir` and `--identity-dir`, as vault options. */
export function folderOptions(args: ParsedArgs): { root?: string; identityRoot?: string } {
  const v = args.values;
  return {
    ...(typeof v["vault-dir"] === "string" ? { root: v["vault-dir"] } : {}),
    ...(typeof v["identity-dir"] === "string" ? { identityRoot: v["identity-dir"] } : {}),
  };
}

/**
 * Reads a KEK file (README "Re-keying"): 32 raw bytes, or 64 hex characters
 * and an optional line break. The caller wipes the result.
 */
export async function readKekFile(path: string, option: string): Promise<Uint8Array> {
  const bytes = await readUserBytes(
    path,
    "KEK file",
    `pass ${option} with a file of 32 random bytes (head -c 32 /dev/urandom > kek.bin)`,
  );
  try {
    if (bytes.length === 32) return bytes.slice();
    const end = lineLength(bytes);
    if (end === 64 && bytes.subarray(0, 64).every((b) => (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66))) {
      const out = new Uint8Array(32);
      const nibble = (b: number) => (b <= 0x39 ? b - 0x30 : b - 0x61 + 10);
      for (let i = 0; i < 32; i++) out[i] = (nibble(bytes[2 * i]!) << 4) | nibble(bytes[2 * i + 1]!);
      return out;
    }
    throw new VaultError(
      "crypto",
      `read KEK file "${path}" failed: it holds ${bytes.length} bytes, not a 32-byte key (raw, or 64 lowercase hex)`,
      { hint: "make one with: head -c 32 /dev/urandom > kek.bin (and keep it as safe as the vault's identity)" },
    );
  } finally {
    bytes.fill(0);
  }
}

/** Opens the vault the global options name. */
export async function openVault(args: ParsedArgs): Promise<Vault> {
  // The process ends with the command: WebCrypto spares it loading noble's AES, most of a get's start-up.
  const options: VaultOptions = { maxSecretBytes: maxBytes(args), kekEngine: "webcrypto", ...folderOptions(args) };
  const v = args.values;
  if (typeof v["kek-file"] === "string") options.kek = await readKekFile(v["kek-file"], "--kek-file");
  if (typeof v.backend === "string") {
    if (!BACKEND_CHOICES.includes(v.backend)) {
      throw new UsageError(`--backend must be one of ${BACKEND_CHOICES.join(", ")}; got ${JSON.stringify(v.backend)}`);
    }
    options.backend = v.backend as BackendKind;
  }
  if (v.layout !== undefined) options.layout = layoutArg(v.layout, "--layout");
  if (typeof v.store === "string") {
    for (const folder of ["vault-dir", "kek-file", "backend", "layout"]) {
      if (v[folder] !== undefined) {
        throw new UsageError(`--store and --${folder} do not go together: --${folder} is for a vault folder`);
      }
    }
    options.store = v.store;
  }
  try {
    return await Vault.open(options);
  } finally {
    options.kek?.fill(0); // the vault keeps its own copy
  }
}

/** A version number from an option (`--version`, `--if-version`, `--to`), checked: at least `min`. */
export function versionArg(value: string | boolean | string[] | undefined, option: string, min: number): number {
  if (typeof value !== "string" || !/^\d{1,15}$/.test(value) || Number(value) < min) {
    throw new UsageError(`${option} takes a whole number (at least ${min}), got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/** A layout name from an option, checked. */
export function layoutArg(value: string | boolean | string[] | undefined, option: string): LayoutName {
  if (value === "scoped" || value === "palyra") return value;
  throw new UsageError(`${option} must be scoped or palyra; got ${JSON.stringify(value)}`);
}

/** Checks a scope and key from the command line before anything else happens. */
export function scopeAndKey(args: ParsedArgs): [string, string] {
  if (args.positionals.length === 1) {
    // One argument is a reference: ws:acme/github_token, or vault://ws:acme/github_token.
    if (!args.positionals[0]!.includes("/")) {
      throw new UsageError(
        `missing the key: give <scope> <key>, or one reference <scope>/<key> (got ${
          JSON.stringify(args.positionals[0])
        })`,
      );
    }
    const ref = parseVaultRef(args.positionals[0]!);
    return [formatScope(ref.scope), ref.key];
  }
  const scope = formatScope(parseScope(args.positionals[0]!));
  return [scope, validateKey(args.positionals[1]!)];
}

/**
 * The value for `set`/`configure`: a hidden prompt on a terminal, else stdin
 * (read no further than the limit allows).
 */
export async function readValue(label: string, limit: number): Promise<Uint8Array> {
  const { readAllStdin, readHiddenLine, stdinIsTerminal } = await import("../platform/prompt.ts");
  let value: Uint8Array;
  if (stdinIsTerminal()) {
    const input = await readHiddenLine(`Value for ${label} (input hidden): `);
    if (input.kind === "cancelled") throw new UsageError("cancelled; nothing was stored", undefined, EXIT.interrupted);
    if (input.kind === "continued") {
      throw new UsageError(
        "the input went on after the end of the line (a multi-line paste?); nothing was stored: " +
          `pipe a multi-line value on stdin (${PROGRAM} set … < file), or paste it in a terminal with bracketed paste`,
      );
    }
    value = input.bytes;
  } else {
    value = await readAllStdin(limit);
  }
  if (value.length > limit) {
    value.fill(0);
    throw new VaultError(
      "value_too_large",
      `read the value of ${label} failed: it is more than ${limit} bytes; nothing was stored`,
      { hint: "store a smaller value, or raise the limit with --max-bytes N" },
    );
  }
  if (value.length === 0) {
    throw new UsageError("the value is empty; nothing was stored (pipe the value on stdin, or type it at the prompt)");
  }
  return value;
}

/** Reads a file the user named: `not_found` or `io` naming it, with `hint`. */
export async function readUserBytes(path: string, what: string, hint: string): Promise<Uint8Array> {
  try {
    return await readUserFile(path);
  } catch (e) {
    const code = errnoCode(e);
    throw new VaultError(
      code === "ENOENT" ? "not_found" : "io",
      `read ${what} "${path}" failed (${code ?? String(e)})`,
      {
        hint,
      },
    );
  }
}

/**
 * Reads a text file the user named (a config, an env file, a template):
 * `not_found` or `io` naming it, `invalid_config` when it is not UTF-8.
 */
export async function readUserText(path: string, what: string, hint: string): Promise<string> {
  const bytes = await readUserBytes(path, what, hint);
  try {
    return fromUtf8(bytes);
  } catch {
    throw new VaultError("invalid_config", `read ${what} "${path}" failed: it is not valid UTF-8`, {
      hint: "save the file as UTF-8",
    });
  }
}

const MAX_PASSPHRASE_BYTES = 4096;

/** The length of `bytes` without one final line break (LF or CRLF), as `echo` and editors leave it. */
function lineLength(bytes: Uint8Array): number {
  let end = bytes.length;
  if (bytes[end - 1] === 0x0a) end--;
  if (bytes[end - 1] === 0x0d) end--;
  return end;
}

/**
 * A passphrase for `export`/`import`: a hidden prompt on a terminal (asked
 * twice when `confirm`), else the first line of stdin. Never an argument.
 */
export async function readPassphrase(purpose: string, confirm: boolean): Promise<string> {
  const { readAllStdin, readHiddenLine, stdinIsTerminal } = await import("../platform/prompt.ts");
  const ask = async (prompt: string): Promise<Uint8Array> => {
    const input = await readHiddenLine(prompt);
    if (input.kind === "cancelled") throw new UsageError("cancelled", undefined, EXIT.interrupted);
    if (input.kind === "continued") throw new UsageError("the passphrase went on after the end of the line");
    return input.bytes;
  };
  let bytes: Uint8Array;
  if (stdinIsTerminal()) {
    bytes = await ask(`Passphrase ${purpose} (input hidden): `);
    if (confirm) {
      const again = await ask("The same passphrase again: ");
      const same = sameBytes(again, bytes);
      again.fill(0);
      if (!same) {
        bytes.fill(0);
        throw new UsageError("the two passphrases differ; nothing was written");
      }
    }
  } else {
    bytes = await readAllStdin(MAX_PASSPHRASE_BYTES);
    // `echo "$PASS" |` ends it with a line break that is not part of it.
    const end = lineLength(bytes);
    if (bytes.length > MAX_PASSPHRASE_BYTES || bytes.subarray(0, end).includes(0x0a)) {
      bytes.fill(0);
      throw new UsageError(`the passphrase on stdin must be one line of at most ${MAX_PASSPHRASE_BYTES} bytes`);
    }
    const line = bytes.slice(0, end);
    bytes.fill(0);
    bytes = line;
  }
  try {
    if (bytes.length === 0) {
      throw new UsageError("the passphrase is empty (type it at the prompt, or pipe it on stdin)");
    }
    try {
      return fromUtf8(bytes);
    } catch {
      throw new UsageError("the passphrase is not valid UTF-8");
    }
  } finally {
    bytes.fill(0);
  }
}
