/**
 * The vault's key record, `kek.id` (docs/FORMAT.md §5.7): the `kek_id` of the
 * key its secrets are sealed under. A writer reads it while holding its
 * scope's lock and refuses to seal under another key, so a handle that still
 * holds the key a `rekey` moved the vault away from (a daemon opened before
 * it, or the CLI pointed at the old identity) cannot write secrets that the
 * new key will not open.
 */
import { FILES } from "./layout.ts";
import { join } from "../platform/path.ts";
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { fromUtf8, utf8 } from "../crypto/encoding.ts";
import type { FileSystem } from "../platform/fs.ts";

const KEK_ID_RE = /^[0-9a-f]{16}$/;

/** The recorded `kek_id`; `undefined` for a vault without a record (written before records existed, §5.7). */
export async function readKekRecord(fs: FileSystem, root: string): Promise<string | undefined> {
  const path = join(root, FILES.kekRecord);
  let text: string;
  try {
    text = fromUtf8(await fs.readFile(path, 256)).trim().toLowerCase();
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    if (e instanceof VaultError || errnoCode(e) !== undefined) throw fsError("read key record", path, e);
    text = "";
  }
  if (!KEK_ID_RE.test(text)) {
    throw new VaultError("corrupt", `read key record "${path}" failed: it does not hold a kek_id (16 hex characters)`, {
      hint: "remove it, then run palyra-secrets rekey to the vault's own key (--to-identity or --to-kek-file) to " +
        "write it again",
    });
  }
  return text;
}

/** Records `id` for a vault being created; a record another process made first is left as it is. */
export async function createKekRecord(fs: FileSystem, root: string, id: string): Promise<void> {
  const path = join(root, FILES.kekRecord);
  try {
    await fs.createExclusive(path, utf8(id), true);
  } catch (e) {
    if (errnoCode(e) !== "EEXIST") throw fsError("write key record", path, e);
  }
}

/** Replaces the record with `id`, atomically and durably (a re-key, or a migration into the scoped layout). */
export async function writeKekRecord(fs: FileSystem, root: string, id: string): Promise<void> {
  const path = join(root, FILES.kekRecord);
  try {
    await fs.writeFileAtomic(path, utf8(id));
  } catch (e) {
    throw fsError("write key record", path, e);
  }
}

/**
 * Refuses `action` when the vault records a key other than `ours`: what it
 * would seal, the vault's own key could not open.
 */
export async function checkKekRecord(fs: FileSystem, root: string, ours: string, action: string): Promise<void> {
  const recorded = await readKekRecord(fs, root);
  if (recorded !== undefined && recorded !== ours) throw otherKeyError(root, recorded, ours, action);
}

/** The `identity` error for `action` through the key `ours` on a vault that records the key `recorded`. */
export function otherKeyError(
  root: string,
  recorded: string,
  ours: string,
  action: string,
  rekey = false,
): VaultError {
  const open = "open the vault with its key: the identity folder or KEK file it was re-keyed to (--identity-dir DIR " +
    "or --kek-file FILE; library: identityRoot or kek)";
  return new VaultError(
    "identity",
    `${action} failed: the vault "${root}" is sealed with the key of kek_id ${JSON.stringify(recorded)}, not with ` +
      `this key (kek_id ${JSON.stringify(ours)}): it was re-keyed since, or this is another identity's key`,
    {
      // A re-key to the recorded key that stopped midway left the secrets split: only this key can finish it.
      hint: rekey
        ? `${open}, and re-key from there; if a re-key to it stopped midway, finish it first with this key ` +
          "(rekey --to-identity or --to-kek-file with that key; palyra-secrets doctor tells while its lock is there)"
        : open,
    },
  );
}
