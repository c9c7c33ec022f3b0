/**
 * The CLI's dispatcher: finds the command, checks its arguments, runs it, and
 * turns any error into one line on stderr and an exit code.
 */
import { VaultError } from "../errors.ts";
import { isPermissionDenied } from "../platform/process.ts";
import { KEY_GRAMMAR, SCOPE_GRAMMAR } from "../scope.ts";
import { VERSION } from "../version.ts";
import { writeStderr } from "../platform/terminal.ts";
import { parseArgs, type ParsedArgs } from "./args.ts";
import { type Command, COMMANDS, GLOBAL_OPTIONS } from "./commands.ts";
import { escapeUnsafe, EXIT, print, printJson, PROGRAM, UsageError } from "./output.ts";

const GLOBAL_HELP = `Global options:
  --vault-dir DIR      vault folder (default: PALYRA_VAULT_DIR, else beside the identity folder)
  --identity-dir DIR   identity folder (default: PALYRA_IDENTITY_DIR, else ~/.local/state/palyra/identity)
  --kek-file FILE      open the vault with this 32-byte key instead of the identity (after rekey --to-kek-file)
  --store URL          keep the vault in PostgreSQL (postgres://…, as psql takes it) instead of a folder
                       (default: PALYRA_VAULT_STORE)
  --backend KIND       auto | encrypted_file | linux_secret_service | macos_keychain | windows_dpapi
  --layout LAYOUT      scoped | palyra: the layout a new vault is created in (default scoped;
                       palyra is the layout of Palyra's daemon); an existing vault keeps its own
  --max-bytes N        the largest value accepted, in bytes (default 65536)
  --json               print one JSON document
  -h, --help           show help
  -V, --version        show the version

Scope:  ${SCOPE_GRAMMAR}
Key:    ${KEY_GRAMMAR}`;

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
  const name = parseArgs(argv, GLOBAL_OPTIONS, false).positionals[0];
  const command = name !== undefined && Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (name !== undefined && command === undefined) {
    throw new UsageError(`unknown command ${JSON.stringify(name)}; commands: ${Object.keys(COMMANDS).join(", ")}`);
  }
  const parsed = parseArgs(
    argv,
    { ...GLOBAL_OPTIONS, ...(command?.options ?? {}) },
    true,
    name,
    command?.takesCommandLine ? 1 : Infinity,
  );
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

/**
 * Runs the CLI with `argv` (the arguments after the program name) and returns
 * the exit code.
 *
 * @example
 * ```ts
 * import { main } from "@palyra/vault/cli";
 * const code = await main(["list", "--json"]);
 * ```
 */
export async function main(argv: string[]): Promise<number> {
  let name: string | undefined;
  let json = argv.includes("--json");
  try {
    const p = parse(argv);
    name = p.name;
    json = p.args.values.json === true;
    // `get --version N` takes a value; only the flag alone asks for the program's version.
    if (p.args.values.version === true) {
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
    const { run } = await p.command.load();
    return await run(p.args);
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
  } else if (isPermissionDenied(e)) {
    // A Deno permission the binary was not granted.
    code = "permission";
    message = (e as Error).message;
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
