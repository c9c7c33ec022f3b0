/**
 * What every implementation of the file layer shares: the `FileSystem`
 * interface, the errors it raises in the runtime's own errno form, and the
 * names of temporary files. The implementations are `fs_node.ts` (Node and
 * Bun, through `node:fs`) and `fs_deno.ts` (Deno's own API); `fs.ts` picks one.
 */
import type { Stats } from "node:fs";
import { toHex } from "../crypto/encoding.ts";
import { errnoCode } from "../errors.ts";
import { basename, dirname, join } from "./path.ts";

/** What `lstat` reports, without following a symbolic link. */
export interface FileInfo {
  /** A regular file. */
  readonly isFile: boolean;
  /** A folder. */
  readonly isDirectory: boolean;
  /** A symbolic link (not followed). */
  readonly isSymlink: boolean;
  /** Permission bits (`mode & 0o777`). */
  readonly mode: number;
  /** The owner's numeric user id (0 where the OS has none, Windows). */
  readonly uid: number;
  /** The inode number (0 where the OS reports none). */
  readonly ino: number;
  /** Size in bytes. */
  readonly size: number;
  /** Last modification, in milliseconds since the Unix epoch. */
  readonly mtimeMs: number;
}

/**
 * File operations used by the vault. Errors are the runtime's own (with an
 * errno `code` such as `ENOENT`); callers translate them to `VaultError`.
 */
export interface FileSystem {
  /**
   * Reads a whole file without following a symbolic link at `path`. With
   * `maxBytes`, a larger file fails with `EFBIG` before its content is read.
   */
  readFile(path: string, maxBytes?: number): Promise<Uint8Array>;
  /** Creates a new file (exclusive, 0600) holding `data`; not fsynced. */
  writeNew(path: string, data: Uint8Array): Promise<void>;
  /**
   * Replaces `path` atomically and durably: a temporary file in the same
   * folder (exclusive create, `mode`, default 0600), fsync, rename over
   * `path`, fsync the folder. A symbolic link at `path` is refused (`ELOOP`).
   */
  writeFileAtomic(path: string, data: Uint8Array, mode?: number): Promise<void>;
  /**
   * Creates `path` with `data` only if nothing exists there (`EEXIST`
   * otherwise); the file appears whole, never empty or torn. With `durable`,
   * the file and its folder are fsynced.
   */
  createExclusive(path: string, data: Uint8Array, durable: boolean): Promise<void>;
  /**
   * Appends `data` to an existing file and fsyncs it, without following a
   * symbolic link at `path` (`ELOOP`); `ENOENT` when there is no file.
   */
  appendFile(path: string, data: Uint8Array): Promise<void>;
  /** Removes a file; `false` when it did not exist. */
  remove(path: string): Promise<boolean>;
  /** `rename(2)`: replaces `to` atomically; fails onto a folder that is not empty. */
  rename(from: string, to: string): Promise<void>;
  /** Hard link, failing with `EEXIST` when `to` exists. */
  link(from: string, to: string): Promise<void>;
  /** `lstat`, or `undefined` when nothing is at `path`. */
  lstat(path: string): Promise<FileInfo | undefined>;
  /** Sets the permission bits of `path`. */
  chmod(path: string, mode: number): Promise<void>;
  /** Creates a folder (0700) and any missing parents; no error when it exists. */
  mkdir(path: string): Promise<void>;
  /** Removes an empty folder (`ENOTEMPTY` when it is not empty). */
  rmdir(path: string): Promise<void>;
  /** The names in a folder. */
  readDir(path: string): Promise<string[]>;
  /** fsync a folder so that renames and creations in it are durable. */
  syncDir(path: string): Promise<void>;
  /** The canonical absolute path, with every symbolic link resolved. */
  realpath(path: string): Promise<string>;
}

/** A file layer and the one read that follows symbolic links. */
export interface FileLayer {
  readonly fs: FileSystem;
  /** Reads a whole file the user named, following symbolic links (a config file may be a link). */
  readUserFile(path: string): Promise<Uint8Array>;
}

/** Mode of every file the vault creates. */
export const FILE_MODE = 0o600;
/** Mode of every folder the vault creates. */
export const DIR_MODE = 0o700;

/** A random file-name suffix, so temporary files of racing writers never collide. */
export function randomSuffix(): string {
  return toHex(globalThis.crypto.getRandomValues(new Uint8Array(8)));
}

/** The temporary name a file is written under before it is renamed or linked into place. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomSuffix()}.tmp`);
}

/** A `FileInfo` from what `node:fs` `lstat` returns. */
export function fileInfo(s: Stats): FileInfo {
  return {
    isFile: s.isFile(),
    isDirectory: s.isDirectory(),
    isSymlink: s.isSymbolicLink(),
    mode: s.mode & 0o777,
    uid: s.uid,
    ino: Number(s.ino),
    size: s.size,
    mtimeMs: s.mtimeMs,
  };
}

/** The error for a file larger than a read allows (`EFBIG`, with the sizes). */
export function tooBig(path: string, size: number, maxBytes: number): Error {
  return Object.assign(new Error(`"${path}" is ${size} bytes or more; at most ${maxBytes} are read`), {
    code: "EFBIG",
    size,
    maxBytes,
  });
}

/** The error for a symbolic link where a file must be (`ELOOP`, as `O_NOFOLLOW` reports it). */
export function symlinkError(path: string): Error {
  return Object.assign(new Error(`"${path}" is a symbolic link`), { code: "ELOOP" });
}

/**
 * Reads an open file to its end: `size` is what stat said, `read(into)` reads
 * the next bytes into `into` and returns how many (0 at the end). The file may
 * grow while it is read: never past `maxBytes` (`EFBIG`), and without a cap
 * the buffer grows.
 */
export function readBounded(
  path: string,
  size: number,
  maxBytes: number | undefined,
  read: (into: Uint8Array) => number,
): Uint8Array {
  if (maxBytes !== undefined && size > maxBytes) throw tooBig(path, size, maxBytes);
  // One byte more than expected, to notice growth.
  let out = new Uint8Array((maxBytes === undefined ? size : Math.min(size, maxBytes)) + 1);
  let n = 0;
  for (;;) {
    const got = read(out.subarray(n));
    if (got === 0) break;
    n += got;
    if (n === out.length) {
      // Grown since the stat (a log another process appends to): read on, up to the cap.
      if (maxBytes !== undefined && n > maxBytes) throw tooBig(path, n, maxBytes);
      const grown = new Uint8Array(maxBytes === undefined ? n * 2 : Math.min(n * 2, maxBytes + 1));
      grown.set(out);
      out = grown;
    }
  }
  return out.subarray(0, n);
}

/** An error carrying an errno code, as the runtimes' own errors do. */
export function errnoError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Whether a failed hard link means the file system has none (so exclusive create is used instead). */
export function noHardLinks(code: string | undefined): boolean {
  return code === "EPERM" || code === "ENOTSUP" || code === "EOPNOTSUPP" || code === "ENOSYS";
}

/** The primitives of one runtime that the atomic writes are built from. */
export interface WritePrimitives {
  /** Creates `path` exclusively (never through a link) with `data` and `mode`; fsyncs it when `sync`. */
  writeNew(path: string, data: Uint8Array, sync: boolean, mode?: number): Promise<void>;
  renameSync(from: string, to: string): void;
  linkSync(from: string, to: string): void;
  /** Removes a file if it is there; never throws. */
  discard(path: string): void;
}

/**
 * `writeFileAtomic` and `createExclusive`, written once over a runtime's
 * primitives. They reach `lstat` and `syncDir` through `this`, so a test that
 * wraps the file layer sees (and can fail) those calls too.
 */
export function atomicWrites(p: WritePrimitives): Pick<FileSystem, "writeFileAtomic" | "createExclusive"> {
  return {
    async writeFileAtomic(this: FileSystem, path: string, data: Uint8Array, mode?: number) {
      const existing = await this.lstat(path);
      if (existing?.isSymlink) throw symlinkError(path);
      const tmp = tempPathFor(path);
      try {
        await p.writeNew(tmp, data, true, mode);
        p.renameSync(tmp, path);
      } catch (e) {
        p.discard(tmp);
        throw e;
      }
      await this.syncDir(dirname(path));
    },

    async createExclusive(this: FileSystem, path: string, data: Uint8Array, durable: boolean) {
      // Write elsewhere, then link into place: the file appears complete or not
      // at all, so a holder killed mid-create never leaves an empty lock behind.
      const tmp = tempPathFor(path);
      await p.writeNew(tmp, data, durable);
      try {
        p.linkSync(tmp, path);
      } catch (e) {
        const code = errnoCode(e);
        // A file system without hard links: fall back to exclusive create.
        if (code === "EEXIST" || !noHardLinks(code)) throw e;
        await p.writeNew(path, data, durable);
      } finally {
        // A leftover temporary file (should this fail) is reported by doctor.
        p.discard(tmp);
      }
      if (durable) await this.syncDir(dirname(path));
    },
  };
}
