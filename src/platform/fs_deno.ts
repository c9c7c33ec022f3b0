/**
 * The file layer on Deno, through Deno's own API: Deno's Node layer costs
 * more to load than a whole `get`. Deno cannot open with `O_NOFOLLOW`, so a
 * read checks that the file it opened is the one `lstat` saw (same device and
 * inode, not a link); files are only ever created with `createNew`
 * (`O_CREAT|O_EXCL`), which never follows a link. `unlink` and `rmdir` keep
 * their POSIX meaning: a file is never removed as a folder, nor a folder as a
 * file. Every call but fsync is synchronous, as in `fs_node.ts`.
 */
import { errnoCode } from "../errors.ts";
import {
  atomicWrites,
  DIR_MODE,
  errnoError,
  FILE_MODE,
  type FileInfo,
  type FileLayer,
  type FileSystem,
  readBounded,
  symlinkError,
} from "./fs_common.ts";

const WINDOWS = Deno.build.os === "windows";

function info(s: Deno.FileInfo): FileInfo {
  return {
    isFile: s.isFile,
    isDirectory: s.isDirectory,
    isSymlink: s.isSymlink,
    mode: (s.mode ?? 0) & 0o777,
    uid: s.uid ?? 0,
    ino: s.ino ?? 0,
    size: s.size,
    mtimeMs: s.mtime?.getTime() ?? 0,
  };
}

/**
 * Opens an existing file, refusing a symbolic link at `path` (what `O_NOFOLLOW` does, which Deno's open lacks): the
 * file opened must be the one `lstat` saw. Another process that replaces the file by a rename between the two (a
 * writer of the same secret) makes them differ without any link, so a few attempts are made before that is taken
 * for a link swapped in.
 */
function openNoFollow(path: string, options: Deno.OpenOptions = { read: true }): Deno.FsFile {
  for (let attempt = 1;; attempt++) {
    const seen = Deno.lstatSync(path);
    if (seen.isSymlink) throw symlinkError(path);
    const file = Deno.openSync(path, options);
    let opened: Deno.FileInfo;
    try {
      opened = file.statSync();
    } catch (e) {
      file.close();
      throw e;
    }
    if (opened.ino === seen.ino && opened.dev === seen.dev) return file;
    file.close();
    if (attempt === OPEN_ATTEMPTS) throw symlinkError(path);
  }
}

/** Opens of a file replaced each time between its `lstat` and its open before `openNoFollow` gives up. */
const OPEN_ATTEMPTS = 8;

/** Removes a file if it is there; never throws. */
function discard(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // nothing to discard
  }
}

async function writeNew(path: string, data: Uint8Array, sync: boolean, mode = FILE_MODE): Promise<void> {
  const file = Deno.openSync(path, { write: true, createNew: true, mode: FILE_MODE });
  try {
    // The umask may have removed owner bits; set the mode explicitly (the file is new and ours).
    if (!WINDOWS) Deno.chmodSync(path, mode);
    let n = 0;
    while (n < data.length) n += file.writeSync(data.subarray(n));
    if (sync) await file.sync();
  } catch (e) {
    // The file is new and ours: a write the disk refused (ENOSPC) must not leave it behind, empty or torn.
    file.close();
    discard(path);
    throw e;
  }
  file.close();
}

// deno-lint-ignore require-await -- async so that a failure is a rejection, not a throw
async function lstat(path: string): Promise<FileInfo | undefined> {
  try {
    return info(Deno.lstatSync(path));
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    throw e;
  }
}

async function syncDir(path: string): Promise<void> {
  if (WINDOWS) return; // folders cannot be opened for fsync on Windows
  const dir = Deno.openSync(path, { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}

const denoFileSystem: FileSystem = {
  // deno-lint-ignore require-await -- async so that a failure is a rejection, not a throw
  async readFile(path, maxBytes) {
    const file = openNoFollow(path);
    try {
      return readBounded(path, file.statSync().size, maxBytes, (into) => file.readSync(into) ?? 0);
    } finally {
      file.close();
    }
  },

  writeNew: (path, data) => writeNew(path, data, false),

  async appendFile(path, data) {
    const file = openNoFollow(path, { append: true });
    try {
      let n = 0;
      while (n < data.length) n += file.writeSync(data.subarray(n));
      await file.sync();
    } finally {
      file.close();
    }
  },

  // deno-lint-ignore require-await -- see readFile
  async remove(path) {
    let seen: Deno.FileInfo;
    try {
      seen = Deno.lstatSync(path);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return false;
      throw e;
    }
    // unlink(2) never removes a folder; Deno.remove would remove an empty one.
    if (seen.isDirectory) throw errnoError("EISDIR", `unlink "${path}" failed: it is a folder`);
    try {
      Deno.removeSync(path);
      return true;
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return false;
      throw e;
    }
  },

  // deno-lint-ignore require-await -- see readFile
  rename: async (from, to) => Deno.renameSync(from, to),
  // deno-lint-ignore require-await -- see readFile
  link: async (from, to) => Deno.linkSync(from, to),

  lstat,

  // deno-lint-ignore require-await -- see readFile
  chmod: async (path, mode) => Deno.chmodSync(path, mode),

  // deno-lint-ignore require-await -- see readFile
  async mkdir(path) {
    Deno.mkdirSync(path, { recursive: true, mode: DIR_MODE });
  },

  // deno-lint-ignore require-await -- see readFile
  async rmdir(path) {
    // rmdir(2) never removes a file; Deno.remove would.
    if (!Deno.lstatSync(path).isDirectory) throw errnoError("ENOTDIR", `rmdir "${path}" failed: not a folder`);
    Deno.removeSync(path);
  },

  // deno-lint-ignore require-await -- see readFile
  readDir: async (path) => Array.from(Deno.readDirSync(path), (e) => e.name),
  // deno-lint-ignore require-await -- see readFile
  realpath: async (path) => Deno.realPathSync(path),

  syncDir,

  ...atomicWrites({
    writeNew,
    renameSync: (from, to) => Deno.renameSync(from, to),
    linkSync: (from, to) => Deno.linkSync(from, to),
    discard,
  }),
};

/** The file layer of Deno. */
export const denoFiles: FileLayer = {
  fs: denoFileSystem,
  readUserFile: (path) => Deno.readFile(path),
};
