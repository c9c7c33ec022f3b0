/**
 * The process and the machine of the runtime this is: Deno's own API on
 * Deno, `node:process` and `node:os` on Node, and those with `Bun.write` on Bun. The only place that
 * picks by runtime; everything else imports `os`.
 */
import type { Os } from "./os_common.ts";

export type { Os } from "./os_common.ts";

/** This runtime's process and machine. */
export const os: Os = "Deno" in globalThis
  ? (await import("./os_deno.ts")).denoOs
  : "Bun" in globalThis
  ? (await import("./os_bun.ts")).bunOs
  : (await import("./os_node.ts")).nodeOs;
