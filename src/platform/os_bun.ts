/**
 * The process and the machine on Bun: Node's (`os_node.ts`), but writing the
 * standard streams with `Bun.write`, because `process.stdout` loads Node's
 * stream machinery, which costs Bun more than the rest of a `get`.
 */
import type { Os } from "./os_common.ts";
import { nodeOs } from "./os_node.ts";

interface BunNs {
  write(dest: unknown, data: Uint8Array | string): Promise<number>;
  stdout: unknown;
  stderr: unknown;
}

const bun = (globalThis as unknown as { Bun: BunNs }).Bun;

/** Bun's process and machine. */
export const bunOs: Os = {
  ...nodeOs,
  write: async (stream, data) => {
    await bun.write(stream === "stdout" ? bun.stdout : bun.stderr, data);
  },
};
