/**
 * The file layer: every file operation the vault performs, behind one
 * interface (`FileSystem`, in `fs_common.ts`) so tests can inject faults. This
 * module picks the implementation of the runtime it runs on: `fs_deno.ts`
 * (Deno's own API) or `fs_node.ts` (`node:fs`, for Node and Bun).
 */
import type { FileLayer, FileSystem } from "./fs_common.ts";

export { type FileInfo, fileInfo, type FileLayer, type FileSystem, randomSuffix } from "./fs_common.ts";

const layer: FileLayer = "Deno" in globalThis
  ? (await import("./fs_deno.ts")).denoFiles
  : (await import("./fs_node.ts")).nodeFiles;

/** The file layer of this runtime, used unless a test injects another. */
export const defaultFileSystem: FileSystem = layer.fs;

/**
 * Reads a whole file, following symbolic links (a user's config file may be a
 * link into a dotfiles checkout); for files the user names, not vault files.
 */
export const readUserFile: (path: string) => Promise<Uint8Array> = layer.readUserFile;
