/**
 * Environment variables and default folders. Reading the environment can be
 * denied (Deno without --allow-env): that reads as "not set".
 */
import { os } from "./os.ts";
import { join } from "./path.ts";

/** An environment variable, or `undefined` when unset, empty or not permitted. */
export function envVar(name: string): string | undefined {
  try {
    const v = os.env(name);
    return v === undefined || v === "" ? undefined : v;
  } catch {
    return undefined;
  }
}

function home(): string | undefined {
  const h = envVar("HOME") ?? envVar("USERPROFILE");
  if (h !== undefined) return h;
  try {
    return os.homedir();
  } catch {
    return undefined;
  }
}

/**
 * The default identity folder (docs/FORMAT.md §4): `PALYRA_IDENTITY_DIR`, else
 * `$XDG_STATE_HOME/palyra/identity`, else `$HOME/.local/state/palyra/identity`;
 * on Windows `%LOCALAPPDATA%\Palyra\identity`, else `%APPDATA%\Palyra\identity`.
 * `undefined` when none of these can be found.
 */
export function defaultIdentityDir(): string | undefined {
  const explicit = envVar("PALYRA_IDENTITY_DIR");
  if (explicit !== undefined) return explicit;
  if (os.platform === "win32") {
    const base = envVar("LOCALAPPDATA") ?? envVar("APPDATA");
    return base === undefined ? undefined : join(base, "Palyra", "identity");
  }
  const state = envVar("XDG_STATE_HOME");
  if (state !== undefined) return join(state, "palyra", "identity");
  const h = home();
  return h === undefined ? undefined : join(h, ".local", "state", "palyra", "identity");
}

/**
 * The Palyra config file in the user's config folder: `$XDG_CONFIG_HOME/palyra/palyra.toml`,
 * else `~/.config/palyra/palyra.toml` (Windows: `%APPDATA%\Palyra\palyra.toml`).
 */
export function userConfigFile(): string | undefined {
  if (os.platform === "win32") {
    const base = envVar("APPDATA");
    return base === undefined ? undefined : join(base, "Palyra", "palyra.toml");
  }
  const xdg = envVar("XDG_CONFIG_HOME");
  if (xdg !== undefined) return join(xdg, "palyra", "palyra.toml");
  const h = home();
  return h === undefined ? undefined : join(h, ".config", "palyra", "palyra.toml");
}
