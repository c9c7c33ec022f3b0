/** The process and the machine on Node and Bun, through `node:process` and `node:os`. */
import process from "node:process";
import { homedir, hostname } from "node:os";
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Os } from "./os_common.ts";

/** Node's (and Bun's) process and machine. */
export const nodeOs: Os = {
  platform: process.platform,
  pid: process.pid,
  hostname: () => hostname(),
  uid: () => (typeof process.getuid === "function" ? process.getuid() : undefined),
  homedir: () => homedir() || undefined,
  env: (name) => process.env[name],
  cwd: () => process.cwd(),
  args: () => process.argv.slice(2),
  exit: (code) => process.exit(code),
  write: (stream, data) =>
    new Promise((resolve, reject) => process[stream].write(data, (e) => (e ? reject(e) : resolve()))),
  signal0(pid) {
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "ESRCH") return false;
      if (code === "EPERM") return true;
      throw e;
    }
  },
  isMain(meta) {
    // `import.meta.main` where the runtime has it (Bun, compiled binaries), else the script path (Node 20).
    const main = (meta as ImportMeta & { main?: boolean }).main;
    if (typeof main === "boolean") return main;
    const script = process.argv[1];
    if (script === undefined || !meta.url.startsWith("file:")) return false;
    try {
      return realpathSync(script) === realpathSync(fileURLToPath(meta.url));
    } catch {
      return false;
    }
  },
};
