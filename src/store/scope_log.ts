/**
 * The log of a scope index, `scopes/<scope_dir>/metadata.log` (docs/FORMAT.md
 * §5.1): a header naming the snapshot it follows, then one record per change,
 * each line carrying its own CRC-32. A writer appends a record instead of
 * rewriting the whole index, so a put costs the same in a scope of ten
 * secrets and of a hundred thousand. A crash during an append can leave a
 * torn last line; readers ignore it. A damaged line anywhere else is an error.
 */
import { fromUtf8, utf8 } from "../crypto/encoding.ts";
import { isKey } from "../scope.ts";

/** One change to a scope's entries. */
export type LogRecord =
  | { op: "put"; key: string; created: number; updated: number; bytes: number }
  | { op: "delete"; key: string };

/** A log as read: its header and every complete, intact record. */
export interface ParsedLog {
  scope: string;
  generation: number;
  records: LogRecord[];
  /** Bytes after the last intact record: a tail torn by a crash (or a damaged last line). */
  tornBytes: number;
}

// Made on first use, not when the module loads: a `get` that finds no log never needs it.
let crcTable: Uint32Array | undefined;
function crcTableOf(): Uint32Array {
  if (crcTable !== undefined) return crcTable;
  crcTable = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crcTable[n] = c >>> 0;
  }
  return crcTable;
}

/** CRC-32 as zlib and PNG compute it (reflected, polynomial 0xEDB88320). */
export function crc32(bytes: Uint8Array): number {
  const table = crcTableOf();
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One line: 8 lowercase hex digits of the CRC-32 of the JSON text's UTF-8, a space, the text, a newline. */
function line(json: string): Uint8Array {
  const body = utf8(json);
  const out = new Uint8Array(body.length + 10);
  out.set(utf8(crc32(body).toString(16).padStart(8, "0") + " "));
  out.set(body, 9);
  out[out.length - 1] = 0x0a;
  return out;
}

/** The first line of a log: the scope and the snapshot generation it follows. */
export function encodeLogHeader(scope: string, generation: number): Uint8Array {
  return line(JSON.stringify({ log: 1, scope, generation }));
}

/** One record line. */
export function encodeLogRecord(r: LogRecord): Uint8Array {
  return line(JSON.stringify(r.op === "put" ? ["put", r.key, r.created, r.updated, r.bytes] : ["delete", r.key]));
}

const HEX8 = /^[0-9a-f]{8}$/;
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** The JSON of an intact line, or `undefined` when its checksum or form is wrong. */
function intact(bytes: Uint8Array, start: number, end: number): unknown {
  if (end - start < 10 || bytes[start + 8] !== 0x20) return undefined;
  let sum: string;
  try {
    sum = fromUtf8(bytes.subarray(start, start + 8));
  } catch {
    return undefined;
  }
  const body = bytes.subarray(start + 9, end);
  if (!HEX8.test(sum) || parseInt(sum, 16) !== crc32(body)) return undefined;
  try {
    return JSON.parse(fromUtf8(body));
  } catch {
    return undefined;
  }
}

/**
 * Parses a log. `corrupt(why)` makes the error for a log that is damaged
 * before its last line, has no intact header, or holds a record of the wrong
 * form; `checkScope` gives the canonical scope of the header, `undefined` when
 * it is not a scope (or not the one expected).
 */
export function parseLog(
  bytes: Uint8Array,
  corrupt: (why: string) => Error,
  checkScope: (scope: unknown) => string | undefined,
): ParsedLog {
  let start = 0;
  let header: { scope: string; generation: number } | undefined;
  const records: LogRecord[] = [];
  while (start < bytes.length) {
    const nl = bytes.indexOf(0x0a, start);
    const end = nl < 0 ? bytes.length : nl;
    const last = nl < 0 || nl + 1 === bytes.length;
    const doc = nl < 0 ? undefined : intact(bytes, start, end);
    if (doc === undefined) {
      if (last && header !== undefined) break; // a torn tail: the append a crash interrupted
      throw corrupt(header === undefined ? "its header line is damaged" : `line ${records.length + 2} is damaged`);
    }
    if (header === undefined) {
      const h = doc as Record<string, unknown>;
      const scope = checkScope(h?.scope);
      if (
        typeof h !== "object" || h === null || Array.isArray(h) || h.log !== 1 || scope === undefined ||
        !isCount(h.generation) || h.generation < 1
      ) {
        throw corrupt("its header is not a version 1 log header");
      }
      header = { scope, generation: h.generation };
    } else {
      const r = doc as unknown[];
      const key = Array.isArray(r) ? r[1] : undefined;
      if (typeof key !== "string" || !isKey(key)) throw corrupt(`record ${records.length + 1} is malformed`);
      if (r[0] === "put" && r.length === 5 && isCount(r[2]) && isCount(r[3]) && isCount(r[4])) {
        records.push({ op: "put", key, created: r[2], updated: r[3], bytes: r[4] });
      } else if (r[0] === "delete" && r.length === 2) {
        records.push({ op: "delete", key });
      } else {
        throw corrupt(`record ${records.length + 1} is malformed`);
      }
    }
    start = end + 1;
  }
  if (header === undefined) throw corrupt("it is empty");
  return { ...header, records, tornBytes: Math.max(0, bytes.length - start) };
}
