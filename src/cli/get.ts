/** `palyra-secrets get <scope> <key> [--reveal]`. */
import { toBase64 } from "../crypto/encoding.ts";
import { writeStderr, writeStdout } from "../platform/terminal.ts";
import type { ParsedArgs } from "./args.ts";
import { openVault, scopeAndKey, versionArg } from "./common.ts";
import { EXIT, factLine, print, printJson } from "./output.ts";

/** Reads a secret; its bytes reach stdout only with `--reveal`. */
export async function run(args: ParsedArgs): Promise<number> {
  const [scope, key] = scopeAndKey(args);
  const version = args.values.version === undefined ? undefined : versionArg(args.values.version, "--version", 1);
  const vault = await openVault(args);
  using secret = await vault.getSecret(scope, key, version === undefined ? {} : { version });
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
}
