#!/usr/bin/env -S deno run -q --allow-read --allow-write --allow-env --allow-sys=hostname,uid --allow-run=kill,security,powershell,secret-tool
/**
 * `palyra-secrets`: the command-line interface of `@palyra/vault` (README,
 * "The CLI"). Argument parsing and output only; every action is a call into mod.ts.
 *
 * @example
 * ```sh
 * printf '%s' "$OPENAI_API_KEY" | palyra-secrets set global openai_api_key
 * palyra-secrets get global openai_api_key --reveal
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { readFile } from "node:fs/promises";
import {
  auditConfig,
  type AuditReport,
  BACKEND_KINDS,
  type BackendKind,
  configureField,
  diagnose,
  type DoctorReport,
  findConfigFile,
  formatScope,
  KEY_GRAMMAR,
  type LayoutName,
  type MigrateOptions,
  migrateVault,
  parseScope,
  SCOPE_GRAMMAR,
  validateKey,
  Vault,
  VaultError,
  type VaultOptions,
  VERSION,
} from "./mod.ts";
import {
  exitProcess,
  isEntryPoint,
  programArgs,
  readAllStdin,
  readHiddenLine,
  stdinIsTerminal,
  writeStderr,
  writeStdout,
} from "./src/platform/terminal.ts";
import { toBase64 } from "./src/crypto/encoding.ts";

const PROGRAM = "palyra-secrets";

/** Exit codes (README "The CLI"). */
const EXIT = { ok: 0, operational: 1, usage: 2, blocking: 3, interrupted: 130 } as const;

type OptionSpec = { type: "string" | "boolean"; short?: string };

const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  "vault-dir": { type: "string" },
  "identity-dir": { type: "string" },
  backend: { type: "string" },
  layout: { type: "string" },
  "max-bytes": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
};

const GLOBAL_HELP = `Global options:
  --vault-dir DIR      vault folder (default: PALYRA_VAULT_DIR, else beside the identity folder)
  --identity-dir DIR   identity folder (default: PALYRA_IDENTITY_DIR, else ~/.local/state/palyra/identity)
  --backend KIND       auto | encrypted_file | linux_secret_service | macos_keychain | windows_dpapi
  --layout LAYOUT      scoped | palyra: the layout a new vault is created in (default scoped;
                       palyra is the layout of Palyra's daemon); an existing vault keeps its own
  --max-bytes N        the largest value accepted, in bytes (default 65536)
  --json               print one JSON document
  -h, --help           show help
  -V, --version        show the version

Scope:  ${SCOPE_GRAMMAR}
Key:    ${KEY_GRAMMAR}`;

interface Command {
  usage: string;
  summary: string;
  example: string;
  options: Record<string, OptionSpec>;
  optionHelp?: string;
  positionals: [min: number, max: number];
  run(args: ParsedArgs): Promise<number>;
}

interface ParsedArgs {
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
}

/** A mistake in how the command was called (or a cancelled prompt); it carries its exit code. */
class UsageError extends Error {
  constructor(message: string, readonly command?: string, readonly exitCode: number = EXIT.usage) {
    super(message);
  }
}

// Control and format characters (escape sequences, bidi overrides, zero-width characters) and line
// separators: a vault folder is not trusted, so nothing read from it reaches a terminal raw.
const UNSAFE_CHARS = /[\p{Cc}\p{Cf}\u2028\u2029]/gu;

/** `\u` escapes for the characters a terminal would act on or hide (line feeds too, unless `keepLines`). */
function escapeUnsafe(text: string, keepLines = false): string {
  return text.replace(
    UNSAFE_CHARS,
    (c) => keepLines && c === "\n" ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** `key=value` with the value quoted when it could be misread, and never a raw control character. */
function pair(key: string, value: string | number | boolean): string {
  const s = String(value);
  return `${key}=${/^[^\s"'=\\\p{Cc}\p{Cf}\u2028\u2029]+$/u.test(s) ? s : escapeUnsafe(JSON.stringify(s))}`;
}

function factLine(command: string, pairs: Array<[string, string | number | boolean]>): string {
  return [`secrets.${command}`, ...pairs.map(([k, v]) => pair(k, v))].join(" ") + "\n";
}

async function print(text: string): Promise<void> {
  await writeStdout(text);
}

async function printJson(doc: unknown): Promise<void> {
  // JSON.stringify leaves C1 controls and format characters raw: escape them too (still valid JSON).
  await writeStdout(escapeUnsafe(JSON.stringify(doc, null, 2), true) + "\n");
}

const BACKEND_CHOICES = ["auto", ...BACKEND_KINDS];
const DEFAULT_MAX_BYTES = 65536;

/** `--max-bytes`, checked: a usage error when it is not a whole number. */
function maxBytes(args: ParsedArgs): number {
  const raw = args.values["max-bytes"];
  if (raw === undefined) return DEFAULT_MAX_BYTES;
  if (typeof raw !== "string" || !/^\d{1,10}$/.test(raw) || Number(raw) < 1) {
    throw new UsageError(`--max-bytes takes a whole number of bytes (at least 1), got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

async function openVault(args: ParsedArgs): Promise<Vault> {
  const options: VaultOptions = { maxSecretBytes: maxBytes(args) };
  const v = args.values;
  if (typeof v["vault-dir"] === "string") options.root = v["vault-dir"];
  if (typeof v["identity-dir"] === "string") options.identityRoot = v["identity-dir"];
  if (typeof v.backend === "string") {
    if (!BACKEND_CHOICES.includes(v.backend)) {
      throw new UsageError(`--backend must be one of ${BACKEND_CHOICES.join(", ")}; got ${JSON.stringify(v.backend)}`);
    }
    options.backend = v.backend as BackendKind;
  }
  if (v.layout !== undefined) options.layout = layoutArg(v.layout, "--layout");
  return await Vault.open(options);
}

function layoutArg(value: string | boolean | undefined, option: string): LayoutName {
  if (value === "scoped" || value === "palyra") return value;
  throw new UsageError(`${option} must be scoped or palyra; got ${JSON.stringify(value)}`);
}

/** Checks a scope and key from the command line before anything else happens. */
function scopeAndKey(args: ParsedArgs): [string, string] {
  const scope = formatScope(parseScope(args.positionals[0]!));
  return [scope, validateKey(args.positionals[1]!)];
}

/**
 * The value for `set`/`configure`: a hidden prompt on a terminal, else stdin
 * (read no further than the limit allows).
 */
async function readValue(label: string, limit: number): Promise<Uint8Array> {
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

const COMMANDS: Record<string, Command> = {
  doctor: {
    usage: "doctor",
    summary: "show the runtime, folders and modes, backends available here, and lock state (reads no secret)",
    example: `${PROGRAM} doctor --json`,
    options: {},
    positionals: [0, 0],
    async run(args) {
      const report = await diagnose({
        ...(typeof args.values["vault-dir"] === "string" ? { root: args.values["vault-dir"] } : {}),
        ...(typeof args.values["identity-dir"] === "string" ? { identityRoot: args.values["identity-dir"] } : {}),
      });
      if (args.values.json) await printJson(report);
      else await print(doctorText(report));
      return EXIT.ok;
    },
  },

  set: {
    usage: "set <scope> <key> [--force]",
    summary: "store a secret; the value comes from stdin (exact bytes) or a hidden prompt",
    example: `printf '%s' "$OPENAI_API_KEY" | ${PROGRAM} set global openai_api_key`,
    options: { force: { type: "boolean" } },
    optionHelp: "  --force              replace a different value already stored under <scope> <key>",
    positionals: [2, 2],
    async run(args) {
      const [scope, key] = scopeAndKey(args);
      const vault = await openVault(args);
      const value = await readValue(`${scope}/${key}`, maxBytes(args));
      let meta;
      try {
        meta = await vault.putSecret(scope, key, value, { overwrite: args.values.force === true });
      } catch (e) {
        if (VaultError.is(e, "conflict")) {
          throw new VaultError("conflict", `set ${scope}/${key} failed: it already holds a different value`, {
            hint: `run again with --force to replace it (see the current one with: ${PROGRAM} get ${scope} ${key})`,
            cause: e,
          });
        }
        throw e;
      } finally {
        value.fill(0);
      }
      if (args.values.json) {
        await printJson({
          scope,
          key,
          stored: true,
          replaced: meta.replaced,
          created_at_unix_ms: meta.createdAtUnixMs,
          updated_at_unix_ms: meta.updatedAtUnixMs,
        });
      } else {
        await print(factLine("set", [["scope", scope], ["key", key], ["stored", true], ["replaced", meta.replaced], [
          "updated_at_unix_ms",
          meta.updatedAtUnixMs,
        ]]));
      }
      return EXIT.ok;
    },
  },

  get: {
    usage: "get <scope> <key> [--reveal]",
    summary: "read a secret; redacted unless --reveal, which writes the exact bytes to stdout",
    example: `${PROGRAM} get ws:acme github_token --reveal`,
    options: { reveal: { type: "boolean" } },
    optionHelp: "  --reveal             write the secret's exact bytes to stdout",
    positionals: [2, 2],
    async run(args) {
      const [scope, key] = scopeAndKey(args);
      const vault = await openVault(args);
      using secret = await vault.getSecret(scope, key);
      if (args.values.reveal) {
        await writeStderr(`warning: the value of ${scope}/${key} is being written to stdout\n`);
        if (args.values.json) {
          // Standard padded base64, as `base64 -d` expects.
          const b64 = toBase64(secret.bytes);
          await printJson({ scope, key, reveal: true, value_b64: b64 + "=".repeat((4 - (b64.length % 4)) % 4) });
        } else {
          // The stream may keep the buffer until it is written: give it a copy, and wipe that after.
          const copy = new Uint8Array(secret.bytes);
          try {
            await writeStdout(copy);
          } finally {
            copy.fill(0);
          }
        }
      } else if (args.values.json) {
        await printJson({ scope, key, value: "<redacted>", reveal: false });
      } else {
        await print(factLine("get", [["scope", scope], ["key", key], ["value", "<redacted>"], ["reveal", false]]));
      }
      return EXIT.ok;
    },
  },

  list: {
    usage: "list [<scope>]",
    summary: "list keys with their created and updated times; every scope when none is given",
    example: `${PROGRAM} list ws:acme --json`,
    options: {},
    positionals: [0, 1],
    async run(args) {
      const scope = args.positionals[0] === undefined ? undefined : formatScope(parseScope(args.positionals[0]));
      const vault = await openVault(args);
      const items = await vault.listSecrets(scope);
      if (args.values.json) {
        await printJson({
          scope: scope ?? null,
          secrets: items.map((m) => ({
            scope: m.scope,
            key: m.key,
            created_at_unix_ms: m.createdAtUnixMs,
            updated_at_unix_ms: m.updatedAtUnixMs,
          })),
        });
      } else {
        let out = "";
        for (const m of items) {
          out += factLine("list", [["scope", m.scope], ["key", m.key], ["created_at_unix_ms", m.createdAtUnixMs], [
            "updated_at_unix_ms",
            m.updatedAtUnixMs,
          ]]);
        }
        out += factLine("list", [["count", items.length]]);
        await print(out);
      }
      return EXIT.ok;
    },
  },

  delete: {
    usage: "delete <scope> <key>",
    summary: "delete a secret; prints deleted=false when it did not exist",
    example: `${PROGRAM} delete ws:acme github_token`,
    options: {},
    positionals: [2, 2],
    async run(args) {
      const [scope, key] = scopeAndKey(args);
      const vault = await openVault(args);
      const deleted = await vault.deleteSecret(scope, key);
      if (args.values.json) await printJson({ scope, key, deleted });
      else await print(factLine("delete", [["scope", scope], ["key", key], ["deleted", deleted]]));
      return EXIT.ok;
    },
  },

  migrate: {
    usage: "migrate --to scoped|palyra",
    summary: "convert the vault in place to the scoped layout or to the layout of Palyra's daemon; " +
      "safe to interrupt, and run again to finish",
    example: `${PROGRAM} migrate --to palyra`,
    options: { to: { type: "string" } },
    optionHelp: "  --to LAYOUT          scoped (every scope kind) | palyra (shared with Palyra's daemon)",
    positionals: [0, 0],
    async run(args) {
      const to = layoutArg(args.values.to, "--to");
      if (args.values.layout !== undefined) throw new UsageError("migrate takes --to, not --layout");
      const v = args.values;
      const options: MigrateOptions = { to, maxSecretBytes: maxBytes(args) };
      if (typeof v["vault-dir"] === "string") options.root = v["vault-dir"];
      if (typeof v["identity-dir"] === "string") options.identityRoot = v["identity-dir"];
      const r = await migrateVault(options);
      if (args.values.json) {
        await printJson({
          from: r.from,
          to: r.to,
          secrets: r.secrets,
          already_done: r.alreadyDone,
          resumed: r.resumed,
        });
      } else {
        await print(factLine("migrate", [["from", r.from], ["to", r.to], ["secrets", r.secrets], [
          "already_done",
          r.alreadyDone,
        ], ["resumed", r.resumed]]));
      }
      return EXIT.ok;
    },
  },

  audit: {
    usage: "audit [--path FILE] [--strict]",
    summary: "find plaintext secrets and check vault references in a Palyra config (palyra.toml)",
    example: `${PROGRAM} audit --path palyra.toml --strict`,
    options: { path: { type: "string" }, strict: { type: "boolean" } },
    optionHelp: "  --path FILE          the config file (default: ./palyra.toml, else the user config)\n" +
      "  --strict             exit 3 when there are blocking findings",
    positionals: [0, 0],
    async run(args) {
      const explicit = typeof args.values.path === "string" ? args.values.path : undefined;
      const path = await findConfigFile(explicit);
      const text = await readConfigText(path);
      const report = await auditConfig(text, {
        path,
        vault: () => openVault(args),
        backupsOf: path,
        ...(path === "palyra.toml" ? {} : { pathArgument: path }),
      });
      if (args.values.json) await printJson(report);
      else await print(auditText(report));
      return args.values.strict && report.summary.blocking_findings > 0 ? EXIT.blocking : EXIT.ok;
    },
  },

  configure: {
    usage: "configure <dotted.field> <scope> <key> [--path FILE] [--from-config] [--force] [--backups N]",
    summary: "store a config field's secret in the vault and replace the field with <field>_vault_ref",
    example: `${PROGRAM} configure model_provider.openai_api_key global openai_api_key --from-config`,
    options: {
      path: { type: "string" },
      "from-config": { type: "boolean" },
      force: { type: "boolean" },
      backups: { type: "string" },
    },
    optionHelp: "  --path FILE          the config file (default: ./palyra.toml, else the user config)\n" +
      "  --from-config        move the plaintext already in the file (otherwise the value comes from stdin)\n" +
      "  --force              replace a different value already stored under <scope> <key>\n" +
      "  --backups N          how many backups to keep as FILE.bak.1 … (default 5; 0 for none)",
    positionals: [3, 3],
    async run(args) {
      const [field, rawScope, rawKey] = args.positionals as [string, string, string];
      const scope = formatScope(parseScope(rawScope));
      const key = validateKey(rawKey);
      let backups = 5;
      if (typeof args.values.backups === "string") {
        if (!/^\d{1,3}$/.test(args.values.backups)) throw new UsageError("--backups takes a whole number", "configure");
        backups = Number(args.values.backups);
      }
      const path = await findConfigFile(typeof args.values.path === "string" ? args.values.path : undefined);
      const vault = await openVault(args);
      const fromConfig = args.values["from-config"] === true;
      const value = fromConfig ? undefined : await readValue(`${scope}/${key}`, maxBytes(args));
      try {
        const r = await configureField({
          path,
          field,
          scope,
          key,
          fromConfig,
          force: args.values.force === true,
          backups,
          vault,
          ...(value === undefined ? {} : { value }),
        });
        if (args.values.json) {
          await printJson({
            path,
            field: r.field,
            reference: r.reference,
            stored: r.stored,
            replaced: r.replaced,
            changed: r.changed,
            backup: r.backup ?? null,
            plaintext_backups: r.plaintextBackups,
          });
        } else {
          await print(factLine("configure", [
            ["path", path],
            ["field", r.field],
            ["ref", r.reference],
            ["stored", r.stored],
            ["replaced", r.replaced],
            ["changed", r.changed],
            ...(r.backup === undefined ? [] : [["backup", r.backup] as [string, string]]),
          ]));
        }
        if (r.plaintextBackups.length > 0) {
          await writeStderr(
            `warning: plaintext secrets remain in ${r.plaintextBackups.join(", ")}; ` +
              `delete ${r.plaintextBackups.length === 1 ? "it" : "them"} once the new file works\n`,
          );
        }
      } finally {
        value?.fill(0);
      }
      return EXIT.ok;
    },
  },
};

function doctorText(r: DoctorReport): string {
  let out = factLine("doctor", [["runtime", r.runtime], ["platform", r.platform]]);
  out += factLine("doctor", [["vault_dir", r.vault.path], ["exists", r.vault.exists], ["mode", r.vault.mode ?? "-"]]);
  out += factLine("doctor", [
    ["identity_dir", r.identity.path],
    ["exists", r.identity.exists],
    ["mode", r.identity.mode ?? "-"],
    ["identity_file", r.identity.file ?? "-"],
  ]);
  out += factLine("doctor", [
    ["backend_in_use", r.backendInUse ?? "none (vault not created yet)"],
    ["layout", r.layout ?? "-"],
    ["auto_would_choose", r.autoChoice.kind],
  ]);
  for (const b of r.backends) {
    out += factLine("doctor", [["backend", b.kind], ["available", b.available], ["reason", b.reason]]);
  }
  for (const l of r.locks) {
    out += factLine("doctor", [["lock", l.path], ["holder", l.holder], ["holder_state", l.holderState], [
      "age_ms",
      l.ageMs ?? "-",
    ]]);
  }
  out += factLine("doctor", [["locks_held", r.locks.length]]);
  for (const p of r.problems) {
    out += factLine("doctor", [["problem", p.code], ["path", p.path], ["message", p.message], ["hint", p.hint]]);
  }
  out += factLine("doctor", [["problems", r.problems.length]]);
  return out;
}

async function readConfigText(path: string): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new VaultError(
      code === "ENOENT" ? "not_found" : "io",
      `read config file "${path}" failed (${code ?? String(e)})`,
      { hint: "pass --path with the config file" },
    );
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new VaultError("invalid_config", `read config file "${path}" failed: it is not valid UTF-8`, {
      hint: "save the file as UTF-8",
    });
  }
}

function auditText(report: AuditReport): string {
  let out = "";
  for (const f of report.findings) {
    out += factLine("audit", [
      ["finding", f.code],
      ["severity", f.severity],
      ["file", f.file],
      ["line", f.line],
      ["column", f.column],
      ["field", f.field],
      ["message", f.message],
      ["remediation", f.remediation],
    ]);
  }
  const s = report.summary;
  out += factLine("audit", [
    ["path", report.path],
    ["total_references", s.total_references],
    ["resolved_references", s.resolved_references],
    ["blocking_findings", s.blocking_findings],
    ["warning_findings", s.warning_findings],
    ["info_findings", s.info_findings],
  ]);
  return out;
}

function programHelp(): string {
  const width = Math.max(...Object.values(COMMANDS).map((c) => c.usage.split(" [")[0]!.length));
  const lines = Object.values(COMMANDS).map((c) => `  ${c.usage.split(" [--")[0]!.padEnd(width + 12)} ${c.summary}`);
  return `${PROGRAM} ${VERSION}: keep API keys and tokens in an encrypted vault

Usage: ${PROGRAM} <command> [options]

Commands:
${lines.join("\n")}

${GLOBAL_HELP}

Examples:
${Object.values(COMMANDS).map((c) => `  ${c.example}`).join("\n")}

Exit codes: 0 ok, 1 operational error, 2 usage error, 3 audit --strict found blocking findings.
Run '${PROGRAM} <command> --help' for a command's options and an example.
`;
}

function commandHelp(c: Command): string {
  return `Usage: ${PROGRAM} ${c.usage} [global options]

${c.summary}
${c.optionHelp ? `\nOptions:\n${c.optionHelp}\n` : ""}
${GLOBAL_HELP}

Example:
  ${c.example}
`;
}

function parse(argv: string[]): { name: string | undefined; command: Command | undefined; args: ParsedArgs } {
  // A first, lenient pass finds the command; the second is strict for that command's options.
  const loose = parseArgs({ args: argv, options: GLOBAL_OPTIONS, strict: false, allowPositionals: true });
  const name = loose.positionals[0];
  const command = name === undefined ? undefined : COMMANDS[name];
  if (name !== undefined && command === undefined) {
    throw new UsageError(`unknown command ${JSON.stringify(name)}; commands: ${Object.keys(COMMANDS).join(", ")}`);
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...GLOBAL_OPTIONS, ...(command?.options ?? {}) },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    // node:util's messages name the option; drop its advice about "--" which does not apply here.
    const msg = (e as Error).message.split(". To specify a positional")[0]!.replace(/\.$/, "");
    throw new UsageError(msg, name);
  }
  const args: ParsedArgs = { positionals: parsed.positionals.slice(1), values: parsed.values };
  if (command && !args.values.help) {
    const [min, max] = command.positionals;
    if (args.positionals.length < min) {
      throw new UsageError(`missing arguments; usage: ${PROGRAM} ${command.usage}`, name);
    }
    if (args.positionals.length > max) {
      throw new UsageError(
        `too many arguments (${JSON.stringify(args.positionals[max])}); usage: ${PROGRAM} ${command.usage}`,
        name,
      );
    }
  }
  return { name, command, args };
}

/** Runs the CLI with `argv` and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  let name: string | undefined;
  let json = argv.includes("--json");
  try {
    const p = parse(argv);
    name = p.name;
    json = p.args.values.json === true;
    if (p.args.values.version) {
      await print(`${PROGRAM} ${VERSION}\n`);
      return EXIT.ok;
    }
    if (p.command === undefined) {
      // A bare `palyra-secrets` asks what it can do.
      await print(programHelp());
      return EXIT.ok;
    }
    if (p.args.values.help) {
      await print(commandHelp(p.command));
      return EXIT.ok;
    }
    return await p.command.run(p.args);
  } catch (e) {
    return await reportError(e, name, json);
  }
}

async function reportError(e: unknown, command: string | undefined, json: boolean): Promise<number> {
  let code: string;
  let message: string;
  let hint: string | undefined;
  let exit: number;
  if (e instanceof UsageError) {
    code = e.exitCode === EXIT.interrupted ? "cancelled" : "usage";
    message = e.message;
    hint = code === "usage" ? `run '${PROGRAM} ${e.command ?? command ?? ""} --help'`.replace("  ", " ") : undefined;
    exit = e.exitCode;
  } else if (e instanceof VaultError) {
    code = e.code;
    message = e.message;
    hint = e.hint;
    // A malformed scope, key or reference on the command line is a usage error.
    exit = code === "invalid_scope" || code === "invalid_key" || code === "invalid_ref" ? EXIT.usage : EXIT.operational;
  } else if (e instanceof Error && (e.name === "NotCapable" || e.name === "PermissionDenied")) {
    // A Deno permission the binary was not granted.
    code = "permission";
    message = e.message;
    hint = "run with the permissions listed in the README (deno task cli shows them)";
    exit = EXIT.operational;
  } else {
    code = "internal";
    message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    exit = EXIT.operational;
  }
  const line = escapeUnsafe(`error: ${code}: ${message}${hint ? `; hint: ${hint}` : ""}`.replace(/[\r\n]+/g, " "));
  await writeStderr(line + "\n");
  if (json) await printJson({ error: { code, message, hint: hint ?? null } });
  return exit;
}

if (isEntryPoint(import.meta)) {
  exitProcess(await main(programArgs()));
}
