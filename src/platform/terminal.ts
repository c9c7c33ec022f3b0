/**
 * The program's standard streams, arguments and exit, through this runtime's
 * own API (`os.ts`). Reading a value from stdin or a hidden prompt is in
 * `prompt.ts`, loaded only by the commands that read one.
 */
import { os } from "./os.ts";

/** Writes to standard output and resolves once the bytes are handed to the OS. */
export function writeStdout(data: Uint8Array | string): Promise<void> {
  return os.write("stdout", data);
}

/** Writes to standard error and resolves once the bytes are handed to the OS. */
export function writeStderr(data: string): Promise<void> {
  return os.write("stderr", data);
}

/** Writes bytes to standard output or error and resolves once they are handed to the OS. */
export function writeStream(stream: "stdout" | "stderr", data: Uint8Array): Promise<void> {
  return os.write(stream, data);
}

/** Ends the process with `code`. */
export function exitProcess(code: number): never {
  return os.exit(code);
}

/** The command-line arguments after the program name. */
export function programArgs(): string[] {
  return os.args();
}

/**
 * Whether the module with this `import.meta` is the program being run:
 * `import.meta.main` where the runtime has it (Deno, Bun, compiled
 * binaries), else a comparison with the script path (Node 20).
 */
export function isEntryPoint(meta: ImportMeta): boolean {
  return os.isMain(meta);
}
