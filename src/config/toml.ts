/**
 * A TOML configuration file seen as a flat list of fields, each with its
 * dotted path, its value and where it sits in the source text, so that audit
 * can point at a line and column and configure can change one value while
 * every other byte stays as it was. Parsing is `toml-eslint-parser`'s.
 */
import type { AST } from "toml-eslint-parser";
import { VaultError } from "../errors.ts";

/** One value in the file. */
export interface ConfigField {
  /** Dotted path: `model_provider.openai_api_key`, `channels[0].bot_token`, `tokens[1]`. */
  readonly path: string;
  /** The path as segments (numbers index arrays). */
  readonly segments: readonly (string | number)[];
  /** The key name the value belongs to (for array elements, the array's key). */
  readonly name: string;
  /** The string value, or `undefined` for other types. */
  readonly value: string | undefined;
  /** 1-based line and column of the key (of the element, inside arrays). */
  readonly line: number;
  readonly column: number;
  /** Source offsets of the value. */
  readonly valueRange: readonly [number, number];
  /** Source offsets of the last key segment; `undefined` for array elements. */
  readonly keyRange: readonly [number, number] | undefined;
  /** Whether the last key segment is quoted in the source (`"key"` or `'key'`). */
  readonly keyQuoted: boolean;
}

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

/** Formats path segments as `a.b[0].c`, quoting keys that are not bare. */
export function formatPath(segments: readonly (string | number)[]): string {
  let out = "";
  for (const s of segments) {
    if (typeof s === "number") out += `[${s}]`;
    else out += (out === "" ? "" : ".") + (BARE_KEY.test(s) ? s : JSON.stringify(s));
  }
  return out;
}

/**
 * Parses a dotted path (`a.b[0].c`, `"quoted.key".x`) into segments.
 * Returns `undefined` when it is malformed.
 */
export function parsePath(text: string): (string | number)[] | undefined {
  const out: (string | number)[] = [];
  let i = 0;
  let expectKey = true;
  while (i < text.length) {
    const c = text[i]!;
    if (expectKey) {
      if (c === '"') {
        const m = /^"((?:[^"\\]|\\.)*)"/.exec(text.slice(i));
        if (!m) return undefined;
        try {
          out.push(JSON.parse(m[0]) as string);
        } catch {
          return undefined;
        }
        i += m[0].length;
      } else {
        const m = /^[A-Za-z0-9_-]+/.exec(text.slice(i));
        if (!m) return undefined;
        out.push(m[0]);
        i += m[0].length;
      }
      expectKey = false;
    } else if (c === ".") {
      expectKey = true;
      i++;
    } else if (c === "[") {
      const m = /^\[(\d+)\]/.exec(text.slice(i));
      if (!m) return undefined;
      out.push(Number(m[1]));
      i += m[0].length;
    } else {
      return undefined;
    }
  }
  return expectKey ? undefined : out;
}

function keyName(k: AST.TOMLBare | AST.TOMLQuoted): string {
  return k.type === "TOMLBare" ? k.name : k.value;
}

/** How deep arrays and inline tables may nest; real configs stay far below this. */
export const MAX_NESTING = 200;

const BOM = "\uFEFF";

/**
 * The deepest nesting of `[` and `{` outside strings and comments. A cheap
 * scan that runs before the (recursive) parser, so that a hostile file fails
 * the same way on every runtime instead of overflowing the stack.
 */
function nestingDepth(text: string, stopAt: number): number {
  let depth = 0;
  let max = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === "#") {
      while (i < n && text[i] !== "\n") i++;
    } else if (c === '"' || c === "'") {
      const triple = text.startsWith(c.repeat(3), i);
      const basic = c === '"';
      i += triple ? 3 : 1;
      while (i < n) {
        const d = text[i]!;
        if (basic && d === "\\") {
          i += 2;
          continue;
        }
        if (!triple && d === "\n") break;
        if (d === c && (!triple || text.startsWith(c.repeat(3), i))) {
          if (triple) {
            i += 3;
            while (text[i] === c) i++; // up to two quotes may end the content
          } else {
            i++;
          }
          break;
        }
        i++;
      }
      continue;
    } else if (c === "[" || c === "{") {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > stopAt) return max;
      }
    } else if (c === "]" || c === "}") {
      if (depth > 0) depth--;
    }
    i++;
  }
  return max;
}

function invalidConfig(file: string, why: string, hint: string, cause?: unknown): VaultError {
  return new VaultError("invalid_config", `parse config "${file}" failed${why}`, {
    hint,
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Parses TOML text into its fields. A UTF-8 byte order mark at the start is
 * skipped (lines and columns count from after it; source offsets still index
 * `text`). A syntax error is an `invalid_config` error naming the 1-based line
 * and column.
 */
export async function parseConfigFields(text: string, file: string): Promise<ConfigField[]> {
  // Loaded on first use, so `import { Vault }` does not load a TOML parser.
  const { ParseError, parseTOML } = await import("toml-eslint-parser");
  const offset = text.startsWith(BOM) ? 1 : 0;
  const body = offset === 0 ? text : text.slice(offset);
  if (nestingDepth(body, MAX_NESTING) > MAX_NESTING) {
    throw invalidConfig(
      file,
      `: arrays or inline tables nest deeper than ${MAX_NESTING} levels`,
      "flatten the structure; a Palyra config never nests that deep",
    );
  }
  try {
    return collectFields(parseTOML(body), offset);
  } catch (e) {
    if (e instanceof VaultError) throw e;
    if (e instanceof ParseError) {
      // The parser counts columns from 0; findings (and editors) count from 1.
      throw invalidConfig(
        file,
        ` at line ${e.lineNumber}, column ${e.column + 1}: ${e.message}`,
        "fix the TOML syntax at that place and run again",
        e,
      );
    }
    if (e instanceof RangeError) {
      // A stack overflow in the parser: nesting the scan above did not catch.
      throw invalidConfig(file, ": the file nests too deeply to be read", "flatten the structure", e);
    }
    throw e;
  }
}

function collectFields(program: AST.TOMLProgram, offset: number): ConfigField[] {
  const shift = (r: readonly [number, number]): readonly [number, number] => [r[0] + offset, r[1] + offset];
  const fields: ConfigField[] = [];
  const visitValue = (
    node: AST.TOMLContentNode,
    segments: (string | number)[],
    name: string,
    at: AST.TOMLNode,
    keyRange: readonly [number, number] | undefined,
    keyQuoted: boolean,
  ) => {
    if (node.type === "TOMLInlineTable") {
      for (const kv of node.body) visitKeyValue(kv, segments);
    } else if (node.type === "TOMLArray") {
      node.elements.forEach((el, i) => visitValue(el, [...segments, i], name, el, undefined, false));
    } else {
      fields.push({
        path: formatPath(segments),
        segments,
        name,
        value: node.kind === "string" ? node.value : undefined,
        line: at.loc.start.line,
        column: at.loc.start.column + 1,
        valueRange: shift(node.range),
        keyRange: keyRange === undefined ? undefined : shift(keyRange),
        keyQuoted,
      });
    }
  };
  const visitKeyValue = (kv: AST.TOMLKeyValue, prefix: readonly (string | number)[]) => {
    const keys = kv.key.keys;
    const last = keys[keys.length - 1]!;
    const segments = [...prefix, ...keys.map(keyName)];
    visitValue(kv.value, segments, keyName(last), kv, last.range, last.type === "TOMLQuoted");
  };
  for (const top of program.body) {
    for (const item of top.body) {
      if (item.type === "TOMLKeyValue") visitKeyValue(item, []);
      else for (const kv of item.body) visitKeyValue(kv, item.resolvedKey);
    }
  }
  return fields;
}
