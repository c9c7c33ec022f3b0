/** Where the Palyra config file is when none is named. */
import { join } from "../platform/path.ts";
import { os } from "../platform/os.ts";
import { VaultError } from "../errors.ts";
import { defaultFileSystem } from "../platform/fs.ts";
import { userConfigFile } from "../platform/env.ts";

/**
 * The config file to use: `explicit` when given, else `./palyra.toml` when it
 * exists, else the Palyra config in the user's config folder.
 *
 * @example
 * ```ts
 * import { findConfigFile } from "@palyra/vault";
 * const path = await findConfigFile(); // "./palyra.toml" or "~/.config/palyra/palyra.toml"
 * ```
 */
export async function findConfigFile(explicit?: string): Promise<string> {
  if (explicit !== undefined) return explicit;
  const candidates = [join(os.cwd(), "palyra.toml"), userConfigFile()].filter((p): p is string => p !== undefined);
  for (const p of candidates) {
    const info = await defaultFileSystem.lstat(p).catch(() => undefined);
    if (info !== undefined) return p === candidates[0] ? "palyra.toml" : p;
  }
  throw new VaultError(
    "not_found",
    `find config file failed: looked for ${candidates.map((c) => `"${c}"`).join(" and ")}`,
    {
      hint: "pass --path with the config file",
    },
  );
}
