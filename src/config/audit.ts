/**
 * The configuration audit: plaintext secrets, strings shaped like known
 * credentials, passwords inside URLs, placeholders, `*_vault_ref` fields
 * checked against the vault, and plaintext left behind in backups. Findings
 * never carry the plaintext value, nor the text of a reference that does not
 * parse (it may be a secret pasted into the wrong field).
 */
import { basename, dirname, join, resolve } from "../platform/path.ts";
import { VaultError } from "../errors.ts";
import { fromUtf8, toHex, utf8 } from "../crypto/encoding.ts";
import { defaultFileSystem, type FileSystem } from "../platform/fs.ts";
import { sha256 } from "../platform/sha256.ts";
import { formatScope, KEY_GRAMMAR, parseScope, parseVaultRef, validateKey } from "../scope.ts";
import {
  findCredential,
  findUrlCredential,
  isPlaceholder,
  isSensitiveField,
  placeholderVariable,
  VAULT_REF_SUFFIX,
} from "./sensitive.ts";
import { type ConfigField, formatPath, parseConfigFields } from "./toml.ts";

/** How serious a finding is. */
export type FindingSeverity = "blocking" | "warning" | "info";

/** Stable finding codes. */
export type FindingCode =
  | "plaintext_secret"
  | "known_credential"
  | "embedded_credential"
  | "url_credentials"
  | "placeholder_secret"
  | "misplaced_vault_ref"
  | "plaintext_in_backup"
  | "invalid_vault_ref"
  | "missing_vault_ref"
  | "unchecked_vault_ref"
  | "resolved_vault_ref";

/** One finding, located in the file. */
export interface AuditFinding {
  /** The file: the `path` option, or for `plaintext_in_backup` the backup's path. */
  file: string;
  /** 1-based line of the field's key (1 for a backup that could not be parsed). */
  line: number;
  /** 1-based column of the field's key (1 for a backup that could not be parsed). */
  column: number;
  /** The field's dotted path (`channels[0].bot_token`); `""` for a backup that could not be parsed. */
  field: string;
  /** `blocking` findings make `palyra-secrets audit --strict` exit 3. */
  severity: FindingSeverity;
  /** What was found; stable across versions, unlike `message`. */
  code: FindingCode;
  /** What was found, in words; never quotes the secret. */
  message: string;
  /** What to do about it: usually a `palyra-secrets` command to run, or `"none needed"`. */
  remediation: string;
}

/**
 * One `*_vault_ref` field and what it resolved to. `reference` is the
 * canonical `<scope>/<key>`; for a reference that does not parse it is
 * `"<redacted>"` (or `""` when the field is not a string).
 */
export interface AuditReference {
  /** The dotted path of the `*_vault_ref` field. */
  field: string;
  /** `<scope>/<key>`, `"<redacted>"` or `""`, as described above. */
  reference: string;
  /** The scope (`global`, `ws:<id>`, `pr:<id>`); `null` when the reference is invalid. */
  scope: string | null;
  /** The key; `null` when the reference is invalid. */
  key: string | null;
  /**
   * `resolved`: the secret is in the vault; `missing`: the vault opened and
   * has no such secret; `invalid`: the value is not a reference;
   * `unchecked`: no vault was given or it could not be opened.
   */
  status: "resolved" | "missing" | "invalid" | "unchecked";
}

/** The counts Palyra reports. */
export interface AuditSummary {
  /** How many `*_vault_ref` fields the file has, whatever their status. */
  total_references: number;
  /** How many of them name a secret that is in the vault. */
  resolved_references: number;
  /** Findings of severity `blocking`; `palyra-secrets audit --strict` exits 3 when this is not 0. */
  blocking_findings: number;
  /** Findings of severity `warning`. */
  warning_findings: number;
  /** Findings of severity `info`. */
  info_findings: number;
}

/** The result of an audit. */
export interface AuditReport {
  /** The `path` option, as given. */
  path: string;
  /** The counts of references and findings. */
  summary: AuditSummary;
  /** The findings in the order of the file's fields, then those for its backups. */
  findings: AuditFinding[];
  /** One entry per `*_vault_ref` field, in the order of the file. */
  references: AuditReference[];
}

/**
 * The secrets of a vault that no `*_vault_ref` of an audited config names
 * (`palyra-secrets audit --orphans`), sorted by scope, then key: candidates
 * to delete once nothing else uses them.
 *
 * @example
 * ```ts
 * import { auditConfig, orphanSecrets, Vault } from "@palyra/vault";
 * const vault = await Vault.open();
 * const report = await auditConfig('key_vault_ref = "global/openai_api_key"\n', { path: "palyra.toml", vault });
 * const unused = orphanSecrets(report, await vault.listSecrets());
 * ```
 */
export function orphanSecrets(
  report: Pick<AuditReport, "references">,
  secrets: ReadonlyArray<{ scope: string; key: string }>,
): Array<{ scope: string; key: string }> {
  const named = new Set(
    report.references.flatMap((r) => (r.scope === null || r.key === null ? [] : [`${r.scope}\u0000${r.key}`])),
  );
  return secrets.filter((s) => !named.has(`${s.scope}\u0000${s.key}`)).map((s) => ({ scope: s.scope, key: s.key }))
    .sort((a, b) => (a.scope < b.scope ? -1 : a.scope > b.scope ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** What the audit needs to know whether a secret exists. */
export interface SecretLister {
  /** The secrets stored in `scope` (`global`, `ws:<id>`, `pr:<id>`); only their keys are read. */
  listSecrets(scope: string): Promise<Array<{ key: string }>>;
}

/** Options of `auditConfig`. */
export interface AuditOptions {
  /** The file name to report in findings. */
  path: string;
  /**
   * The vault to resolve references against, or a function that opens it
   * (called only when the file has references). When it cannot be opened,
   * references are reported as `unchecked` warnings.
   */
  vault?: SecretLister | (() => Promise<SecretLister>);
  /** How the remediation commands should name the file (`--path …`); omit for the default file. */
  pathArgument?: string;
  /**
   * The audited file on disk: its backups (`<file>.bak.1`, `.bak.2`, … beside
   * the real file, where `configure` writes them) are checked for plaintext
   * secrets too. Omit to audit the text alone.
   */
  backupsOf?: string;
  /** @internal the file layer (tests inject faults). */
  fs?: FileSystem;
}

/** Shell-quotes an argument when it needs it. */
function shellArg(text: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

const MAX_KEY_LENGTH = 128;
const EXACT_SEGMENT = /^[a-z0-9_-]+$/;

/**
 * The vault key suggested for a field: its whole dotted path reduced to the
 * key alphabet (`model_provider.openai.api_key`, `webhooks.1.secret`). When
 * the reduction loses information (upper case, other characters, a dot
 * inside a quoted key) or the path is longer than a key may be, a short hash
 * of the path is appended so that two fields never get the same key. `salt`
 * picks another hash, for the rare case where one still collides.
 */
export function suggestKey(segments: readonly (string | number)[], salt = 0): string {
  const parts = segments.map((s) =>
    typeof s === "number" ? String(s) : s.toLowerCase().replace(/[^a-z0-9_-]+/g, "_") || "_"
  );
  const joined = parts.join(".");
  const exact = segments.every((s) => typeof s === "number" || EXACT_SEGMENT.test(s));
  if (exact && salt === 0 && joined.length <= MAX_KEY_LENGTH) return joined;
  const hash = toHex(sha256(utf8(`${salt}\n${formatPath(segments)}`))).slice(0, 8);
  const room = MAX_KEY_LENGTH - hash.length - 1;
  return `${joined.slice(0, room).replace(/\.+$/, "")}-${hash}`;
}

/** What a string value in a field is, as far as secrets go. */
export type ValueKind =
  /** Nothing to report. */
  | { kind: "none" }
  /** A vault reference in a field meant for a plaintext value. */
  | { kind: "misplaced_ref"; scope: string; key: string }
  /** A stand-in such as `${OPENAI_API_KEY}` or `changeme` in a sensitive field. */
  | { kind: "placeholder"; variable: string | undefined }
  /** A plaintext value in a sensitive field. */
  | { kind: "plaintext"; credential: string | undefined; url: boolean }
  /** A known credential that is the whole value of an ordinary field. */
  | { kind: "known_credential"; credential: string }
  /** A known credential inside a longer text. */
  | { kind: "embedded_credential"; credential: string }
  /** A URL with a password in it. */
  | { kind: "url_credentials"; whole: boolean };

function isRefField(f: ConfigField): boolean {
  return typeof f.segments.at(-1) === "string" && f.name.toLowerCase().endsWith(VAULT_REF_SUFFIX);
}

function isSensitive(f: ConfigField): boolean {
  return typeof f.segments.at(-1) === "string" && isSensitiveField(f.name);
}

/** The reference `text` holds, if it is one: `global/x`, `vault://ws:acme/y`. */
export function refIn(text: string): { scope: string; key: string } | undefined {
  try {
    const ref = parseVaultRef(text);
    return { scope: formatScope(ref.scope), key: ref.key };
  } catch {
    return undefined;
  }
}

/** Classifies the string value of a field that is not a `*_vault_ref` (one kind per value). */
export function classifyValue(f: ConfigField): ValueKind {
  const value = f.value;
  if (value === undefined || value.length === 0 || isRefField(f)) return { kind: "none" };
  const credential = findCredential(value);
  if (isSensitive(f)) {
    if (credential !== undefined) return { kind: "plaintext", credential: credential.name, url: false };
    const ref = refIn(value);
    if (ref !== undefined) return { kind: "misplaced_ref", ...ref };
    if (isPlaceholder(value)) return { kind: "placeholder", variable: placeholderVariable(value) };
    return { kind: "plaintext", credential: undefined, url: findUrlCredential(value) !== undefined };
  }
  if (credential !== undefined) {
    return credential.whole
      ? { kind: "known_credential", credential: credential.name }
      : { kind: "embedded_credential", credential: credential.name };
  }
  const url = findUrlCredential(value);
  if (url !== undefined) return { kind: "url_credentials", whole: url.whole };
  return { kind: "none" };
}

/**
 * True when the field holds a secret in plaintext: a plaintext value, a known
 * credential, a password in a URL, or a credential pasted into a
 * `*_vault_ref` field.
 */
export function holdsPlaintext(f: ConfigField): boolean {
  if (f.value === undefined) return false;
  if (isRefField(f)) return refIn(f.value) === undefined && secretInRefField(f.value) !== undefined;
  const k = classifyValue(f).kind;
  return k === "plaintext" || k === "known_credential" || k === "embedded_credential" || k === "url_credentials";
}

/** What kind of secret a `*_vault_ref` value that does not parse looks like, if any. */
function secretInRefField(value: string): string | undefined {
  return findCredential(value)?.name ?? (findUrlCredential(value) === undefined ? undefined : "a URL with a password");
}

/** Why a reference does not parse, in words that never quote it. */
function refProblem(value: string): string {
  let text = value.trim();
  if (text.startsWith("vault://")) text = text.slice("vault://".length);
  const slash = text.lastIndexOf("/");
  if (slash < 0) return 'it has no "/" between scope and key';
  try {
    parseScope(text.slice(0, slash));
  } catch {
    return "its scope part is not global, ws:<id> or pr:<id>";
  }
  try {
    validateKey(text.slice(slash + 1));
  } catch {
    return `its key part is not ${KEY_GRAMMAR}`;
  }
  return "it does not parse";
}

/** Where plaintext was found in one backup. */
export interface BackupHit {
  /** The backup file. */
  readonly path: string;
  /** The fields holding plaintext (empty when the backup could not be parsed but holds a credential). */
  readonly fields: readonly { path: string; line: number; column: number }[];
}

/**
 * The backups of `file` (`<file>.bak.N` beside the real file, newest first)
 * that hold a plaintext secret. A backup that cannot be read is listed too:
 * it cannot be shown to be clean.
 */
export async function backupsWithPlaintext(file: string, fs: FileSystem = defaultFileSystem): Promise<BackupHit[]> {
  let real: string;
  try {
    real = await fs.realpath(file);
  } catch {
    real = resolve(file);
  }
  // Name backups as the caller named the file, unless it is a link elsewhere.
  const shownBase = real === resolve(file) ? file : real;
  const dir = dirname(real);
  const prefix = `${basename(real)}.bak.`;
  let names: string[];
  try {
    names = await fs.readDir(dir);
  } catch {
    return [];
  }
  const backups = names
    .filter((n) => n.startsWith(prefix) && /^[1-9]\d{0,5}$/.test(n.slice(prefix.length)))
    .map((n) => Number(n.slice(prefix.length)))
    .sort((a, b) => a - b);
  const hits: BackupHit[] = [];
  for (const n of backups) {
    const shown = `${shownBase}.bak.${n}`;
    let text: string;
    try {
      const info = await fs.lstat(join(dir, `${prefix}${n}`));
      if (info === undefined || !info.isFile) continue;
      text = fromUtf8(await fs.readFile(join(dir, `${prefix}${n}`)));
    } catch {
      hits.push({ path: shown, fields: [] });
      continue;
    }
    let fields: ConfigField[] | undefined;
    try {
      fields = await parseConfigFields(text, shown);
    } catch {
      fields = undefined;
    }
    if (fields === undefined) {
      if (findCredential(text) !== undefined) hits.push({ path: shown, fields: [] });
      continue;
    }
    const found = fields.filter(holdsPlaintext).map((f) => ({ path: f.path, line: f.line, column: f.column }));
    if (found.length > 0) hits.push({ path: shown, fields: found });
  }
  return hits;
}

/**
 * Audits TOML text.
 *
 * @example
 * ```ts
 * import { auditConfig, Vault } from "@palyra/vault";
 * const text = await Deno.readTextFile("palyra.toml");
 * const report = await auditConfig(text, { path: "palyra.toml", vault: () => Vault.open() });
 * if (report.summary.blocking_findings > 0) Deno.exit(3);
 * ```
 */
export async function auditConfig(text: string, options: AuditOptions): Promise<AuditReport> {
  const file = options.path;
  const fields = await parseConfigFields(text, file);
  const findings: AuditFinding[] = [];
  const references: AuditReference[] = [];
  const pathArg = options.pathArgument === undefined ? "" : ` --path ${shellArg(options.pathArgument)}`;
  const at = (f: ConfigField) => ({ file, line: f.line, column: f.column, field: f.path });

  // Suggested keys are unique in the report, and avoid global keys that
  // another field's reference in this file already names.
  const taken = new Map<string, string>();
  const basePath = (f: ConfigField) =>
    formatPath([...f.segments.slice(0, -1), f.name.slice(0, f.name.length - VAULT_REF_SUFFIX.length)]);
  for (const f of fields) {
    if (!isRefField(f) || f.value === undefined) continue;
    const ref = refIn(f.value);
    if (ref !== undefined && ref.scope === "global") taken.set(ref.key, basePath(f));
  }
  const keyFor = (segments: readonly (string | number)[]): string => {
    const owner = formatPath(segments);
    let key = suggestKey(segments);
    for (let salt = 1; taken.has(key) && taken.get(key) !== owner; salt++) key = suggestKey(segments, salt);
    taken.set(key, owner);
    return key;
  };

  let lister: SecretLister | undefined;
  let listerError: string | undefined;
  const keysByScope = new Map<string, Set<string>>();
  const exists = async (scope: string, key: string): Promise<boolean | undefined> => {
    if (lister === undefined && listerError === undefined) {
      try {
        lister = typeof options.vault === "function" ? await options.vault() : options.vault;
        if (lister === undefined) listerError = "no vault was given";
      } catch (e) {
        listerError = e instanceof VaultError ? `${e.code}: ${e.message}` : String(e);
      }
    }
    if (lister === undefined) return undefined;
    let keys = keysByScope.get(scope);
    if (keys === undefined) {
      keys = new Set((await lister.listSecrets(scope)).map((m) => m.key));
      keysByScope.set(scope, keys);
    }
    return keys.has(key);
  };

  for (const f of fields) {
    if (isRefField(f)) {
      const base = f.name.slice(0, -VAULT_REF_SUFFIX.length);
      if (f.value === undefined) {
        references.push({ field: f.path, reference: "", scope: null, key: null, status: "invalid" });
        findings.push({
          ...at(f),
          severity: "blocking",
          code: "invalid_vault_ref",
          message: `${f.path} must be a string reference like "global/openai_api_key"`,
          remediation: `set ${f.path} = "<scope>/<key>", e.g. "global/${base}"`,
        });
        continue;
      }
      const ref = refIn(f.value);
      if (ref === undefined) {
        // Never echo the text: it may be a secret pasted into the wrong field.
        references.push({ field: f.path, reference: "<redacted>", scope: null, key: null, status: "invalid" });
        const credential = secretInRefField(f.value);
        const baseSegments = [...f.segments.slice(0, -1), base];
        const baseField = formatPath(baseSegments);
        findings.push({
          ...at(f),
          severity: "blocking",
          code: "invalid_vault_ref",
          message: credential === undefined
            ? `${f.path} is not a valid vault reference: ${refProblem(f.value)} (its text is not shown)`
            : `${f.path} is not a vault reference but holds a plaintext credential (recognised as: ${credential}; its text is not shown)`,
          remediation: credential === undefined
            ? `fix the reference: [vault://]<scope>/<key>, e.g. "global/${keyFor(baseSegments)}"`
            : `move the credential into the vault: palyra-secrets configure ${shellArg(baseField)} global ${
              keyFor(baseSegments)
            }${pathArg} (paste the value at the prompt), then delete the file's backups`,
        });
        continue;
      }
      const { scope, key } = ref;
      const shown = `${scope}/${key}`;
      const found = await exists(scope, key);
      if (found === undefined) {
        references.push({ field: f.path, reference: shown, scope, key, status: "unchecked" });
        findings.push({
          ...at(f),
          severity: "warning",
          code: "unchecked_vault_ref",
          message: `${f.path} names ${shown}, which could not be checked: the vault did not open (${listerError})`,
          remediation: "palyra-secrets doctor",
        });
      } else if (found) {
        references.push({ field: f.path, reference: shown, scope, key, status: "resolved" });
        findings.push({
          ...at(f),
          severity: "info",
          code: "resolved_vault_ref",
          message: `${f.path} resolves to ${shown}`,
          remediation: "none needed",
        });
      } else {
        references.push({ field: f.path, reference: shown, scope, key, status: "missing" });
        findings.push({
          ...at(f),
          severity: "blocking",
          code: "missing_vault_ref",
          message: `${f.path} names ${shown}, which is not in the vault`,
          remediation: `palyra-secrets set ${shellArg(scope)} ${key}`,
        });
      }
      continue;
    }

    const kind = classifyValue(f);
    if (kind.kind === "none") continue;
    const movable = f.keyRange !== undefined;
    const field = shellArg(f.path);
    const moveWith = (key: string) =>
      movable
        ? `palyra-secrets configure ${field} global ${key} --from-config${pathArg}`
        : `remove the value from ${f.path} and store it with: palyra-secrets set global ${key}`;
    switch (kind.kind) {
      case "misplaced_ref": {
        const refField = formatPath([...f.segments.slice(0, -1), f.name + VAULT_REF_SUFFIX]);
        findings.push({
          ...at(f),
          severity: "warning",
          code: "misplaced_vault_ref",
          message: `${f.path} holds the vault reference ${kind.scope}/${kind.key}, not a secret; ` +
            `a reference belongs in ${refField}`,
          remediation: movable
            ? `palyra-secrets configure ${field} ${shellArg(kind.scope)} ${kind.key} --from-config${pathArg}`
            : `rename the field to ${refField}`,
        });
        break;
      }
      case "placeholder": {
        const key = keyFor(f.segments);
        const command = `palyra-secrets configure ${field} global ${key}${pathArg}`;
        findings.push({
          ...at(f),
          severity: "warning",
          code: "placeholder_secret",
          message: `${f.path} holds a placeholder, not a secret`,
          remediation: !movable
            ? `put the real value in the vault: palyra-secrets set global ${key}, and its reference in place of ${f.path}`
            : kind.variable === undefined
            ? `store the real value (paste it at the prompt): ${command}`
            : `printf '%s' "$${kind.variable}" | ${command}`,
        });
        break;
      }
      case "plaintext": {
        const what = kind.credential !== undefined
          ? ` (recognised as: ${kind.credential})`
          : kind.url
          ? " (a URL with a password)"
          : "";
        findings.push({
          ...at(f),
          severity: "blocking",
          code: "plaintext_secret",
          message: `${f.path} holds a plaintext secret${what}`,
          remediation: moveWith(keyFor(f.segments)),
        });
        break;
      }
      case "known_credential":
        findings.push({
          ...at(f),
          severity: "blocking",
          code: "known_credential",
          message: `${f.path} holds a plaintext credential (recognised as: ${kind.credential})`,
          remediation: moveWith(keyFor(f.segments)),
        });
        break;
      case "embedded_credential":
        findings.push({
          ...at(f),
          severity: "blocking",
          code: "embedded_credential",
          message: `the text of ${f.path} contains a plaintext credential (recognised as: ${kind.credential})`,
          remediation: `remove the ${kind.credential} from the text of ${f.path}; if it is needed, store it with: ` +
            `palyra-secrets set global ${keyFor(f.segments)}, and revoke it if the file was shared`,
        });
        break;
      case "url_credentials":
        findings.push({
          ...at(f),
          severity: "blocking",
          code: "url_credentials",
          message: `${f.path} holds a URL with a password in it`,
          remediation: kind.whole
            ? moveWith(keyFor(f.segments))
            : `remove the password from the URL in the text of ${f.path}`,
        });
        break;
    }
  }

  if (options.backupsOf !== undefined) {
    for (const hit of await backupsWithPlaintext(options.backupsOf, options.fs)) {
      const first = hit.fields[0];
      const names = hit.fields.map((x) => x.path);
      findings.push({
        file: hit.path,
        line: first?.line ?? 1,
        column: first?.column ?? 1,
        field: first?.path ?? "",
        severity: "warning",
        code: "plaintext_in_backup",
        message: names.length === 0
          ? `${hit.path}, a backup of ${file}, may hold a plaintext secret`
          : `${hit.path}, a backup of ${file}, holds plaintext in ${names.join(", ")}`,
        remediation: `delete the backup once ${file} works: rm ${shellArg(hit.path)}`,
      });
    }
  }

  const count = (s: FindingSeverity) => findings.filter((x) => x.severity === s).length;
  return {
    path: file,
    summary: {
      total_references: references.length,
      resolved_references: references.filter((r) => r.status === "resolved").length,
      blocking_findings: count("blocking"),
      warning_findings: count("warning"),
      info_findings: count("info"),
    },
    findings,
    references,
  };
}
