/**
 * The process and the machine on Node and Bun, through `node:process` and
 * `node:os`: all but telling whether a module is the entry point, which each
 * does its own way (`os_node.ts`, `os_bun.ts`).
 */
import process from "node:process";
import { homedir, hostname } from "node:os";
import { statSync } from "node:fs";
import type { Os } from "./os_common.ts";

/** Node's and Bun's process and machine. */
export const nodeLikeOs: Omit<Os, "isMain"> = {
  platform: process.platform,
  pid: process.pid,
  hostname: () => hostname(),
  pidNamespace() {
    if (process.platform !== "linux") return undefined;
    try {
      return String(statSync("/proc/self/ns/pid").ino);
    } catch {
      return undefined;
    }
  },
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
};
