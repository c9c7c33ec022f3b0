/**
 * What counts as a secret in a configuration file. The lists live
 * here and nowhere else.
 */

/** Lower-cased field-name endings that mark a field as holding a secret. */
export const SENSITIVE_FIELD_SUFFIXES: readonly string[] = [
  "api_key",
  "apikey",
  "token",
  "secret",
  "password",
  "passwd",
  "private_key",
  "access_key",
  "secret_key",
  "signing_key",
  "state_key",
  "credentials",
];

/** The suffix of the sibling field that holds a reference instead of the value. */
export const VAULT_REF_SUFFIX = "_vault_ref";

/**
 * True when a field of this name must not hold a plaintext value:
 * `openai_api_key`, `refresh_token`, `client_secret` are; `max_tokens`,
 * `tokenizer` and `auth_profile_id` are not.
 *
 * @example
 * ```ts
 * import { isSensitiveField } from "@palyra/vault";
 * isSensitiveField("openai_api_key"); // true
 * isSensitiveField("max_tokens"); // false
 * ```
 */
export function isSensitiveField(name: string): boolean {
  const lower = name.toLowerCase();
  return SENSITIVE_FIELD_SUFFIXES.some((s) => lower.endsWith(s));
}

/** A kind of well-known credential, recognised by its shape. */
export interface CredentialPattern {
  /** The kind, as findings name it: "GitHub token", "AWS access key id". */
  readonly name: string;
  /** Finds the credential anywhere in a text (not anchored, no `g` flag, so `test` keeps no state). */
  readonly pattern: RegExp;
}

/**
 * Shapes of well-known credentials. Each needs enough characters after its
 * prefix that ordinary words ("sk-learn", "AKIA" alone) do not match.
 */
export const CREDENTIAL_PATTERNS: readonly CredentialPattern[] = [
  { name: "Anthropic API key", pattern: /(?<![A-Za-z0-9])sk-ant-[A-Za-z0-9_-]{16,}/ },
  { name: "OpenAI-style API key", pattern: /(?<![A-Za-z0-9])sk-(?!ant-)[A-Za-z0-9_-]{16,}/ },
  { name: "GitHub token", pattern: /(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{20,}/ },
  { name: "GitHub fine-grained token", pattern: /(?<![A-Za-z0-9])github_pat_[A-Za-z0-9_]{20,}/ },
  { name: "Slack bot token", pattern: /(?<![A-Za-z0-9])xoxb-[A-Za-z0-9-]{10,}/ },
  { name: "AWS access key id", pattern: /(?<![A-Z0-9])AKIA[A-Z0-9]{16}(?![A-Z0-9])/ },
  { name: "Google API key", pattern: /(?<![A-Za-z0-9])AIza[A-Za-z0-9_-]{35}/ },
  { name: "PEM private key", pattern: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/ },
];

/** The kind of credential `text` contains, or `undefined`. */
export function detectCredential(text: string): string | undefined {
  return CREDENTIAL_PATTERNS.find((p) => p.pattern.test(text))?.name;
}

/** Where a known credential sits in a string, as found by {@link findCredential}. */
export interface CredentialMatch {
  /** The kind, e.g. "Anthropic API key". */
  readonly name: string;
  /** Whether the credential is the whole value (give or take surrounding whitespace). */
  readonly whole: boolean;
}

/**
 * Characters that fill an example credential in documentation:
 * `sk-ant-xxxxxxxxxxxx`, `ghp_XXXXXXXX…`, `AKIA****************`.
 */
const EXAMPLE_FILL = /^[xX*.…_-]+$/;

/** The part of a matched credential after its recognisable prefix. */
function credentialBody(match: string): string {
  return match.replace(/^(sk-ant-|sk-proj-|sk-|gh[pousr]_|github_pat_|xoxb-|AKIA|AIza)/, "");
}

/**
 * The first real credential in `text`: shape-matched, and not an obvious
 * documentation example such as `sk-ant-xxxxxxxxxxxxxxxx`.
 */
export function findCredential(text: string): CredentialMatch | undefined {
  const trimmed = text.trim();
  for (const p of CREDENTIAL_PATTERNS) {
    const global = new RegExp(p.pattern.source, "g");
    for (const m of trimmed.matchAll(global)) {
      const found = m[0];
      if (p.name !== "PEM private key" && EXAMPLE_FILL.test(credentialBody(found))) continue;
      const whole = p.name === "PEM private key"
        ? m.index === 0 && /-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----$/.test(trimmed)
        : m.index === 0 && found.length === trimmed.length;
      return { name: p.name, whole };
    }
  }
  return undefined;
}

/**
 * Values that stand in for a secret rather than being one: `${OPENAI_API_KEY}`,
 * `$OPENAI_API_KEY`, `changeme`, `<your-password-here>`, `xxx`, `TODO`,
 * `sk-ant-xxxxxxxx`. Deliberately narrow: anything else in a sensitive field
 * is treated as a real secret.
 */
const PLACEHOLDERS: readonly RegExp[] = [
  /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-[^}]*)?\}$/, // ${VAR}, ${VAR:-default}
  /^\$[A-Za-z_][A-Za-z0-9_]*$/, // $VAR
  /^%[A-Za-z_][A-Za-z0-9_]*%$/, // %VAR%
  /^\{\{\s*[A-Za-z_][A-Za-z0-9_.]*\s*\}\}$/, // {{ var }}
  /^<[^<>\n]{1,100}>$/, // <your-password-here>
  /^\[[^[\]\n]{1,100}\]$/, // [your key]
  /^(?:x{3,}|X{3,}|\*{3,}|\.{3,}|…+|#{3,})$/i,
  /^(?:change[-_ ]?me|replace[-_ ]?me|todo|tbd|fixme|placeholder|redacted|none|null|nil|n\/a|dummy)$/i,
  /^(?:your|my|insert|enter|put|add)[-_ ](?:[a-z0-9]+[-_ ])*(?:key|token|secret|password|passwd|pass|credentials?)(?:[-_ ]here)?$/i,
];

/**
 * The name of the environment variable a placeholder like `${OPENAI_API_KEY}`
 * or `$OPENAI_API_KEY` names, if it is one.
 */
export function placeholderVariable(text: string): string | undefined {
  return /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(text.trim())?.[1] ??
    /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(text.trim())?.[1];
}

/** True when `text` is a placeholder for a secret, not a secret. */
export function isPlaceholder(text: string): boolean {
  const t = text.trim();
  if (t.length === 0) return true;
  if (PLACEHOLDERS.some((p) => p.test(t))) return true;
  // A credential prefix with an example fill: "sk-ant-xxxxxxxx", "ghp_XXXX", "sk-...".
  const body = credentialBody(t);
  return body !== t && body.length >= 3 && EXAMPLE_FILL.test(body);
}

/** A URL with a password in its user information. */
export interface UrlCredential {
  /** Whether the URL is the whole value. */
  readonly whole: boolean;
}

/**
 * The first URL in `text` whose user information carries a password that is
 * not a placeholder: `postgres://user:pass@host/db`, `redis://:pass@host`.
 */
export function findUrlCredential(text: string): UrlCredential | undefined {
  const trimmed = text.trim();
  for (const m of trimmed.matchAll(/[A-Za-z][A-Za-z0-9+.-]*:\/\/([^\s/?#]*)/g)) {
    const authority = m[1]!;
    const at = authority.lastIndexOf("@");
    if (at < 0) continue;
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(":");
    if (colon < 0) continue;
    const password = userinfo.slice(colon + 1);
    if (password.length === 0 || isPlaceholder(password) || isPlaceholder(safeDecode(password))) continue;
    return { whole: m.index === 0 && !/\s/.test(trimmed) };
  }
  return undefined;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
