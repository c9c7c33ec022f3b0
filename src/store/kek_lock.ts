/**
 * The lock `.kek.lock` (docs/FORMAT.md §5.5): held by whatever reads the key
 * record (§5.7) and then changes the vault's key or layout on what it read —
 * a re-key, a migration — for as long as it works, so that two of them never
 * act on the same record. Taken, released and reclaimed as a scope's lock is
 * (§5.4).
 */
import { FILES } from "./layout.ts";
import { join } from "../platform/path.ts";
import type { FileSystem } from "../platform/fs.ts";
import { acquireLock } from "./scope_lock.ts";
import type { LockLimits } from "./scoped_layout.ts";

/** Runs `action` holding the vault's key lock; another holder is waited for up to the lock timeout. */
export async function withKekLock<T>(
  fs: FileSystem,
  root: string,
  limits: LockLimits,
  action: () => Promise<T>,
): Promise<T> {
  const lock = await acquireLock(fs, join(root, FILES.kekLock), {
    timeoutMs: limits.lockTimeoutMs,
    staleAfterMs: limits.staleAfterMs,
    what: `the vault's key record (a re-key or a migration of "${root}" holds it)`,
  });
  try {
    return await action();
  } finally {
    await lock.release();
  }
}
