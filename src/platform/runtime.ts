/**
 * Which runtime this is. Only the platform layer asks; the rest of the code
 * receives what it needs as functions.
 */

/** The three supported runtimes. */
export type RuntimeName = "deno" | "bun" | "node";

/** The runtime the code is running on. */
export function runtimeName(): RuntimeName {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  if (typeof g.Deno !== "undefined") return "deno";
  if (typeof g.Bun !== "undefined") return "bun";
  return "node";
}

/** The runtime's version string, e.g. `deno 2.9.6`. */
export function runtimeVersion(): string {
  const g = globalThis as {
    Deno?: { version: { deno: string } };
    Bun?: { version: string };
    process?: { version: string };
  };
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  if (g.Bun) return `bun ${g.Bun.version}`;
  return `node ${g.process?.version ?? "?"}`;
}
