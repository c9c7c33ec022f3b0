// A private Secret Service for the benchmarks: its own D-Bus session bus and an unlocked gnome-keyring in a
// fresh HOME, so nothing touches the user's keyring. `undefined` when dbus-daemon, gnome-keyring-daemon or
// secret-tool is missing.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Starts the session; `env` reaches it, `stop()` ends it (gnome-keyring-daemon leaves with its bus). */
export function privateKeyring(baseEnv) {
  const tools = spawnSync("sh", [
    "-c",
    "command -v secret-tool && command -v gnome-keyring-daemon && command -v dbus-daemon",
  ]);
  if (tools.status !== 0) return undefined;
  const home = mkdtempSync(join(tmpdir(), "palyra-keyring-"));
  const base = { ...baseEnv, HOME: home, XDG_DATA_HOME: join(home, "data"), XDG_RUNTIME_DIR: join(home, "run") };
  mkdirSync(base.XDG_RUNTIME_DIR, { mode: 0o700 });
  const bus = spawnSync("dbus-daemon", ["--session", "--fork", "--print-address=1", "--print-pid=1"], {
    env: base,
    encoding: "utf8",
  });
  const [address, pid] = (bus.stdout ?? "").trim().split("\n");
  if (bus.status !== 0 || !address || !pid) return undefined;
  const env = { ...base, DBUS_SESSION_BUS_ADDRESS: address };
  spawnSync("gnome-keyring-daemon", ["--unlock", "--components=secrets"], { env, input: "bench" });
  return { env, stop: () => process.kill(Number(pid)) };
}
