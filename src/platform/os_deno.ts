/** The process and the machine on Deno, through Deno's own API (its Node layer costs more than a `get`). */
import type { Os } from "./os_common.ts";

const encoder = new TextEncoder();

async function writeAll(out: { write(p: Uint8Array): Promise<number> }, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  let n = 0;
  while (n < bytes.length) n += await out.write(bytes.subarray(n));
}

/** Deno's process and machine. */
export const denoOs: Os = {
  platform: Deno.build.os === "windows" ? "win32" : Deno.build.os,
  pid: Deno.pid,
  hostname: () => Deno.hostname(),
  pidNamespace() {
    if (Deno.build.os !== "linux") return undefined;
    try {
      const ino = Deno.statSync("/proc/self/ns/pid").ino;
      return ino === null ? undefined : String(ino);
    } catch {
      return undefined;
    }
  },
  uid: () => Deno.uid() ?? undefined,
  homedir: () => undefined,
  env: (name) => Deno.env.get(name),
  cwd: () => Deno.cwd(),
  args: () => [...Deno.args],
  exit: (code) => Deno.exit(code),
  write: (stream, data) => writeAll(stream === "stdout" ? Deno.stdout : Deno.stderr, data),
  // Deno has no signal 0; liveness falls back to /proc and `kill -0`.
  signal0: undefined,
  isMain: (meta) => (meta as ImportMeta & { main?: boolean }).main === true,
};
