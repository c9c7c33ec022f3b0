/**
 * The file layer: every file operation the vault performs, behind one
 * interface so tests can inject faults. The implementation uses `node:fs`,
 * which Deno, Bun and Node all provide with the same semantics for what is
 * used here (numeric open flags, O_NOFOLLOW, fsync of a folder, link).
 */
import * as fsp from "node:fs/promises";
import * as fs from "node:fs";
import { constants, type Stats } from "node:fs";
import { basename, dirname, join } from "node:path";
import { toHex } from "../crypto/encoding.ts";
import { errnoCode } from "../errors.ts";
import { isWindows } from "./process.ts";

/** What `lstat` reports, without following a symbolic link. */
export interface FileInfo {
  readonly isFile: boolean;
  readonly isDirectory: boolean;
  readonly isSymlink: boolean;
  /** Permission bits (`mode & 0o777`). */
  readonly mode: number;
  readonly uid: number;
  readonly ino: number;
  readonly size: number;
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
  /** Removes a file; `false` when it did not exist. */
  remove(path: string): Promise<boolean>;
  rename(from: string, to: string): Promise<void>;
  /** Hard link, failing with `EEXIST` when `to` exists. */
  link(from: string, to: string): Promise<void>;
  /** `lstat`, or `undefined` when nothing is at `path`. */
  lstat(path: string): Promise<FileInfo | undefined>;
  chmod(path: string, mode: number): Promise<void>;
  /** Creates a folder (0700) and any missing parents; no error when it exists. */
  mkdir(path: string): Promise<void>;
  /** Removes an empty folder (`ENOTEMPTY` when it is not empty). */
  rmdir(path: string): Promise<void>;
  readDir(path: string): Promise<string[]>;
  /** fsync a folder so that renames and creations in it are durable. */
  syncDir(path: string): Promise<void>;
  /** The canonical absolute path, with every symbolic link resolved. */
  realpath(path: string): Promise<string>;
}

const FILE_MODE = 0o600;
const DIR_MODE = 0o700;
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;

/** A random file-name suffix, so temporary files of racing writers never collide. */
export function randomSuffix(): string {
  return toHex(globalThis.crypto.getRandomValues(new Uint8Array(8)));
}

function tempPathFor(path: string): string {
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

function tooBig(path: string, size: number, maxBytes: number): Error {
  return Object.assign(new Error(`"${path}" is ${size} bytes or more; at most ${maxBytes} are read`), {
    code: "EFBIG",
    size,
    maxBytes,
  });
}

function symlinkError(path: string): Error {
  return Object.assign(new Error(`"${path}" is a symbolic link`), { code: "ELOOP" });
}

/** fsync of an open descriptor: the one call that waits on the disk, so it leaves the event loop free. */
function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (e) => (e ? reject(e) : resolve())));
}

async function writeNew(path: string, data: Uint8Array, sync: boolean, mode = FILE_MODE): Promise<void> {
  const fd = fs.openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW, FILE_MODE);
  try {
    // The umask may have removed owner bits; set the mode explicitly.
    if (!isWindows()) fs.fchmodSync(fd, mode);
    let n = 0;
    while (n < data.length) n += fs.writeSync(fd, data, n, data.length - n);
    if (sync) await fsyncFd(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The `FileSystem` used in production, built on `node:fs`. Everything but
 * fsync is a synchronous call inside an async function: on a local disk these
 * return in microseconds, where a trip through the runtime's thread pool
 * costs far more than the call itself; fsync, which waits on the disk, stays
 * asynchronous. Errors still arrive as rejected promises.
 */
export const nodeFileSystem: FileSystem = {
  // deno-lint-ignore require-await -- async so that a failure is a rejection, not a throw
  async readFile(path, maxBytes) {
    const fd = fs.openSync(path, constants.O_RDONLY | NOFOLLOW);
    try {
      const size = fs.fstatSync(fd).size;
      if (maxBytes !== undefined && size > maxBytes) throw tooBig(path, size, maxBytes);
      // The file may grow while it is read: never read past the cap (or past what stat said, plus one
      // block to notice growth when there is no cap).
      let out = new Uint8Array((maxBytes === undefined ? size : Math.min(size, maxBytes)) + 1);
      let n = 0;
      for (;;) {
        const got = fs.readSync(fd, out, n, out.length - n, n);
        if (got === 0) break;
        n += got;
        if (n === out.length) {
          if (maxBytes !== undefined) throw tooBig(path, n, maxBytes);
          const grown = new Uint8Array(out.length * 2);
          grown.set(out);
          out = grown;
        }
      }
      return out.subarray(0, n);
    } finally {
      fs.closeSync(fd);
    }
  },

  writeNew: (path, data) => writeNew(path, data, false),

  async writeFileAtomic(path, data, mode) {
    const existing = await this.lstat(path);
    if (existing?.isSymlink) throw symlinkError(path);
    const tmp = tempPathFor(path);
    try {
      await writeNew(tmp, data, true, mode);
      fs.renameSync(tmp, path);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    await this.syncDir(dirname(path));
  },

  async createExclusive(path, data, durable) {
    // Write elsewhere, then link into place: the file appears complete or not
    // at all, so a holder killed mid-create never leaves an empty lock behind.
    const tmp = tempPathFor(path);
    await writeNew(tmp, data, durable);
    try {
      fs.linkSync(tmp, path);
    } catch (e) {
      const code = errnoCode(e);
      if (code === "EEXIST") throw e;
      // A file system without hard links: fall back to exclusive create.
      if (code === "EPERM" || code === "ENOTSUP" || code === "EOPNOTSUPP" || code === "ENOSYS") {
        await writeNew(path, data, durable);
      } else {
        throw e;
      }
    } finally {
      try {
        fs.rmSync(tmp, { force: true });
      } catch {
        // best effort: a leftover temporary file is reported by doctor
      }
    }
    if (durable) await this.syncDir(dirname(path));
  },

  // deno-lint-ignore require-await -- see readFile
  async remove(path) {
    try {
      fs.unlinkSync(path);
      return true;
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return false;
      throw e;
    }
  },

  // deno-lint-ignore require-await -- see readFile
  rename: async (from, to) => fs.renameSync(from, to),
  // deno-lint-ignore require-await -- see readFile
  link: async (from, to) => fs.linkSync(from, to),

  // deno-lint-ignore require-await -- see readFile
  async lstat(path) {
    try {
      return fileInfo(fs.lstatSync(path));
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return undefined;
      throw e;
    }
  },

  // deno-lint-ignore require-await -- see readFile
  chmod: async (path, mode) => fs.chmodSync(path, mode),

  // deno-lint-ignore require-await -- see readFile
  async mkdir(path) {
    fs.mkdirSync(path, { recursive: true, mode: DIR_MODE });
  },

  // deno-lint-ignore require-await -- see readFile
  rmdir: async (path) => fs.rmdirSync(path),

  // deno-lint-ignore require-await -- see readFile
  readDir: async (path) => fs.readdirSync(path),
  // deno-lint-ignore require-await -- see readFile
  realpath: async (path) => fs.realpathSync(path),

  async syncDir(path) {
    if (isWindows()) return; // folders cannot be opened for fsync on Windows
    const fd = fs.openSync(path, constants.O_RDONLY);
    try {
      await fsyncFd(fd);
    } finally {
      fs.closeSync(fd);
    }
  },
};

/**
 * Reads a whole file, following symbolic links (a user's config file may be a
 * link into a dotfiles checkout); for files the user names, not vault files.
 */
export async function readUserFile(path: string): Promise<Uint8Array> {
  const buf = await fsp.readFile(path);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
