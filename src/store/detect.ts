/**
 * Which layout a vault folder is in (docs/FORMAT.md §6.1), decided from what
 * is on disk: `metadata.json` at the root or `objects/objects.store.json` is
 * Palyra's layout, a `scopes/` folder that is not empty the scoped layout. During a migration
 * (§6.6) the marker `.migrating` names the target, and the source stays
 * authoritative until the migration's single commit rename.
 */
import { FILES, PALYRA_OBJECTS_STORE } from "./layout.ts";
import { join } from "../platform/path.ts";
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { fromUtf8 } from "../crypto/encoding.ts";
import type { FileSystem } from "../platform/fs.ts";
import type { LayoutName } from "./layout.ts";

/** What is on disk. */
export interface Detected {
  /** The layout that holds the vault's secrets now; `undefined` for an empty or absent folder. */
  layout: LayoutName | undefined;
  /** The target of an unfinished migration. */
  migratingTo: LayoutName | undefined;
}

async function exists(fs: FileSystem, path: string): Promise<boolean> {
  try {
    return (await fs.lstat(path)) !== undefined;
  } catch (e) {
    if (errnoCode(e) === "ENOTDIR") return false;
    throw fsError("inspect", path, e);
  }
}

/** Reads the migration marker; `undefined` when there is none. */
export async function readMigration(fs: FileSystem, root: string): Promise<LayoutName | undefined> {
  const path = join(root, FILES.migrationMarker);
  let text: string;
  try {
    text = fromUtf8(await fs.readFile(path, 64)).trim();
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    throw fsError("read migration marker", path, e);
  }
  if (text !== "scoped" && text !== "palyra") {
    throw new VaultError("corrupt", `read migration marker "${path}" failed: ${JSON.stringify(text)} is not a layout`, {
      hint: 'it should hold "scoped" or "palyra"; run palyra-secrets migrate --to <layout> again',
    });
  }
  return text;
}

/** Detects the layout of the vault folder at `root` (which may not exist). */
export async function detectLayout(fs: FileSystem, root: string): Promise<Detected> {
  const found = await detectOnce(fs, root);
  if (found !== "both") return found;
  throw bothLayouts(root);
}

/**
 * `detectLayout`, waiting for up to about 0.3 s while the folder seems to hold
 * both layouts: a writer of the scoped layout whose handle predates a
 * migration to Palyra's makes its scope's folder, to lock it, before it finds
 * the vault migrated and removes the folder again (§6.6). A folder that
 * really holds both is `corrupt` after the wait.
 */
export async function detectSettled(fs: FileSystem, root: string): Promise<Detected> {
  for (let wait = 10;; wait *= 2) {
    const found = await detectOnce(fs, root);
    if (found !== "both") return found;
    if (wait > 160) throw bothLayouts(root);
    await new Promise((r) => setTimeout(r, wait));
  }
}

async function detectOnce(fs: FileSystem, root: string): Promise<Detected | "both"> {
  const index = await exists(fs, join(root, FILES.palyraIndex));
  const palyra = index || (await exists(fs, join(root, PALYRA_OBJECTS_STORE)));
  // An empty scopes/ holds nothing: a new vault makes it before its first secret.
  const scoped = (await fs.readDir(join(root, FILES.scopesDir)).catch(() => [] as string[])).length > 0;
  const migratingTo = await readMigration(fs, root);
  if (migratingTo === "palyra") return { layout: scoped ? "scoped" : "palyra", migratingTo };
  if (migratingTo === "scoped") return { layout: index ? "palyra" : "scoped", migratingTo };
  return palyra && scoped
    ? "both"
    : { layout: palyra ? "palyra" : scoped ? "scoped" : undefined, migratingTo: undefined };
}

function bothLayouts(root: string): VaultError {
  return new VaultError(
    "corrupt",
    `open vault "${root}" failed: it holds both layouts (scopes/ and Palyra's metadata.json or objects store)`,
    { hint: "move one of them to another folder; a vault folder is either in the scoped layout or in Palyra's" },
  );
}
