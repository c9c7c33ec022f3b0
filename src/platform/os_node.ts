/** The process and the machine on Node (see `os_node_common.ts`). */
import process from "node:process";
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Os } from "./os_common.ts";
import { nodeLikeOs } from "./os_node_common.ts";

/** Node's process and machine. */
export const nodeOs: Os = {
  ...nodeLikeOs,
  isMain(meta) {
    // `import.meta.main` where Node sets it (24.2 and later), else the script path (Node 20 and 22).
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
