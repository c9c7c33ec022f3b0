/**
 * Scopes, secret keys and vault references (docs/FORMAT.md §1).
 *
 * scope     = "global" (any letter case) | "ws:" id | "pr:" id
 * id        = 1–256 bytes of UTF-8 after trimming white space, in Unicode
 *             NFC; no NUL, no control or format character (Cc, Cf), no "/"
 *             and no "\"
 * key       = 1–128 bytes of [a-z0-9._-]
 * reference = ["vault://"] scope "/" key
 */
import { VaultError } from "./errors.ts";
import { utf8 } from "./crypto/encoding.ts";

/** A parsed scope. */
export type VaultScope =
  | { readonly kind: "global" }
  | { readonly kind: "workspace"; readonly id: string }
  | { readonly kind: "principal"; readonly id: string };

/** A parsed `<scope>/<key>` reference. */
export interface VaultRef {
  readonly scope: VaultScope;
  readonly key: string;
}

/** The scope grammar, shown in every scope error and in CLI help. */
export const SCOPE_GRAMMAR =
  'global | ws:<id> | pr:<id>, where <id> is 1-256 bytes of UTF-8 in NFC with no control or format character, "/" or "\\"';
/** The key grammar, shown in every key error and in CLI help. */
export const KEY_GRAMMAR = "1-128 characters of [a-z0-9._-]";
/** The reference grammar. */
export const REF_GRAMMAR = `[vault://]<scope>/<key>, with <scope> = ${SCOPE_GRAMMAR} and <key> = ${KEY_GRAMMAR}`;

const MAX_ID_BYTES = 256;
const MAX_KEY_BYTES = 128;
// \p{Cc}: C0, DEL and C1 controls; \p{Cf}: format characters (bidi overrides, zero-width
// spaces, BOM) that make two different ids look alike; \p{Cs}: a lone surrogate, which has no
// UTF-8 form.
const BAD_ID_CHAR = /[\p{Cc}\p{Cf}\p{Cs}/\\]/u;
const KEY_RE = /^[a-z0-9._-]+$/;

function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? text.slice(0, 80) + "…" : text);
}

function scopeError(input: string, rule: string): VaultError {
  return new VaultError("invalid_scope", `parse scope ${quote(input)} failed: ${rule}`, {
    hint: `a scope is ${SCOPE_GRAMMAR}`,
  });
}

function checkId(input: string, rawId: string, prefix: string): string {
  const id = rawId.trim();
  if (id.length === 0) throw scopeError(input, `the id after "${prefix}" is empty`);
  const bad = BAD_ID_CHAR.exec(id);
  if (bad) {
    const c = bad[0];
    const what = c === "/" || c === "\\"
      ? `${JSON.stringify(c)}`
      : c === "\u0000"
      ? "NUL"
      : /\p{Cs}/u.test(c)
      ? "a lone UTF-16 surrogate"
      : `the ${/\p{Cf}/u.test(c) ? "format" : "control"} character U+${
        c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")
      }`;
    throw scopeError(input, `the id contains ${what}, which is not allowed`);
  }
  // Refused rather than normalized: another implementation must never read it as another scope.
  if (id.normalize("NFC") !== id) {
    throw scopeError(input, 'the id is not in Unicode NFC (write it composed, e.g. with String.normalize("NFC"))');
  }
  const n = utf8(id).length;
  if (n > MAX_ID_BYTES) throw scopeError(input, `the id is ${n} bytes of UTF-8; at most ${MAX_ID_BYTES} are allowed`);
  return id;
}

/**
 * Parses a scope string. `global` is accepted in any letter case; the `ws:` and
 * `pr:` prefixes must be lowercase; white space around the id is trimmed.
 *
 * @throws {VaultError} `invalid_scope`, naming the rule that was broken.
 */
export function parseScope(input: string): VaultScope {
  if (typeof input !== "string") throw scopeError(String(input), "a scope must be a string");
  const text = input.trim();
  if (text.toLowerCase() === "global") return { kind: "global" };
  const colon = text.indexOf(":");
  if (colon < 0) {
    throw scopeError(input, text.length === 0 ? "the scope is empty" : 'expected "global" or a "ws:" or "pr:" prefix');
  }
  const prefix = text.slice(0, colon + 1);
  const rest = text.slice(colon + 1);
  if (prefix === "ws:") return { kind: "workspace", id: checkId(input, rest, prefix) };
  if (prefix === "pr:") return { kind: "principal", id: checkId(input, rest, prefix) };
  if (prefix.toLowerCase() === "ws:" || prefix.toLowerCase() === "pr:") {
    throw scopeError(input, `the prefix ${quote(prefix)} must be lowercase (${quote(prefix.toLowerCase())})`);
  }
  throw scopeError(input, `unknown scope prefix ${quote(prefix)}; expected "global", "ws:" or "pr:"`);
}

/** The canonical string form of a scope (`global`, `ws:<id>`, `pr:<id>`). */
export function formatScope(scope: VaultScope): string {
  switch (scope.kind) {
    case "global":
      return "global";
    case "workspace":
      return `ws:${scope.id}`;
    case "principal":
      return `pr:${scope.id}`;
  }
}

/** Validates and returns a scope given as a string or as a `VaultScope` value. */
export function toScope(scope: VaultScope | string): VaultScope {
  if (typeof scope === "string") return parseScope(scope);
  if (scope === null || typeof scope !== "object") {
    throw scopeError(String(scope), "a scope must be a string or a VaultScope");
  }
  // Re-parse the formatted form so a hand-built object obeys the same rules.
  switch (scope.kind) {
    case "global":
      return { kind: "global" };
    case "workspace":
    case "principal": {
      const parsed = parseScope(formatScope(scope));
      if (parsed.kind !== "global" && parsed.id !== scope.id) {
        throw scopeError(formatScope(scope), "the id has surrounding white space");
      }
      return parsed;
    }
    default:
      throw scopeError(
        JSON.stringify(scope) ?? "",
        'unknown scope kind; expected "global", "workspace" or "principal"',
      );
  }
}

/**
 * Checks a secret key against `[a-z0-9._-]{1,128}` and returns it.
 *
 * @throws {VaultError} `invalid_key`, naming the rule that was broken.
 */
export function validateKey(key: string): string {
  const fail = (rule: string) =>
    new VaultError("invalid_key", `check key ${quote(String(key))} failed: ${rule}`, {
      hint: `a key is ${KEY_GRAMMAR}`,
    });
  if (typeof key !== "string") throw fail("a key must be a string");
  if (key.length === 0) throw fail("the key is empty");
  if (key.length > MAX_KEY_BYTES) {
    throw fail(`the key is ${key.length} characters; at most ${MAX_KEY_BYTES} are allowed`);
  }
  if (!KEY_RE.test(key)) {
    const bad = [...key].find((c) => !KEY_RE.test(c)) ?? "";
    throw fail(`the key contains ${JSON.stringify(bad)}; only lowercase letters, digits, ".", "_" and "-" are allowed`);
  }
  return key;
}

/**
 * Parses a reference such as `global/openai_api_key`, `ws:acme/github_token`
 * or `vault://pr:alice/token`.
 *
 * @throws {VaultError} `invalid_ref`, naming the rule that was broken.
 */
export function parseVaultRef(input: string): VaultRef {
  const fail = (rule: string, cause?: unknown) =>
    new VaultError("invalid_ref", `parse reference ${quote(String(input))} failed: ${rule}`, {
      hint: `a reference is ${REF_GRAMMAR}`,
      cause,
    });
  if (typeof input !== "string") throw fail("a reference must be a string");
  let text = input.trim();
  if (text.startsWith("vault://")) text = text.slice("vault://".length);
  const slash = text.lastIndexOf("/");
  if (slash < 0) throw fail('expected "<scope>/<key>" with a "/" between scope and key');
  let scope: VaultScope;
  let key: string;
  try {
    scope = parseScope(text.slice(0, slash));
  } catch (e) {
    throw fail(`the scope part is invalid: ${(e as Error).message}`, e);
  }
  try {
    key = validateKey(text.slice(slash + 1));
  } catch (e) {
    throw fail(`the key part is invalid: ${(e as Error).message}`, e);
  }
  return { scope, key };
}

/** The canonical string form of a reference, `<scope>/<key>`. */
export function formatVaultRef(ref: VaultRef): string {
  return `${formatScope(ref.scope)}/${validateKey(ref.key)}`;
}
