/**
 * The process and the machine, as the rest of the code sees them: one
 * interface, implemented by `os_deno.ts` with Deno's own API and by
 * `os_node.ts` with `node:process` and `node:os` (Node and Bun).
 */

/** What the library asks of the process and the machine. */
export interface Os {
  /** The OS family in Node's spelling: `linux`, `darwin`, `win32`, … */
  readonly platform: string;
  /** This process's id. */
  readonly pid: number;
  /** This machine's host name; throws when the runtime may not read it. */
  hostname(): string;
  /**
   * The id of this process's PID namespace (Linux: the inode of `/proc/self/ns/pid`): processes in two namespaces
   * (a container beside the host) mean different processes by one pid. `undefined` where there are none, or the
   * runtime may not look.
   */
  pidNamespace(): string | undefined;
  /** The numeric user id, `undefined` where there is none (Windows); throws when the runtime may not read it. */
  uid(): number | undefined;
  /** The home folder as the OS reports it, when it does. */
  homedir(): string | undefined;
  /** An environment variable; throws when the runtime may not read it. */
  env(name: string): string | undefined;
  /** The current folder. */
  cwd(): string;
  /** The command-line arguments after the program name. */
  args(): string[];
  /** Ends the process. */
  exit(code: number): never;
  /** Writes to standard output or error; resolves once the OS has the bytes. */
  write(stream: "stdout" | "stderr", data: Uint8Array | string): Promise<void>;
  /**
   * Signal 0 to `pid`: `true` when it exists (or exists but is not ours),
   * `false` when there is no such process; throws when the runtime may not
   * signal. `undefined` where the runtime has no signal 0 (Deno).
   */
  readonly signal0: ((pid: number) => boolean) | undefined;
  /** Whether the module with this `import.meta` is the program being run. */
  isMain(meta: ImportMeta): boolean;
}
