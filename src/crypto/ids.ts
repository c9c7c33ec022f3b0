/**
 * Names derived from a scope and key (docs/FORMAT.md §1): the AAD that binds an
 * envelope to its place, the object id and the scope folder name. Hashing the
 * names keeps user-chosen ids out of file paths, so no id can traverse.
 */
import { sha256 } from "../platform/sha256.ts";
import { concatBytes, toHex, utf8 } from "./encoding.ts";

/** AAD = UTF-8 of `palyra.vault.v1|<scope string>|<key>`. */
export function envelopeAad(scope: string, key: string): Uint8Array {
  return utf8(`palyra.vault.v1|${scope}|${key}`);
}

/** `obj_` + hex of SHA-256("palyra.vault.object.v1" || scope || 0x00 || key). */
export function objectId(scope: string, key: string): string {
  return "obj_" +
    toHex(sha256(concatBytes(utf8("palyra.vault.object.v1"), utf8(scope), new Uint8Array([0]), utf8(key))));
}

/** `s_` + the first 32 hex characters of SHA-256("palyra.vault.scope.v1" || scope). */
export function scopeDirName(scope: string): string {
  return "s_" + toHex(sha256(concatBytes(utf8("palyra.vault.scope.v1"), utf8(scope)))).slice(0, 32);
}

/** True when `id` has the form of an object id (`obj_` + 64 lowercase hex). */
export function isObjectId(id: string): boolean {
  return /^obj_[0-9a-f]{64}$/.test(id);
}
