/** `palyra-secrets inject -i TEMPLATE [-o FILE]`. */
import { fsError } from "../errors.ts";
import { resolveAll } from "../resolve_env.ts";
import { concatBytes, utf8 } from "../crypto/encoding.ts";
import type { SensitiveBytes } from "../crypto/sensitive.ts";
import { defaultFileSystem } from "../platform/fs.ts";
import { resolve } from "../platform/path.ts";
import { writeStream } from "../platform/terminal.ts";
import type { ParsedArgs } from "./args.ts";
import { openVault, readUserText } from "./common.ts";
import { factLine, print, UsageError } from "./output.ts";

/** `{{ vault://<scope>/<key> }}`, with optional spaces inside the braces. */
const PLACEHOLDER = /\{\{\s*(vault:\/\/[^}]*?)\s*\}\}/g;

/** Renders the template; nothing is written unless every reference resolves. */
export async function run(args: ParsedArgs): Promise<number> {
  const input = args.values.in;
  if (typeof input !== "string") throw new UsageError("missing -i TEMPLATE", "inject");
  const output = typeof args.values.out === "string" ? args.values.out : undefined;
  const template = await readUserText(input, "template", "pass -i with the template file");
  const parts: string[] = [];
  const refs: string[] = [];
  let last = 0;
  for (const m of template.matchAll(PLACEHOLDER)) {
    parts.push(template.slice(last, m.index));
    refs.push(m[1]!);
    last = m.index + m[0].length;
  }
  parts.push(template.slice(last));
  const values: SensitiveBytes[] = [];
  let rendered: Uint8Array | undefined;
  try {
    if (refs.length > 0) {
      const vault = await openVault(args);
      try {
        values.push(
          ...await resolveAll(vault, refs, (i) => refs[i]!, () => `inject template "${input}"`),
        );
      } finally {
        vault.close();
      }
    }
    rendered = concatBytes(...parts.flatMap((p, i) => (i < values.length ? [utf8(p), values[i]!.bytes] : [utf8(p)])));
    if (output === undefined) {
      await writeStream("stdout", rendered);
      return 0;
    }
    const target = resolve(output);
    try {
      await defaultFileSystem.writeFileAtomic(target, rendered, 0o600);
    } catch (e) {
      throw fsError("write the rendered template", target, e);
    }
    await print(factLine("inject", [["template", input], ["out", output], ["references", refs.length]]));
    return 0;
  } finally {
    rendered?.fill(0);
    for (const v of values) v[Symbol.dispose]();
  }
}
