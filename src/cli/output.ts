/**
 * What the CLI prints: `secrets.<command> key=value` fact lines, JSON
 * documents, and the errors that carry their exit code.
 */
import { writeStdout } from "../platform/terminal.ts";

/** The program's name, as users type it. */
export const PROGRAM = "palyra-secrets";

/** Exit codes (README "The CLI"). */
export const EXIT = { ok: 0, operational: 1, usage: 2, blocking: 3, interrupted: 130 } as const;

/** A mistake in how the command was called (or a cancelled prompt); it carries its exit code. */
export class UsageError extends Error {
  constructor(message: string, readonly command?: string, readonly exitCode: number = EXIT.usage) {
    super(message);
  }
}

// Control and format characters (escape sequences, bidi overrides, zero-width characters) and line
// separators: a vault folder is not trusted, so nothing read from it reaches a terminal raw.
const UNSAFE_CHARS = /[\p{Cc}\p{Cf}\u2028\u2029]/gu;

/** `\u` escapes for the characters a terminal would act on or hide (line feeds too, unless `keepLines`). */
export function escapeUnsafe(text: string, keepLines = false): string {
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

/** One `secrets.<command> key=value …` line. */
export function factLine(command: string, pairs: Array<[string, string | number | boolean]>): string {
  return [`secrets.${command}`, ...pairs.map(([k, v]) => pair(k, v))].join(" ") + "\n";
}

/** Writes text to standard output. */
export async function print(text: string): Promise<void> {
  await writeStdout(text);
}

/** Writes one JSON document to standard output. */
export async function printJson(doc: unknown): Promise<void> {
  // JSON.stringify leaves C1 controls and format characters raw: escape them too (still valid JSON).
  await writeStdout(escapeUnsafe(JSON.stringify(doc, null, 2), true) + "\n");
}
