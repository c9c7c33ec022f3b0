/**
 * What counts as a secret in a configuration file (SPEC §8). The lists live
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
  readonly name: string;
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
