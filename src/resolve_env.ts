/**
 * Environment variables whose values come from the vault: what
 * `palyra-secrets run` hands a child, for a program that starts others
 * itself. A reference that does not resolve fails the whole set, so a
 * program is never started with part of its secrets.
 */
import { VaultError } from "./errors.ts";
import { fromUtf8 } from "./crypto/encoding.ts";
import type { SensitiveBytes } from "./crypto/sensitive.ts";
import { parseVaultRef } from "./scope.ts";
import type { Vault } from "./vault.ts";

/** One variable: its name and the reference of its value (`ws:acme/github_token`). */
export interface EnvReference {
  /** The variable's name: a letter or `_`, then letters, digits or `_`. */
  readonly name: string;
  /** The reference of its value: `<scope>/<key>` or `vault://<scope>/<key>`. */
  readonly ref: string;
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

function nameError(name: string, where: string): VaultError {
  return new VaultError("invalid_ref", `read ${where} failed: ${JSON.stringify(name)} is not a variable name`, {
    hint: "a variable name is a letter or _, then letters, digits or _",
  });
}

/**
 * Parses `NAME=<reference>`, as `run --env` takes it.
 *
 * @throws {VaultError} `invalid_ref` for a bad name or reference.
 * @example
 * ```ts
 * import { parseEnvAssignment } from "@palyra/vault";
 * parseEnvAssignment("GITHUB_TOKEN=ws:acme/github_token"); // { name: "GITHUB_TOKEN", ref: "ws:acme/github_token" }
 * ```
 */
export function parseEnvAssignment(text: string, where = "--env"): EnvReference {
  const eq = text.indexOf("=");
  const name = eq < 0 ? text : text.slice(0, eq);
  if (eq < 0 || !NAME_RE.test(name)) throw nameError(name, `${where} ${JSON.stringify(text)}`);
  const ref = text.slice(eq + 1);
  parseVaultRef(ref); // refuses a malformed reference now, before anything is read
  return { name, ref };
}

/**
 * Parses a dotenv file of references: `NAME=<reference>` lines, `#`
 * comments, blank lines and an optional `export ` prefix; a reference may be
 * quoted with `"` or `'`.
 *
 * @throws {VaultError} `invalid_ref`, naming the line.
 * @example
 * ```ts
 * import { parseEnvFile } from "@palyra/vault";
 * parseEnvFile("# app\nexport OPENAI_API_KEY=global/openai_api_key\n");
 * ```
 */
export function parseEnvFile(text: string, file = "env file"): EnvReference[] {
  const out: EnvReference[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const body = line.startsWith("export ") ? line.slice(7).trimStart() : line;
    const eq = body.indexOf("=");
    let ref = eq < 0 ? "" : body.slice(eq + 1).trim();
    if (ref.length >= 2 && (ref[0] === '"' || ref[0] === "'") && ref.at(-1) === ref[0]) ref = ref.slice(1, -1);
    out.push(parseEnvAssignment(`${eq < 0 ? body : body.slice(0, eq).trim()}=${ref}`, `${file} line ${i + 1}`));
  });
  return out;
}

/** Resolved variables. Dispose it once the values have been handed on. */
export class ResolvedEnv {
  readonly #values: Map<string, SensitiveBytes>;

  /** @internal */
  constructor(values: Map<string, SensitiveBytes>) {
    this.#values = values;
  }

  /** The variable names, in the order given. */
  get names(): string[] {
    return [...this.#values.keys()];
  }

  /** The values' bytes (not copies), for masking them in output. */
  values(): Uint8Array[] {
    return [...this.#values.values()].map((v) => v.bytes);
  }

  /** The variables as strings, to add to a child's environment. */
  toEnv(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [name, v] of this.#values) env[name] = fromUtf8(v.bytes);
    return env;
  }

  /** Zero-fills every value. */
  [Symbol.dispose](): void {
    for (const v of this.#values.values()) v[Symbol.dispose]();
  }
}

/**
 * Reads the value of every reference. Every failure is reported at once, by
 * variable and reference, never with a value; nothing is returned unless
 * every reference resolved to UTF-8 text without NUL bytes (what an
 * environment variable can hold).
 *
 * @throws {VaultError} with the code of the first failure (`not_found`, `crypto`, …).
 * @example
 * ```ts
 * import { resolveEnv, Vault } from "@palyra/vault";
 * const vault = await Vault.open();
 * using env = await resolveEnv(vault, { GITHUB_TOKEN: "ws:acme/github_token" });
 * const child = { ...env.toEnv() }; // hand it to the program you start
 * ```
 */
export async function resolveEnv(
  vault: Vault,
  refs: Readonly<Record<string, string>> | readonly EnvReference[],
): Promise<ResolvedEnv> {
  const list = Array.isArray(refs)
    ? refs as readonly EnvReference[]
    : Object.entries(refs).map(([name, ref]) => parseEnvAssignment(`${name}=${ref}`, "resolveEnv"));
  const secrets = await resolveAll(
    vault,
    list.map((r) => r.ref),
    (i) => `${list[i]!.name}=${list[i]!.ref}`,
    (n) => `resolve ${n === 1 ? "a reference" : `${n} references`}`,
    (bytes) =>
      isEnvText(bytes) ? undefined : "its value is not UTF-8 text without NUL bytes, which a variable cannot hold",
  );
  const values = new Map<string, SensitiveBytes>();
  secrets.forEach((secret, i) => {
    const name = list[i]!.name;
    values.get(name)?.[Symbol.dispose](); // the last of two assignments wins, as in a shell
    values.set(name, secret);
  });
  return new ResolvedEnv(values);
}

/**
 * Resolves every reference in order, reporting all failures at once: one
 * error with the first failure's code that names each failed reference by
 * `label(i)`, after wiping whatever did resolve. `refuse` may reject a value
 * (its reason becomes that reference's failure). Shared by `run`, `inject`
 * and `resolveEnv`, so none of them starts or writes anything on a miss.
 */
export async function resolveAll(
  vault: Vault,
  refs: readonly string[],
  label: (i: number) => string,
  action: (failures: number) => string,
  refuse?: (bytes: Uint8Array) => string | undefined,
): Promise<SensitiveBytes[]> {
  const values: SensitiveBytes[] = [];
  const failures: { at: number; error: VaultError }[] = [];
  for (const [i, ref] of refs.entries()) {
    try {
      const secret = await vault.resolve(ref);
      const why = refuse?.(secret.bytes);
      if (why !== undefined) {
        secret[Symbol.dispose]();
        throw new VaultError("invalid_ref", why);
      }
      values.push(secret);
    } catch (e) {
      if (!(e instanceof VaultError)) throw e;
      failures.push({ at: i, error: e });
    }
  }
  if (failures.length > 0) {
    for (const v of values) v[Symbol.dispose]();
    const first = failures[0]!.error;
    throw new VaultError(
      first.code,
      `${action(failures.length)} failed: ${failures.map((f) => `${label(f.at)} (${f.error.message})`).join("; ")}`,
      { hint: first.hint ?? "store the missing secrets, or fix the references", cause: first },
    );
  }
  return values;
}

function isEnvText(bytes: Uint8Array): boolean {
  if (bytes.includes(0)) return false;
  try {
    fromUtf8(bytes);
    return true;
  } catch {
    return false;
  }
}
