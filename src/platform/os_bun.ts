/**
 * The process and the machine on Bun: Node's (`os_node_common.ts`), but
 * writing the standard streams with `Bun.write`, because `process.stdout`
 * loads Node's stream machinery, which costs Bun more than the rest of a
 * `get`; and with `import.meta.main`, which Bun always sets, so that `node:url`
 * (a millisecond of a compiled binary's start) is not loaded.
 */
import type { Os } from "./os_common.ts";
import { nodeLikeOs } from "./os_node_common.ts";

interface BunNs {
  write(dest: unknown, data: Uint8Array | string): Promise<number>;
  stdout: unknown;
  stderr: unknown;
}

const bun = (globalThis as unknown as { Bun: BunNs }).Bun;

/** Bun's process and machine. */
export const bunOs: Os = {
  ...nodeLikeOs,
  isMain: (meta) => (meta as ImportMeta & { main?: boolean }).main === true,
  write: async (stream, data) => {
    await bun.write(stream === "stdout" ? bun.stdout : bun.stderr, data);
  },
};
