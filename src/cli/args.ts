/**
 * Command-line option parsing: long options (`--name value`, `--name=value`),
 * boolean flags and single-letter aliases, strict about unknown options. Written
 * here rather than taken from `node:util` because loading Deno's Node layer for
 * it would cost more than the whole of `get`.
 */
import { UsageError } from "./output.ts";

/** How one option is spelt and what it takes. */
export interface OptionSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
  /** A string option that may be given more than once: its values are collected in order. */
  readonly multiple?: boolean;
}

/** Options and positional arguments, as parsed. */
export interface ParsedArgs {
  positionals: string[];
  values: Record<string, string | boolean | string[] | undefined>;
}

/**
 * Parses `argv` against `options`. With `strict`, an unknown option or a
 * missing value is a `UsageError` naming it; without, unknown options are
 * skipped (the first pass, which only looks for the command's name). After
 * `verbatimAfter` positionals, everything is positional as it is: the command
 * line of a program to run, whose options are its own.
 */
export function parseArgs(
  argv: readonly string[],
  options: Readonly<Record<string, OptionSpec>>,
  strict: boolean,
  command?: string,
  verbatimAfter = Infinity,
): ParsedArgs {
  const values: ParsedArgs["values"] = {};
  const positionals: string[] = [];
  const shorts = new Map<string, string>();
  for (const name in options) if (options[name]!.short) shorts.set(options[name]!.short!, name);
  const fail = (message: string): never => {
    throw new UsageError(message, command);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      if (eq >= 0) inline = arg.slice(eq + 1);
    } else if (arg.length === 2 && arg[0] === "-" && arg[1] !== "-") {
      name = shorts.get(arg[1]!);
      if (name === undefined) {
        if (strict) fail(`unknown option ${JSON.stringify(arg)}`);
        continue;
      }
    } else {
      positionals.push(arg);
      if (positionals.length > verbatimAfter) {
        positionals.push(...argv.slice(i + 1));
        break;
      }
      continue;
    }
    const spec = Object.hasOwn(options, name) ? options[name] : undefined;
    if (spec === undefined) {
      if (strict) fail(`unknown option ${JSON.stringify(arg.split("=")[0])}`);
      continue;
    }
    if (spec.type === "boolean") {
      if (inline !== undefined) fail(`option --${name} takes no value`);
      values[name] = true;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      // A value that looks like an option is more likely a forgotten value; `--name=-x` passes one.
      if (next === undefined || (next.startsWith("-") && next.length > 1)) {
        if (!strict) continue;
        fail(`option --${name} needs a value (write --${name}=VALUE for a value that starts with "-")`);
      }
      value = next;
      i++;
    }
    if (spec.multiple) {
      const list = values[name];
      values[name] = [...(Array.isArray(list) ? list : []), value as string];
    } else {
      values[name] = value;
    }
  }
  return { positionals, values };
}
