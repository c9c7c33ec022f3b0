/**
 * The file layer on Node and Bun, through `node:fs`, which both implement with
 * the semantics used here (numeric open flags, `O_NOFOLLOW`, fsync of a
 * folder, hard links).
 */
import * as fs from "node:fs";
import { constants } from "node:fs";
import process from "node:process";
import { errnoCode } from "../errors.ts";
import {
  atomicWrites,
  DIR_MODE,
  FILE_MODE,
  fileInfo,
  type FileLayer,
  type FileSystem,
  readBounded,
} from "./fs_common.ts";

const WINDOWS = process.platform === "win32";
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;

/** fsync of an open descriptor: the one call that waits on the disk, so it leaves the event loop free. */
function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (e) => (e ? reject(e) : resolve())));
}

/** Removes a file if it is there; never throws. */
function discard(path: string): void {
  try {
    fs.rmSync(path, { force: true });
  } catch {
    // nothing to discard
  }
}

async function writeNew(path: string, data: Uint8Array, sync: boolean, mode = FILE_MODE): Promise<void> {
  const fd = fs.openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW, FILE_MODE);
  try {
    // The umask may have removed owner bits; set the mode explicitly.
    if (!WINDOWS) fs.fchmodSync(fd, mode);
    let n = 0;
    while (n < data.length) n += fs.writeSync(fd, data, n, data.length - n);
    if (sync) await fsyncFd(fd);
  } catch (e) {
    // The file is new and ours: a write the disk refused (ENOSPC) must not leave it behind, empty or torn.
    fs.closeSync(fd);
    discard(path);
    throw e;
  }
  fs.closeSync(fd);
}

// deno-lint-ignore require-await -- async so that a failure is a rejection, not a throw
async function lstat(path: string) {
  // Told not to throw for a missing entry: an exception made for each of a `get`'s probes cost more than the call.
  const info = fs.lstatSync(path, { throwIfNoEntry: false });
  return info === undefined ? undefined : fileInfo(info);
}

async function syncDir(path: string): Promise<void> {
  if (WINDOWS) return; // folders cannot be opened for fsync on Windows
  const fd = fs.openSync(path, constants.O_RDONLY);
  try {
    await fsyncFd(fd);
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
const nodeFileSystem: FileSystem = {
  // deno-lint-ignore require-await -- async so that a failure is a rejection, not a throw
  async readFile(path, maxBytes) {
    const fd = fs.openSync(path, constants.O_RDONLY | NOFOLLOW);
    try {
      let position = 0;
      return readBounded(path, fs.fstatSync(fd).size, maxBytes, (into) => {
        const got = fs.readSync(fd, into, 0, into.length, position);
        position += got;
        return got;
      });
    } finally {
      fs.closeSync(fd);
    }
  },

  writeNew: (path, data) => writeNew(path, data, false),

  async appendFile(path, data) {
    const fd = fs.openSync(path, constants.O_WRONLY | constants.O_APPEND | NOFOLLOW);
    try {
      let n = 0;
      while (n < data.length) n += fs.writeSync(fd, data, n, data.length - n);
      await fsyncFd(fd);
    } finally {
      fs.closeSync(fd);
    }
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

  lstat,

  // deno-lint-ignore require-await -- see readFile
  chmod: async (path, mode) => fs.chmodSync(path, mode),

  // deno-lint-ignore require-await -- see readFile
  async mkdir(path) {
    try {
      fs.mkdirSync(path, { recursive: true, mode: DIR_MODE });
    } catch (e) {
      // Node's recursive mkdir reports ENOENT when a read-only file system refuses the folder (EROFS): ask again
      // without recursion, which reports the real cause (or succeeds, if another process made a parent meanwhile).
      if (errnoCode(e) !== "ENOENT") throw e;
      try {
        fs.mkdirSync(path, { mode: DIR_MODE });
      } catch (again) {
        if (errnoCode(again) !== "EEXIST") throw again;
      }
    }
  },

  // deno-lint-ignore require-await -- see readFile
  rmdir: async (path) => fs.rmdirSync(path),

  // deno-lint-ignore require-await -- see readFile
  readDir: async (path) => fs.readdirSync(path),
  // deno-lint-ignore require-await -- see readFile
  realpath: async (path) => fs.realpathSync(path),

  syncDir,

  ...atomicWrites({
    writeNew,
    renameSync: (from, to) => fs.renameSync(from, to),
    linkSync: (from, to) => fs.linkSync(from, to),
    discard,
  }),
};

/** The file layer of Node and Bun. */
export const nodeFiles: FileLayer = {
  fs: nodeFileSystem,
  async readUserFile(path) {
    const buf = await fs.promises.readFile(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  },
};
