/**
 * The Windows DPAPI backend: each envelope is additionally
 * protected with `ProtectedData.Protect` (CurrentUser scope, the object id as
 * entropy) and kept in `objects_dpapi/obj_…`, replaced atomically like the
 * file backend. PowerShell runs one constant script per operation; the
 * payload travels only on stdin and stdout (no -EncodedCommand, which
 * security products flag). See docs/FORMAT.md §8.
 */
import { FILES } from "../store/layout.ts";
import type { StoreKeyProtection } from "../store/identity_store.ts";
import { join } from "../platform/path.ts";
import { VaultError } from "../errors.ts";
import { fromBase64, sameBytes, toBase64, utf8 } from "../crypto/encoding.ts";
import type { FileSystem } from "../platform/fs.ts";
import { type CommandResult, type CommandRunner, runCommand } from "../platform/subprocess.ts";
import { ObjectFiles } from "./object_files.ts";
import { CheckedBackend, toolError, type ToolErrors } from "./contract.ts";

/** The two DPAPI operations; each has its own constant script. */
export type DpapiOperation = "protect" | "unprotect";

/**
 * What both scripts start with. Statements are joined with `; `, so the
 * scripts hold no `if`/`elseif`/`else` and no `try`/`catch` (PowerShell ends
 * an `if` or `try` at a `;`, and the `elseif`/`catch` after it does not
 * parse); errors go to one `trap`, which prints `palyra: <exception type>:
 * <message>` on stderr and exits 3. No double quote anywhere: powershell.exe
 * strips them from its command line.
 */
const PROLOGUE: readonly string[] = [
  "$ErrorActionPreference = 'Stop'",
  "trap { $e = $_.Exception.GetBaseException(); [Console]::Error.WriteLine('palyra: ' + $e.GetType().FullName + ': ' + $e.Message); exit 3 }",
  "Add-Type -AssemblyName System.Security",
  "$entropy = [Text.Encoding]::UTF8.GetBytes([Console]::In.ReadLine())",
  "$data = [Convert]::FromBase64String([Console]::In.ReadLine())",
  "$scope = [Security.Cryptography.DataProtectionScope]::CurrentUser",
];

const script = (call: string) =>
  [
    ...PROLOGUE,
    `$out = [Security.Cryptography.ProtectedData]::${call}($data, $entropy, $scope)`,
    "[Console]::Out.Write([Convert]::ToBase64String($out))",
  ].join("; ");

/**
 * The constant PowerShell scripts, one per operation. Each reads two lines
 * from stdin — the entropy (the object id) and the padded base64 input — and
 * writes padded base64 to stdout. Any failure exits 3 with the exception's
 * type and message on stderr.
 */
export const DPAPI_SCRIPTS: Readonly<Record<DpapiOperation, string>> = Object.freeze({
  protect: script("Protect"),
  unprotect: script("Unprotect"),
});

/** The powershell arguments of each operation: always exactly these. */
export const DPAPI_ARGS: Readonly<Record<DpapiOperation, readonly string[]>> = Object.freeze({
  protect: Object.freeze(["-NoProfile", "-NonInteractive", "-Command", DPAPI_SCRIPTS.protect]),
  unprotect: Object.freeze(["-NoProfile", "-NonInteractive", "-Command", DPAPI_SCRIPTS.unprotect]),
});

/** How long one probe step may take (a cold PowerShell start can take seconds). */
export const DPAPI_PROBE_TIMEOUT_MS = 15_000;

/** Options of the backend. */
export interface WindowsDpapiOptions {
  run?: CommandRunner;
  timeoutMs?: number;
  /** The largest envelope stored; a protected blob bigger than this plus DPAPI's overhead is refused unread. */
  maxObjectBytes?: number;
}

/** Room for what DPAPI adds to the data it protects (a header, a MAC, block padding; a few hundred bytes). */
const DPAPI_OVERHEAD_BYTES = 4096;

const padded = (b: Uint8Array) => {
  const s = toBase64(b);
  return s + "=".repeat((4 - (s.length % 4)) % 4);
};

const MAX_STDERR_CHARS = 600;

/** How powershell's failures read when it runs the DPAPI scripts. */
function dpapiErrors(operation: DpapiOperation | undefined): ToolErrors {
  return {
    tool: "powershell",
    maxStderrChars: MAX_STDERR_CHARS,
    rules: [
      // The scripts' trap names the exception type; DPAPI's own failures are CryptographicExceptions.
      {
        when: (e) => /CryptographicException/.test(e),
        code: "crypto",
        why: `DPAPI could not ${operation ?? "process"} it`,
        hint: "DPAPI data opens only for the Windows user (and machine) that protected it, with the same object id",
      },
      {
        when: (e) => /access is denied|UnauthorizedAccess/i.test(e),
        code: "permission",
        why: "access was denied",
        hint: "run as the Windows user that owns the vault",
      },
      { when: (e) => /cancel/i.test(e), code: "permission", why: "the user cancelled" },
    ],
    fallbackHint: "check that Windows PowerShell runs here (powershell -NoProfile -Command 'Add-Type -AssemblyName " +
      "System.Security'), or start a new vault with --backend encrypted_file",
  };
}

/** Turns a failed powershell run into a typed error with a hint. */
export function dpapiError(action: string, r: CommandResult, operation?: DpapiOperation): VaultError {
  return toolError(dpapiErrors(operation), action, r);
}

/**
 * Runs one DPAPI operation: the constant script of `operation`, with the
 * entropy and the base64 input on stdin. Returns the output bytes.
 */
async function runDpapi(
  run: CommandRunner,
  timeoutMs: number,
  operation: DpapiOperation,
  entropy: string,
  data: Uint8Array,
  action: string,
): Promise<Uint8Array> {
  const b64 = padded(data);
  const r = await run("powershell", DPAPI_ARGS[operation], { stdin: utf8(`${entropy}\n${b64}\n`), timeoutMs });
  if (r.code !== 0) {
    // Never echo the payload, should a failing PowerShell print its input.
    throw dpapiError(action, b64 === "" ? r : { ...r, stderr: r.stderr.split(b64).join("<payload>") }, operation);
  }
  const out = fromBase64(new TextDecoder().decode(r.stdout).trim().replace(/=+$/, ""));
  if (out === undefined) {
    throw new VaultError("io", `${action} failed: powershell did not print base64`, {
      hint: "check that Windows PowerShell runs here without a profile printing text",
    });
  }
  return out;
}

/**
 * The protection of the identity store key on Windows, as Palyra's daemon
 * keeps it: DPAPI, CurrentUser scope, no entropy.
 */
export function dpapiStoreKeyProtection(run: CommandRunner, timeoutMs = DPAPI_PROBE_TIMEOUT_MS): StoreKeyProtection {
  return {
    protect: (key) => runDpapi(run, timeoutMs, "protect", "", key, "protect the identity store key with DPAPI"),
    unprotect: (stored) =>
      runDpapi(run, timeoutMs, "unprotect", "", stored, "unprotect the identity store key with DPAPI"),
  };
}

/** The result of a probe. */
export interface DpapiProbeResult {
  available: boolean;
  reason: string;
}

/** Envelopes protected by DPAPI, in `objects_dpapi/` under the vault root. */
export class WindowsDpapiBackend extends CheckedBackend {
  readonly kind = "windows_dpapi";
  protected readonly where = "the DPAPI objects folder";
  readonly #files: ObjectFiles;
  readonly #run: CommandRunner;
  readonly #timeoutMs: number;

  constructor(root: string, fs: FileSystem, options: WindowsDpapiOptions = {}) {
    super();
    const max = options.maxObjectBytes === undefined ? undefined : options.maxObjectBytes + DPAPI_OVERHEAD_BYTES;
    this.#files = new ObjectFiles(fs, join(root, FILES.dpapiObjectsDir), "DPAPI objects folder", max);
    this.#run = options.run ?? runCommand;
    this.#timeoutMs = options.timeoutMs ?? 20_000;
  }

  #dpapi(operation: DpapiOperation, objectId: string, data: Uint8Array): Promise<Uint8Array> {
    const action = `${operation} object "${objectId}" with DPAPI`;
    return runDpapi(this.#run, this.#timeoutMs, operation, objectId, data, action);
  }

  /**
   * Whether DPAPI works here: protects a small random payload with the real
   * protect script and unprotects it with the real unprotect script. `auto`
   * asks this before it chooses DPAPI, so a PowerShell that cannot run the
   * scripts never gets recorded in `backend.kind`.
   */
  static async probe(
    run: CommandRunner = runCommand,
    timeoutMs: number = DPAPI_PROBE_TIMEOUT_MS,
  ): Promise<DpapiProbeResult> {
    const sample = globalThis.crypto.getRandomValues(new Uint8Array(16));
    const entropy = "palyra-probe";
    try {
      const sealed = await runDpapi(run, timeoutMs, "protect", entropy, sample, "probe DPAPI (protect)");
      if (sameBytes(sealed, sample)) {
        return { available: false, reason: "probe DPAPI failed: protect returned its input unchanged" };
      }
      const opened = await runDpapi(run, timeoutMs, "unprotect", entropy, sealed, "probe DPAPI (unprotect)");
      if (!sameBytes(opened, sample)) {
        return { available: false, reason: "probe DPAPI failed: unprotect did not give back what protect was given" };
      }
      return { available: true, reason: "a DPAPI round trip through powershell worked" };
    } catch (e) {
      return { available: false, reason: e instanceof Error ? e.message : String(e) };
    }
  }

  protected async store(objectId: string, bytes: Uint8Array): Promise<void> {
    await this.#files.write(objectId, await this.#dpapi("protect", objectId, bytes));
  }

  protected async load(objectId: string): Promise<Uint8Array | undefined> {
    // Read (and size-checked) before PowerShell runs.
    const stored = await this.#files.read(objectId);
    return stored === undefined ? undefined : await this.#dpapi("unprotect", objectId, stored);
  }

  protected remove(objectId: string): Promise<void> {
    return this.#files.remove(objectId);
  }
}
