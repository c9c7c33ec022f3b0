/** Where the Palyra config file is when none is named. */
import { join } from "node:path";
import process from "node:process";
import { VaultError } from "../errors.ts";
import { nodeFileSystem } from "../platform/fs.ts";
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
  const candidates = [join(process.cwd(), "palyra.toml"), userConfigFile()].filter((p): p is string => p !== undefined);
  for (const p of candidates) {
    const info = await nodeFileSystem.lstat(p).catch(() => undefined);
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
