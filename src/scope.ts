/**
 * Scopes, secret keys and vault references (docs/FORMAT.md §1).
 *
 * scope     = "global" (any letter case) | "ws:" id | "pr:" id
 *           | "principal:" id | "channel:" name ":" account | "skill:" id
 *           (name has no ":"; account may)
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
  | { readonly kind: "principal"; readonly id: string }
  /** `principal:<id>`: a principal of Palyra's daemon (not the same scope as `pr:<id>`). */
  | { readonly kind: "palyra_principal"; readonly id: string }
  /** `channel:<name>:<account>`: a connector account of Palyra's daemon. */
  | { readonly kind: "channel"; readonly name: string; readonly account: string }
  /** `skill:<id>`: the secrets of one skill of Palyra's daemon. */
  | { readonly kind: "skill"; readonly id: string };

/**
 * A scope as Palyra's `metadata.json` spells it (docs/FORMAT.md §6.2).
 *
 * @example
 * ```ts
 * import type { TaggedScope } from "@palyra/vault";
 * const tagged: TaggedScope = { kind: "skill", skill_id: "web.search" };
 * ```
 */
export type TaggedScope =
  | { kind: "global" }
  | { kind: "principal"; principal_id: string }
  | { kind: "channel"; channel_name: string; account_id: string }
  | { kind: "skill"; skill_id: string };

/** A parsed `<scope>/<key>` reference. */
export interface VaultRef {
  /** The scope part, parsed. */
  readonly scope: VaultScope;
  /** The key part, checked against the key grammar. */
  readonly key: string;
}

/** The scope grammar, shown in every scope error and in CLI help. */
export const SCOPE_GRAMMAR: string =
  "global | ws:<id> | pr:<id> | principal:<id> | channel:<name>:<account> | skill:<id>, " +
  'where each <id>, <name> and <account> is 1-256 bytes of UTF-8 in NFC with no control or format character, "/" or "\\" ' +
  '(and <name> has no ":")';
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

function checkId(input: string, rawId: string, prefix: string, what = "id"): string {
  const id = rawId.trim();
  if (id.length === 0) throw scopeError(input, `the ${what} after "${prefix}" is empty`);
  const bad = BAD_ID_CHAR.exec(id);
  if (bad) {
    const c = bad[0];
    const described = c === "/" || c === "\\"
      ? `${JSON.stringify(c)}`
      : c === "\u0000"
      ? "NUL"
      : /\p{Cs}/u.test(c)
      ? "a lone UTF-16 surrogate"
      : `the ${/\p{Cf}/u.test(c) ? "format" : "control"} character U+${
        c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")
      }`;
    throw scopeError(input, `the ${what} contains ${described}, which is not allowed`);
  }
  // Refused rather than normalized: another implementation must never read it as another scope.
  if (id.normalize("NFC") !== id) {
    throw scopeError(input, `the ${what} is not in Unicode NFC (write it composed, e.g. with String.normalize("NFC"))`);
  }
  const n = utf8(id).length;
  if (n > MAX_ID_BYTES) {
    throw scopeError(input, `the ${what} is ${n} bytes of UTF-8; at most ${MAX_ID_BYTES} are allowed`);
  }
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
    throw scopeError(
      input,
      text.length === 0 ? "the scope is empty" : `expected "global" or one of the prefixes ${PREFIXES}`,
    );
  }
  const prefix = text.slice(0, colon + 1);
  const rest = text.slice(colon + 1);
  switch (prefix) {
    case "ws:":
      return { kind: "workspace", id: checkId(input, rest, prefix) };
    case "pr:":
      return { kind: "principal", id: checkId(input, rest, prefix) };
    case "principal:":
      return { kind: "palyra_principal", id: checkId(input, rest, prefix) };
    case "skill:":
      return { kind: "skill", id: checkId(input, rest, prefix) };
    case "channel:": {
      const sep = rest.indexOf(":");
      if (sep < 0) {
        throw scopeError(input, 'a channel scope is "channel:<name>:<account>"; the ":" before the account is missing');
      }
      const name = checkId(input, rest.slice(0, sep), prefix, "channel name");
      return { kind: "channel", name, account: checkId(input, rest.slice(sep + 1), `${prefix}${name}:`, "account") };
    }
  }
  if (KNOWN_PREFIXES.includes(prefix.toLowerCase())) {
    throw scopeError(input, `the prefix ${quote(prefix)} must be lowercase (${quote(prefix.toLowerCase())})`);
  }
  throw scopeError(input, `unknown scope prefix ${quote(prefix)}; expected "global" or one of ${PREFIXES}`);
}

const KNOWN_PREFIXES = ["ws:", "pr:", "principal:", "channel:", "skill:"];
const PREFIXES = KNOWN_PREFIXES.map((p) => `"${p}"`).join(", ");

/** The canonical string form of a scope (`global`, `ws:<id>`, `channel:<name>:<account>`, …). */
export function formatScope(scope: VaultScope): string {
  switch (scope.kind) {
    case "global":
      return "global";
    case "workspace":
      return `ws:${scope.id}`;
    case "principal":
      return `pr:${scope.id}`;
    case "palyra_principal":
      return `principal:${scope.id}`;
    case "channel":
      return `channel:${scope.name}:${scope.account}`;
    case "skill":
      return `skill:${scope.id}`;
  }
}

/**
 * A scope in the tagged form of Palyra's `metadata.json`. `ws:` and `pr:`
 * scopes have none: that layout cannot hold them.
 *
 * @throws {VaultError} `invalid_scope` for a `ws:` or `pr:` scope.
 * @example
 * ```ts
 * import { parseScope, toTaggedScope } from "@palyra/vault";
 * toTaggedScope(parseScope("channel:slack:T01:U02"));
 * // → { kind: "channel", channel_name: "slack", account_id: "T01:U02" }
 * ```
 */
export function toTaggedScope(scope: VaultScope): TaggedScope {
  switch (scope.kind) {
    case "global":
      return { kind: "global" };
    case "palyra_principal":
      return { kind: "principal", principal_id: scope.id };
    case "channel":
      return { kind: "channel", channel_name: scope.name, account_id: scope.account };
    case "skill":
      return { kind: "skill", skill_id: scope.id };
    default:
      throw new VaultError(
        "invalid_scope",
        `use scope ${quote(formatScope(scope))} failed: a vault in Palyra's layout holds only global, principal:, ` +
          "channel: and skill: scopes",
        {
          hint: "use one of those scopes, or convert the vault to the scoped layout, which holds every scope: " +
            "palyra-secrets migrate --to scoped",
        },
      );
  }
}

/**
 * Reads a tagged scope (`{"kind":"principal","principal_id":"alice"}`), with
 * the same rules as `parseScope`.
 *
 * @throws {VaultError} `invalid_scope` when it is not one.
 * @example
 * ```ts
 * import { formatScope, fromTaggedScope } from "@palyra/vault";
 * formatScope(fromTaggedScope({ kind: "principal", principal_id: "alice" })); // → "principal:alice"
 * ```
 */
export function fromTaggedScope(tagged: unknown): VaultScope {
  const t = (typeof tagged === "object" && tagged !== null ? tagged : {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  let text: string | undefined;
  if (t.kind === "global") text = "global";
  else if (t.kind === "principal" && str(t.principal_id) !== undefined) text = `principal:${t.principal_id}`;
  else if (t.kind === "skill" && str(t.skill_id) !== undefined) text = `skill:${t.skill_id}`;
  else if (t.kind === "channel" && str(t.channel_name) !== undefined && str(t.account_id) !== undefined) {
    if ((t.channel_name as string).includes(":")) {
      throw scopeError(JSON.stringify(tagged), 'a channel name cannot contain ":"');
    }
    text = `channel:${t.channel_name}:${t.account_id}`;
  }
  if (text === undefined) {
    throw scopeError(
      JSON.stringify(tagged) ?? String(tagged),
      'not a tagged scope (kind "global", "principal", "channel" or "skill" with its fields)',
    );
  }
  const scope = parseScope(text);
  // Stored ids are exact: white space that parsing would trim means another scope.
  if (formatScope(scope) !== text) throw scopeError(text, "an id has surrounding white space");
  return scope;
}

/** Validates and returns a scope given as a string or as a `VaultScope` value. */
export function toScope(scope: VaultScope | string): VaultScope {
  if (typeof scope === "string") return parseScope(scope);
  if (scope === null || typeof scope !== "object") {
    throw scopeError(String(scope), "a scope must be a string or a VaultScope");
  }
  const known = ["global", "workspace", "principal", "palyra_principal", "channel", "skill"];
  if (!known.includes((scope as { kind: unknown }).kind as string)) {
    throw scopeError(JSON.stringify(scope) ?? "", `unknown scope kind; expected one of ${known.join(", ")}`);
  }
  if (scope.kind === "channel" && (typeof scope.name !== "string" || scope.name.includes(":"))) {
    throw scopeError(JSON.stringify(scope), 'the channel name must be a string without ":"');
  }
  // Re-parse the formatted form so a hand-built object obeys the same rules.
  const text = formatScope(scope);
  const parsed = parseScope(text);
  if (formatScope(parsed) !== text) throw scopeError(text, "an id has surrounding white space");
  return parsed;
}

/** Whether `key` is a secret key of the grammar `[a-z0-9._-]{1,128}`. */
export function isKey(key: string): boolean {
  return key.length > 0 && key.length <= MAX_KEY_BYTES && KEY_RE.test(key);
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
