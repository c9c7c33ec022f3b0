/**
 * Folder safety (docs/FORMAT.md §7): vault and identity folders are 0700,
 * owned by the current user, and never reached through a symbolic link.
 */
import { dirname } from "../platform/path.ts";
import { fsError, VaultError } from "../errors.ts";
import type { FileSystem } from "../platform/fs.ts";
import { currentUid, isWindows } from "../platform/process.ts";

const DIR_MODE = 0o700;

/**
 * Makes sure `path` is a folder the current user owns with mode 0700,
 * creating it (and missing parents) when `create` is set. A folder open to
 * group or others is tightened; one owned by another user, a symbolic link or
 * a non-folder is refused.
 *
 * @returns whether the folder was created.
 */
export async function secureDir(
  fs: FileSystem,
  path: string,
  what: string,
  options: { create: boolean; allowSymlink?: boolean } = { create: true },
): Promise<boolean> {
  let info;
  try {
    info = await fs.lstat(path);
  } catch (e) {
    throw fsError(`inspect ${what}`, path, e);
  }
  let created = false;
  if (info === undefined) {
    if (!options.create) throw new VaultError("not_found", `open ${what} failed: "${path}" does not exist`);
    try {
      await fs.mkdir(path);
      // A new folder is only durable once its parent's entry is.
      await fs.syncDir(dirname(path));
      info = await fs.lstat(path);
    } catch (e) {
      throw fsError(`create ${what}`, path, e);
    }
    created = true;
    if (info === undefined) throw new VaultError("io", `create ${what} failed: "${path}" vanished after mkdir`);
  }
  if (info.isSymlink && !options.allowSymlink) {
    throw new VaultError("permission", `open ${what} failed: "${path}" is a symbolic link`, {
      hint: "replace the link with a real folder; the vault never follows links inside its folder",
    });
  }
  if (!info.isDirectory && !info.isSymlink) {
    throw new VaultError("io", `open ${what} failed: "${path}" exists but is not a folder`, {
      hint: "move the file away or choose another folder",
    });
  }
  if (isWindows()) return created;
  const uid = currentUid();
  if (uid !== undefined && info.uid !== uid) {
    throw new VaultError(
      "permission",
      `open ${what} failed: "${path}" is owned by uid ${info.uid}, not by the current user (uid ${uid})`,
      { hint: "run as the folder's owner, or point the vault at a folder you own" },
    );
  }
  if ((info.mode & 0o777) !== DIR_MODE) {
    try {
      await fs.chmod(path, DIR_MODE);
    } catch (e) {
      throw fsError(`tighten the permissions of ${what}`, path, e);
    }
  }
  return created;
}

/**
 * `secureDir` without creating, for a folder a listing or an `lstat` just found: `false` when it is gone since.
 * Another process's migration removes `scopes/` (docs/FORMAT.md §6.6), and a refused writer removes the scope
 * folder it made; the callers detect the layout again afterwards, which reports the migration.
 */
export async function secureFoundDir(fs: FileSystem, path: string, what: string): Promise<boolean> {
  try {
    await secureDir(fs, path, what, { create: false });
    return true;
  } catch (e) {
    if (VaultError.is(e, "not_found")) return false;
    throw e;
  }
}

/**
 * Checks, without creating or changing anything, that `path` is a real folder
 * (not a link, not a file) when it exists. Returns whether it exists. Used on
 * every read inside the vault: a folder swapped for a link after the vault was
 * opened must not be followed.
 */
export async function existingRealFolder(fs: FileSystem, path: string, what: string): Promise<boolean> {
  let info;
  try {
    info = await fs.lstat(path);
  } catch (e) {
    throw fsError(`inspect ${what}`, path, e);
  }
  if (info === undefined) return false;
  if (info.isSymlink || !info.isDirectory) {
    throw new VaultError("permission", `open ${what} failed: "${path}" is not a real folder`, {
      hint: "replace the link with the real folder; the vault never follows links inside its folder",
    });
  }
  return true;
}
