/**
 * The index of a vault in Palyra's layout (docs/FORMAT.md §6.2): one
 * `metadata.json` at the vault root for every scope, entries in insertion
 * order with tagged scopes, pretty-printed with a 2-space indent and no
 * trailing newline.
 */
import { parseJsonObject, utf8 } from "../crypto/encoding.ts";
import { isObjectId } from "../crypto/ids.ts";
import { formatScope, fromTaggedScope, parseScope, toTaggedScope, validateKey } from "../scope.ts";
import { corruptIndex, type IndexEntry } from "./scope_index.ts";

/** An entry of Palyra's index: an index entry and its scope string. */
export interface PalyraEntry extends IndexEntry {
  scope: string;
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** Parses and checks `metadata.json`: every scope, key and object id, no key twice in a scope. */
export function parsePalyraIndex(path: string, bytes: Uint8Array): PalyraEntry[] {
  const d = parseJsonObject(bytes, (why, cause) => corruptIndex(path, why, cause));
  if (d.version !== 1) throw corruptIndex(path, `unsupported version ${JSON.stringify(d.version) ?? "undefined"}`);
  if (!Array.isArray(d.entries)) throw corruptIndex(path, '"entries" is not an array');
  const seen = new Set<string>();
  return (d.entries as unknown[]).map((raw, i) => {
    const e = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
    let scope: string;
    try {
      scope = formatScope(fromTaggedScope(e.scope));
      validateKey(e.key as string);
    } catch (cause) {
      throw corruptIndex(path, `entry ${i}: ${cause instanceof Error ? cause.message : cause}`, cause);
    }
    if (
      typeof e.object_id !== "string" || !isObjectId(e.object_id) || !isCount(e.created_at_unix_ms) ||
      !isCount(e.updated_at_unix_ms) || !isCount(e.value_bytes)
    ) {
      throw corruptIndex(path, `entry ${i} is malformed`);
    }
    const name = `${scope}\u0000${e.key}`;
    if (seen.has(name)) {
      throw corruptIndex(path, `entry ${i} repeats key ${JSON.stringify(e.key)} of scope ${JSON.stringify(scope)}`);
    }
    seen.add(name);
    return {
      scope,
      key: e.key as string,
      object_id: e.object_id,
      created_at_unix_ms: e.created_at_unix_ms,
      updated_at_unix_ms: e.updated_at_unix_ms,
      value_bytes: e.value_bytes,
    };
  });
}

/** Encodes `metadata.json` exactly as the daemon writes it. */
export function encodePalyraIndex(entries: readonly PalyraEntry[]): Uint8Array {
  const doc = {
    version: 1,
    entries: entries.map((e) => ({
      scope: toTaggedScope(parseScope(e.scope)),
      key: e.key,
      object_id: e.object_id,
      created_at_unix_ms: e.created_at_unix_ms,
      updated_at_unix_ms: e.updated_at_unix_ms,
      value_bytes: e.value_bytes,
    })),
  };
  return utf8(JSON.stringify(doc, null, 2));
}
