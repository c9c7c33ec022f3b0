/**
 * File paths. On POSIX systems this is a small implementation of POSIX path
 * rules, because loading `node:path` costs Deno (its Node layer) and Bun (its
 * argument validators) more than a whole `get`; on Windows, whose drive and
 * UNC rules are not reimplemented here, it is `node:path`. A property test
 * holds the POSIX implementation to `node:path`'s answers.
 */

/** The path operations this library uses. */
export interface PathOps {
  /** The separator this flavour writes. */
  readonly sep: string;
  /** Joins the parts and normalizes the result. */
  join(...parts: string[]): string;
  /** The folder part of a path. */
  dirname(path: string): string;
  /** The last part of a path. */
  basename(path: string): string;
  /** An absolute, normalized path: the parts resolved right to left against the current folder. */
  resolve(...parts: string[]): string;
}

/** `.` and `..` resolved and separators collapsed, without a leading or trailing `/`. */
function normalizeSegments(path: string, allowAboveRoot: boolean): string {
  const out: string[] = [];
  for (const seg of path.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length > 0 && out.at(-1) !== "..") out.pop();
      else if (allowAboveRoot) out.push("..");
      continue;
    }
    out.push(seg);
  }
  return out.join("/");
}

function normalize(path: string): string {
  if (path === "") return ".";
  const absolute = path.startsWith("/");
  const trailing = path.endsWith("/");
  const body = normalizeSegments(path, !absolute);
  if (body === "") return absolute ? "/" : trailing ? "./" : ".";
  return (absolute ? "/" : "") + body + (trailing ? "/" : "");
}

/** POSIX path rules, with the current folder from `cwd`. */
export function posixPaths(cwd: () => string): PathOps {
  return {
    sep: "/",
    join(...parts) {
      const joined = parts.filter((p) => p !== "").join("/");
      return joined === "" ? "." : normalize(joined);
    },
    dirname(path) {
      if (path === "") return ".";
      const hasRoot = path.startsWith("/");
      let end = -1;
      let sawName = false;
      for (let i = path.length - 1; i >= 1; i--) {
        if (path[i] === "/") {
          if (sawName) {
            end = i;
            break;
          }
        } else {
          sawName = true;
        }
      }
      if (end === -1) return hasRoot ? "/" : ".";
      if (hasRoot && end === 1) return "//";
      return path.slice(0, end);
    },
    basename(path) {
      let start = 0;
      let end = -1;
      for (let i = path.length - 1; i >= 0; i--) {
        if (path[i] === "/") {
          if (end !== -1) {
            start = i + 1;
            break;
          }
        } else if (end === -1) {
          end = i + 1;
        }
      }
      return end === -1 ? "" : path.slice(start, end);
    },
    resolve(...parts) {
      let acc = "";
      let absolute = false;
      for (let i = parts.length - 1; i >= -1 && !absolute; i--) {
        const part = i >= 0 ? parts[i]! : cwd();
        if (part === "") continue;
        acc = `${part}/${acc}`;
        absolute = part.startsWith("/");
      }
      const body = normalizeSegments(acc, !absolute);
      return absolute ? `/${body}` : body === "" ? "." : body;
    },
  };
}

type Globals = {
  Deno?: { build: { os: string }; cwd(): string };
  process?: { platform: string; cwd(): string };
};
const g = globalThis as Globals;
const windows = g.Deno !== undefined ? g.Deno.build.os === "windows" : g.process?.platform === "win32";
const ops: PathOps = windows ? await import("node:path") : posixPaths(() => (g.Deno ?? g.process)!.cwd());

/** The separator of this OS. */
export const sep: string = ops.sep;
/** Joins and normalizes, with this OS's rules. */
export const join = (...parts: string[]): string => ops.join(...parts);
/** The folder part of a path, with this OS's rules. */
export const dirname = (path: string): string => ops.dirname(path);
/** The last part of a path, with this OS's rules. */
export const basename = (path: string): string => ops.basename(path);
/** An absolute path: the parts resolved against the current folder. */
export const resolve = (...parts: string[]): string => ops.resolve(...parts);
