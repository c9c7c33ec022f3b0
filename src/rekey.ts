/**
 * Re-keying a vault (docs/FORMAT.md §5.5): every data key is wrapped again
 * under a new KEK, one envelope at a time, each replaced atomically and named
 * by the new `kek_id`. Values are never decrypted or re-encrypted. A crash
 * leaves each secret under one of the two keys; running the re-key again
 * (still with the old key) skips what is done and finishes.
 */
import { VaultError } from "./errors.ts";
import { rewrapEnvelope } from "./crypto/envelope.ts";
import { vaultCipher } from "./store/cipher.ts";
import { kekId, KEY_BYTES } from "./crypto/kdf.ts";
import { pinnedCopy } from "./crypto/sensitive.ts";
import { identityKek, loadOrCreateIdentity } from "./store/identity_store.ts";
import { scopeEntry } from "./store/scope_index.ts";
import { otherKeyError, readKekRecord, writeKekRecord } from "./store/kek_record.ts";
import { drainScopeWriters } from "./store/scoped_layout.ts";
import { withKekLock } from "./store/kek_lock.ts";
import { Vault } from "./vault.ts";

/**
 * The key to re-key to: a raw 32-byte KEK, or an identity folder (made when
 * it holds no identity yet) whose KEK the vault will then be opened with.
 *
 * @example
 * ```ts
 * import type { RekeyOptions } from "@palyra/vault";
 * const options: RekeyOptions = { toIdentity: "/srv/palyra/identity-2027" };
 * ```
 */
export interface RekeyOptions {
  /** The new 32-byte KEK (copied; the caller keeps its own). */
  toKek?: Uint8Array;
  /** The identity folder whose KEK to use; an identity is created there when it has none. */
  toIdentity?: string;
}

/** What `rekeyVault` did. */
export interface RekeyResult {
  /** Secrets the index names. */
  secrets: number;
  /** Envelopes wrapped again by this run. */
  rewrapped: number;
  /** Envelopes already under the new key (a run before this one was interrupted). */
  alreadyDone: number;
  /** The new key's `kek_id` (docs/FORMAT.md §2). */
  kekId: string;
}

/**
 * Wraps every data key of the vault under a new KEK, in two phases: first
 * each envelope is rewritten under the new key (skipping those a previous,
 * interrupted run did), then every secret is opened with the new key to
 * prove it. Afterwards open the vault with the new key: `identityRoot` set to
 * `toIdentity`, or `kek` set to `toKek`. The `vault` passed in keeps the old
 * key and can no longer read the secrets.
 *
 * @throws {VaultError} `crypto` naming the secrets that open with neither key (nothing else is
 * left undone; see `fsck`); `conflict` for a vault in Palyra's layout, whose key is the daemon's.
 * @example
 * ```ts
 * import { rekeyVault, Vault } from "@palyra/vault";
 * const old = await Vault.open({ identityRoot: "/srv/palyra/identity" });
 * const done = await rekeyVault(old, { toIdentity: "/srv/palyra/identity-2027" });
 * old.close();
 * using vault = await Vault.open({ identityRoot: "/srv/palyra/identity-2027" });
 * console.log(done.rewrapped, done.kekId);
 * ```
 */
export async function rekeyVault(vault: Vault, options: RekeyOptions): Promise<RekeyResult> {
  const action = "rekey vault";
  const parts = await Vault._parts(vault, action);
  if ((options.toKek === undefined) === (options.toIdentity === undefined)) {
    throw new TypeError(`${action} failed: give toKek or toIdentity, exactly one`);
  }
  if (parts.layout.name === "palyra") {
    throw new VaultError("conflict", `${action} failed: "${parts.root}" is in the layout of Palyra's daemon`, {
      hint: "its key is derived from the daemon's identity; convert it first (palyra-secrets migrate --to scoped)",
    });
  }
  if (!parts.exists) {
    throw new VaultError("not_found", `${action} failed: there is no vault at "${parts.root}"`, {
      hint: "check the vault folder (--vault-dir, PALYRA_VAULT_DIR)",
    });
  }
  let newKek: Uint8Array;
  if (options.toKek !== undefined) {
    if (!(options.toKek instanceof Uint8Array) || options.toKek.length !== KEY_BYTES) {
      throw new TypeError(`${action} failed: toKek must be ${KEY_BYTES} bytes`);
    }
    newKek = pinnedCopy(options.toKek);
  } else {
    newKek = await identityKek(await loadOrCreateIdentity(parts.identityHost, options.toIdentity!), "noble");
  }
  try {
    return await withKekLock(parts.fs, parts.root, parts.limits, async () => {
      // Under the lock, the layout again: a migration (which holds the lock too) may have moved the vault since.
      return await rekeyLocked(await Vault._parts(vault, action, true), newKek, action);
    });
  } finally {
    newKek.fill(0);
  }
}

/**
 * The re-key itself, holding the vault's key lock (§5.5) from before it reads the record until every secret is
 * proven: two re-keys that both read the old key would each record their own, and the secrets would end up split
 * between two keys under one record.
 */
async function rekeyLocked(
  parts: Awaited<ReturnType<typeof Vault._parts>>,
  newKek: Uint8Array,
  action: string,
): Promise<RekeyResult> {
  const oldKek = await parts.kek();
  const newId = kekId(newKek);
  // The key record names the new key first: from then on a writer with the old key is refused (§5.7). Once
  // every writer that read the old record has released its scope's lock, no secret is sealed under the old key
  // that the list below does not name.
  const recorded = await readKekRecord(parts.fs, parts.root);
  const oldId = kekId(oldKek);
  if (recorded !== undefined && recorded !== oldId && recorded !== newId) {
    throw otherKeyError(parts.root, recorded, oldId, action, true);
  }
  if (recorded !== newId) await writeKekRecord(parts.fs, parts.root, newId);
  // From here the record names the new key while secrets may still be under the old one: whatever stops the
  // re-key (a full disk, a lock held too long) must say that it stopped midway and how to finish.
  const progress = { rewrapped: 0, alreadyDone: 0, total: undefined as number | undefined };
  try {
    return await rewrapAll(parts, oldKek, newKek, newId, action, progress);
  } catch (e) {
    throw stoppedMidway(e, action, progress);
  }
}

/** The error of a re-key that stopped after it recorded the new key: the cause, and how to finish. */
function stoppedMidway(
  e: unknown,
  action: string,
  progress: { rewrapped: number; alreadyDone: number; total: number | undefined },
): unknown {
  // The re-key's own report of secrets that do not open with the new key already says what to do.
  if (!(e instanceof VaultError) || e.code === "crypto") return e;
  const moved = progress.rewrapped + progress.alreadyDone;
  const done = progress.total === undefined ? "before it listed the secrets" : `with ${moved} of ${progress.total} ` +
    `secret${progress.total === 1 ? "" : "s"} under the new key`;
  const why = e.message.startsWith(`${action} failed: `) ? e.message.slice(action.length + 9) : e.message;
  return new VaultError(e.code, `${action} failed: it stopped midway, ${done}: ${why}`, {
    hint: `${e.hint === undefined ? "" : `${e.hint}; `}then run the same rekey again to finish it: until then the ` +
      "vault records the new key, the secrets not yet moved open only with the old one, and writes with the old " +
      "key are refused",
    cause: e,
  });
}

/** Moves every secret under the new key and proves it opens (§5.5); `progress` counts what was done. */
async function rewrapAll(
  parts: Awaited<ReturnType<typeof Vault._parts>>,
  oldKek: Uint8Array,
  newKek: Uint8Array,
  newId: string,
  action: string,
  progress: { rewrapped: number; alreadyDone: number; total: number | undefined },
): Promise<RekeyResult> {
  const layout = parts.layout;
  await drainScopeWriters(parts.fs, parts.root, parts.limits);
  const entries = await layout.list(scopeEntry);
  progress.total = entries.length;
  const failed: string[] = [];
  // Phase 1: each envelope rewritten under the new key, one scope's lock at a time.
  const scopes = [...new Set(entries.map((e) => e.scope))];
  for (const scope of scopes) {
    await layout.locked(scope, "write", async () => {
      for (const e of entries) {
        if (e.scope !== scope) continue;
        let bytes: Uint8Array;
        try {
          bytes = await layout.objects.get(e.object_id);
        } catch (err) {
          if (VaultError.is(err, "not_found")) continue; // deleted meanwhile
          throw err;
        }
        let next: Uint8Array | undefined;
        try {
          next = rewrapEnvelope(oldKek, newKek, newId, scope, e.key, bytes);
        } catch (err) {
          if (!VaultError.is(err, "crypto")) throw err;
          failed.push(`${scope}/${e.key}`);
          continue;
        }
        if (next === undefined) {
          progress.alreadyDone++;
          continue;
        }
        await layout.objects.put(e.object_id, next);
        progress.rewrapped++;
      }
    });
  }
  // Phase 2: every secret opens with the new key, value and all.
  const check = vaultCipher(newKek, "noble", newId);
  for (const e of entries) {
    if (failed.includes(`${e.scope}/${e.key}`)) continue;
    let bytes: Uint8Array;
    try {
      bytes = await layout.objects.get(e.object_id);
    } catch (err) {
      if (VaultError.is(err, "not_found")) continue;
      throw err;
    }
    try {
      (await check.open(e.scope, e.key, bytes)).fill(0);
    } catch (err) {
      if (!VaultError.is(err, "crypto")) throw err;
      failed.push(`${e.scope}/${e.key}`);
    }
  }
  if (failed.length > 0) {
    throw new VaultError(
      "crypto",
      `${action} failed: ${failed.length} secret${failed.length === 1 ? " does" : "s do"} not open with the new key: ${
        failed.slice(0, 5).join(", ")
      }${failed.length > 5 ? `, and ${failed.length - 5} more` : ""}`,
      {
        hint: "the others are under the new key; a secret written with the old key during the re-key is fixed by " +
          "running rekey again, a damaged one is found and moved aside by palyra-secrets fsck --repair",
      },
    );
  }
  return { secrets: entries.length, rewrapped: progress.rewrapped, alreadyDone: progress.alreadyDone, kekId: newId };
}
