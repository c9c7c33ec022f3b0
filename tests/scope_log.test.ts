/**
 * The scope index as a snapshot and an append-only log (docs/FORMAT.md §5.1): a put into a
 * large scope appends one checksummed record instead of rewriting the index, a torn tail left
 * by a crash is ignored and repaired, a damaged record is `corrupt`, old indexes are still read,
 * and writers in other processes (other `Vault` objects) are never lost to a cached index.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Vault } from "../src/vault.ts";
import { defaultFileSystem, type FileSystem } from "../src/platform/fs.ts";
import { objectId, scopeDirName } from "../src/crypto/ids.ts";
import { rejectsWith, tempDir, testKek } from "./helpers.ts";
import fc from "fast-check";
import {
  encodeSnapshot,
  loadScopeIndex,
  parseSnapshot,
  parseSnapshotJson,
  readScopeEntries,
  scanCanonical,
  scopeEntry,
} from "../src/store/scope_index.ts";
import { encodeLogHeader, encodeLogRecord, type LogRecord, parseLog } from "../src/store/scope_log.ts";
import { VaultError } from "../src/errors.ts";
import { asciiText, asciiTextOn } from "../src/platform/text.ts";
import { runtimeName } from "../src/platform/runtime.ts";

const KEK = testKek(11);
const SCOPE = "ws:acme";

async function fresh(label: string, fs?: FileSystem) {
  const root = join(tempDir(label), "vault");
  const vault = await Vault.open({ root, kek: KEK, ...(fs === undefined ? {} : { host: { fs } }) });
  const dir = join(root, "scopes", scopeDirName(SCOPE));
  return { root, vault, dir, snapshot: join(dir, "metadata.json"), log: join(dir, "metadata.log") };
}

const keysOf = async (vault: Vault, scope = SCOPE) => (await vault.listSecrets(scope)).map((m) => m.key);
const lines = (path: string) => readFileSync(path, "utf8").split("\n");

describe("scope index log", () => {
  test("a put into an existing scope appends one checksummed record and leaves the snapshot alone", async () => {
    assert.equal(crc32Hex(new TextEncoder().encode("123456789")), "cbf43926", "the CRC-32 check value");
    const { vault, snapshot, log } = await fresh("log-append");
    await vault.putSecret(SCOPE, "a", "1");
    const before = readFileSync(snapshot);
    const doc = JSON.parse(before.toString());
    assert.deepEqual(Object.keys(doc), ["version", "scope", "generation", "entries"]);
    assert.equal(doc.version, 2);
    assert.equal(doc.generation, 1);
    assert.equal(doc.entries.length, 1);
    assert.deepEqual(doc.entries[0].slice(0, 1), ["a"]);
    await vault.putSecret(SCOPE, "b", "22");
    await vault.putSecret(SCOPE, "a", "333");
    assert.ok(await vault.deleteSecret(SCOPE, "b"));
    assert.deepEqual(readFileSync(snapshot), before, "the snapshot is not rewritten");
    const text = lines(log);
    assert.equal(text.pop(), "", "every line ends with a newline");
    assert.equal(text.length, 4, "a header and three records");
    for (const line of text) assert.match(line, /^[0-9a-f]{8} [[{]/);
    assert.deepEqual(JSON.parse(text[0]!.slice(9)), { log: 1, scope: SCOPE, generation: 1 });
    const records = text.slice(1).map((l) => JSON.parse(l.slice(9)) as unknown[]);
    assert.deepEqual(records.map((r) => r.slice(0, 2)), [["put", "b"], ["put", "a"], ["delete", "b"]]);
    assert.equal(records[1]![4], 3, "value_bytes");
    assert.equal(records[1]![2], doc.entries[0][1], "an overwrite keeps created_at");
    assert.deepEqual(await keysOf(vault), ["a"]);
    using v = await vault.getSecret(SCOPE, "a");
    assert.equal(v.text(), "333");
  });

  test("a torn tail is ignored by readers and cut off by the next write", async () => {
    const { root, vault, log } = await fresh("log-torn");
    for (const k of ["a", "b", "c"]) await vault.putSecret(SCOPE, k, k);
    for (const torn of ['0badc0de ["put","x",1,1,1]', '12345678 ["put","x"', "0000", "\u0000\u0000\u0000"]) {
      // Leave records in the log (the last write may have folded it into the snapshot).
      await vault.putSecret(SCOPE, "e", "e");
      assert.ok(await vault.deleteSecret(SCOPE, "e"));
      const listed = await vault.listSecrets(SCOPE);
      appendFileSync(log, torn);
      const reader = await Vault.open({ root, kek: KEK });
      assert.deepEqual(await reader.listSecrets(SCOPE), listed, JSON.stringify(torn));
      assert.deepEqual(await vault.listSecrets(SCOPE), listed);
      const writer = await Vault.open({ root, kek: KEK });
      await writer.putSecret(SCOPE, "d", "d");
      assert.deepEqual(await keysOf(reader), ["a", "b", "c", "d"]);
      assert.ok(!existsSync(log) || !readFileSync(log, "utf8").includes(torn), "the torn bytes are gone");
      assert.ok(await writer.deleteSecret(SCOPE, "d"));
    }
    // A record whose checksum is wrong but that ends with a newline is a torn tail too when it is last.
    await vault.putSecret(SCOPE, "e", "e");
    const listed = await vault.listSecrets(SCOPE);
    appendFileSync(log, '0badc0de ["put","x",1,1,1]\n');
    assert.deepEqual(await (await Vault.open({ root, kek: KEK })).listSecrets(SCOPE), listed);
  });

  test("a damaged record before the end makes the scope corrupt, and no write touches it", async () => {
    const { root, vault, log } = await fresh("log-damaged");
    for (const k of ["a", "b", "c", "d"]) await vault.putSecret(SCOPE, k, k);
    await vault.putSecret("ws:fine", "k", "v");
    const good = readFileSync(log, "utf8");
    const parts = good.split("\n");
    const damages = [
      // a changed byte in a middle record
      [parts[0], parts[1]!.replace('"b"', '"q"'), ...parts.slice(2)].join("\n"),
      // a checksum that matches, but a record that breaks the key grammar
      [parts[0], recordLine('["put","B/../x",1,1,1]'), ...parts.slice(1)].join("\n"),
      // a header naming another scope
      [recordLine('{"log":1,"scope":"ws:other","generation":1}'), ...parts.slice(1)].join("\n"),
      // no header at all
      parts.slice(1).join("\n"),
    ];
    for (const bad of damages) {
      writeFileSync(log, bad);
      const other = await Vault.open({ root, kek: KEK });
      await rejectsWith(() => other.listSecrets(SCOPE), "corrupt", /corrupt/);
      await rejectsWith(() => other.listSecrets(), "corrupt", /corrupt/);
      await rejectsWith(() => other.putSecret(SCOPE, "e", "e"), "corrupt", /corrupt/);
      await rejectsWith(() => other.deleteSecret(SCOPE, "a"), "corrupt", /corrupt/);
      await rejectsWith(() => vault.putSecret(SCOPE, "e", "e"), "corrupt", /corrupt/);
      assert.equal(readFileSync(log, "utf8"), bad, "nothing rewrote the damaged log");
      assert.deepEqual(await keysOf(other, "ws:fine"), ["k"]);
      using v = await other.getSecret(SCOPE, "a");
      assert.equal(v.text(), "a", "the envelopes can still be read");
    }
  });

  test("an index of version 1 is read as it is, and the first write makes it version 2", async () => {
    const { root, vault, dir, snapshot, log } = await fresh("log-v1");
    await vault.putSecret(SCOPE, "a", "1");
    await vault.putSecret(SCOPE, "b", "2");
    const v1 = {
      version: 1,
      scope: SCOPE,
      entries: (await vault.listSecrets(SCOPE)).map((m) => ({
        key: m.key,
        object_id: objectId(SCOPE, m.key),
        created_at_unix_ms: m.createdAtUnixMs,
        updated_at_unix_ms: m.updatedAtUnixMs,
        value_bytes: m.valueBytes,
      })),
    };
    const listed = await vault.listSecrets(SCOPE);
    writeFileSync(snapshot, JSON.stringify(v1));
    if (existsSync(log)) writeFileSync(log, ""); // replaced below
    const { rmSync } = await import("node:fs");
    rmSync(log, { force: true });
    const reader = await Vault.open({ root, kek: KEK });
    assert.deepEqual(await reader.listSecrets(SCOPE), listed);
    assert.deepEqual(await reader.listSecrets(), listed);
    await reader.putSecret(SCOPE, "c", "3");
    const doc = JSON.parse(readFileSync(snapshot, "utf8"));
    assert.equal(doc.version, 2);
    assert.deepEqual(doc.entries.map((e: unknown[]) => e[0]), ["a", "b", "c"]);
    assert.deepEqual(
      (await vault.listSecrets(SCOPE)).slice(0, 2),
      listed,
      "the other vault, whose cache predates the change, sees it too",
    );
    assert.ok(existsSync(dir));
  });

  test("a log older than the snapshot is ignored; a log newer than the snapshot is corrupt", async () => {
    const { root, vault, snapshot, log } = await fresh("log-generations");
    await vault.putSecret(SCOPE, "a", "1");
    await vault.putSecret(SCOPE, "b", "2");
    const oldLog = readFileSync(log);
    // A crash between a compaction's new snapshot and the removal of the old log.
    const doc = JSON.parse(readFileSync(snapshot, "utf8"));
    const listed = await vault.listSecrets(SCOPE);
    const folded = {
      ...doc,
      generation: 2,
      entries: listed.map((m) => [m.key, m.createdAtUnixMs, m.updatedAtUnixMs, m.valueBytes]),
    };
    writeFileSync(snapshot, JSON.stringify(folded));
    writeFileSync(
      log,
      [recordLine(`{"log":1,"scope":"${SCOPE}","generation":1}`), recordLine('["put","z",1,1,1]'), ""].join("\n"),
    );
    const reader = await Vault.open({ root, kek: KEK });
    assert.deepEqual(await reader.listSecrets(SCOPE), listed, "the stale log is ignored");
    await reader.putSecret(SCOPE, "c", "3");
    assert.deepEqual(await keysOf(reader), ["a", "b", "c"]);
    assert.match(lines(log)[0]!, /"generation":2/, "the next write starts a log for the new snapshot");
    // A snapshot restored from an older backup, under a newer log.
    writeFileSync(snapshot, JSON.stringify({ ...doc, generation: 1 }));
    const third = await Vault.open({ root, kek: KEK });
    await rejectsWith(() => third.listSecrets(SCOPE), "corrupt", /generation/);
    // A log whose snapshot is gone, read after read (a folder gone as a whole is read again, and is no scope).
    rmSync(snapshot);
    await rejectsWith(() => third.listSecrets(SCOPE), "corrupt", /metadata\.json, which is missing/);
    writeFileSync(snapshot, JSON.stringify(folded));
    assert.ok(oldLog.length > 0);
  });

  test("many writes fold the log into a new snapshot; the log stays bounded and nothing is lost", async () => {
    const { root, vault, snapshot, log } = await fresh("log-compact");
    const expected = new Map<string, string>();
    for (let i = 0; i < 320; i++) {
      const key = `k${i % 97}`;
      if (i % 11 === 10) {
        await vault.deleteSecret(SCOPE, key);
        expected.delete(key);
      } else {
        await vault.putSecret(SCOPE, key, `v${i}`);
        expected.set(key, `v${i}`);
      }
    }
    const doc = JSON.parse(readFileSync(snapshot, "utf8"));
    assert.ok(doc.generation >= 2, `compacted (generation ${doc.generation})`);
    const records = existsSync(log) ? lines(log).length - 2 : 0;
    assert.ok(records < 256, `the log holds ${records} records`);
    const reader = await Vault.open({ root, kek: KEK });
    assert.deepEqual(await keysOf(reader), [...expected.keys()].sort());
    for (const [k, v] of expected) {
      using got = await reader.getSecret(SCOPE, k);
      assert.equal(got.text(), v);
    }
  });

  test("writers in other Vault objects are never lost to a cached index", async () => {
    const { root, vault } = await fresh("log-cache");
    const other = await Vault.open({ root, kek: KEK });
    const want: string[] = [];
    for (let i = 0; i < 300; i++) {
      const v = i % 3 === 0 ? other : vault; // the other writer compacts at its own pace
      await v.putSecret(SCOPE, `k${String(i).padStart(3, "0")}`, "x");
      want.push(`k${String(i).padStart(3, "0")}`);
    }
    assert.deepEqual(await keysOf(vault), want);
    assert.deepEqual(await keysOf(other), want);
    const created = (await vault.listSecrets(SCOPE))[0]!.createdAtUnixMs;
    await other.putSecret(SCOPE, "k000", "y");
    await vault.putSecret(SCOPE, "k000", "z");
    assert.equal((await vault.listSecrets(SCOPE))[0]!.createdAtUnixMs, created);
  });

  test("in one process, a put into a scope of 3000 secrets reads its snapshot once, not per put", async () => {
    let snapshotReads = 0;
    const counting: FileSystem = {
      ...defaultFileSystem,
      readFile(path, max) {
        if (path.endsWith("metadata.json")) snapshotReads++;
        return defaultFileSystem.readFile(path, max);
      },
    };
    const { root } = await fresh("log-cost");
    const seeded = await Vault.open({ root, kek: KEK });
    for (let i = 0; i < 30; i++) await seeded.putSecret(SCOPE, `seed${i}`, "s");
    // Grow the snapshot without 3000 fsyncs: a version 2 snapshot written as a compaction would.
    const dir = join(root, "scopes", scopeDirName(SCOPE));
    const now = Date.now();
    const entries = Array.from({ length: 3000 }, (_, i) => [`big.${String(i).padStart(5, "0")}`, now, now, 1]);
    writeFileSync(join(dir, "metadata.json"), JSON.stringify({ version: 2, scope: SCOPE, generation: 9, entries }));
    const { rmSync } = await import("node:fs");
    rmSync(join(dir, "metadata.log"), { force: true });
    const writer = await Vault.open({ root, kek: KEK, host: { fs: counting } });
    for (let i = 0; i < 20; i++) await writer.putSecret(SCOPE, `new${i}`, "n");
    assert.ok(snapshotReads <= 2, `the snapshot was read ${snapshotReads} times for 20 puts`);
    assert.equal((await (await Vault.open({ root, kek: KEK })).listSecrets(SCOPE)).length, 3020);
    assert.ok(statSync(join(dir, "metadata.log")).size < 4096);
  });
});

/** A log line: CRC-32 (as zlib computes it) of the JSON text, a space, the text. */
function recordLine(json: string): string {
  return `${crc32Hex(new TextEncoder().encode(json))} ${json}`;
}

/** Bit-by-bit CRC-32 (reflected, polynomial 0xEDB88320), written plainly so it shares nothing with src/. */
function crc32Hex(bytes: Uint8Array): string {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return ((crc ^ 0xffffffff) >>> 0).toString(16).padStart(8, "0");
}

describe("scope index properties", () => {
  const keyChar = fc.constantFrom(..."abcxyz0189._-");
  const key = fc.array(keyChar, { minLength: 1, maxLength: 12 }).map((cs) => cs.join(""));
  const count = fc.oneof(fc.nat(100), fc.constant(0), fc.integer({ min: 1e12, max: Number.MAX_SAFE_INTEGER }));
  const entry = fc.tuple(key, count, count, count).map(([k, c, u, b]) => ({
    key: k,
    object_id: "",
    created_at_unix_ms: c,
    updated_at_unix_ms: u,
    value_bytes: b,
  }));
  const entries = fc.uniqueArray(entry, { selector: (e) => e.key, maxLength: 8 });
  const scope = fc.constantFrom("global", "ws:acme", "pr:alice", "ws:日本語 チーム", 'ws:q"uote');
  /** Edits that keep the text JSON but may take it off the canonical form, or make it invalid. */
  const edit = fc.constantFrom<(t: string) => string>(
    (t) => t,
    (t) => t.replace('["', '[ "'),
    (t) => t.replace(",", ", "),
    (t) => t.replace(/"([a-z])/, '"\\u00$1'.replace("$1", "61")),
    (t) => t.replace(/,(\d)/, ",0$1"),
    (t) => t.replace(/,(\d+)\]/, ",$1.0]"),
    (t) => t.replace(/,(\d+)\]/, ",1e3]"),
    (t) => t.replace(/,(\d+)\]/, ",-$1]"),
    (t) => t.replace(/,(\d+)\]/, ",9007199254740993]"),
    (t) => t.replace('"generation":', '"generation":0,"x":'),
    (t) => t.replace(/\["([^"]+)"/, '["$1","$1"'),
    (t) => t.replace(/\["[^"]+"/, '["A"'),
    (t) => t.replace(/\["[^"]+"/, '["' + "k".repeat(129) + '"'),
    (t) => t.replace("]]}", '],["zzzz",1,1,1]]}').replace("]]}", '],["a",1,1,1]]}'),
    (t) => t.replace("]}", "] }"),
    (t) => t.replace('"entries":[', '"entries":[["a",1,1,1],'),
  );
  const outcome = (f: () => unknown) => {
    try {
      return { ok: f() };
    } catch (e) {
      assert.ok(VaultError.is(e, "corrupt"), String(e));
      return { error: "corrupt" };
    }
  };

  test("the fast snapshot reader and JSON.parse agree on every text, canonical or not", () => {
    fc.assert(
      fc.property(scope, fc.integer({ min: 1, max: 99 }), entries, edit, (s, g, es, change) => {
        const text = change(new TextDecoder().decode(encodeSnapshot(s, g, es)));
        const bytes = new TextEncoder().encode(text);
        const fast = outcome(() => parseSnapshot("p", undefined, bytes, scopeEntry));
        const json = outcome(() => parseSnapshotJson("p", undefined, bytes, scopeEntry));
        assert.deepEqual(fast, json, text);
        const scanned = scanCanonical(text, undefined, scopeEntry);
        if (scanned !== undefined) assert.deepEqual({ ok: scanned }, json, text);
      }),
      { numRuns: 3000 },
    );
  });

  test("malformed UTF-8 anywhere in a snapshot: the fast reader and JSON.parse still agree", () => {
    // The fast reader decodes leniently (a malformed byte becomes U+FFFD): nothing it accepts may hold one.
    const bad = fc.constantFrom([0x80], [0xc3], [0xff], [0xed, 0xa0, 0x80], [0xef, 0xbf, 0xbd]);
    fc.assert(
      fc.property(
        scope,
        fc.integer({ min: 1, max: 99 }),
        entries,
        fc.nat(),
        bad,
        fc.boolean(),
        (s, g, es, at, b, swap) => {
          const clean = encodeSnapshot(s, g, es);
          const i = at % clean.length;
          const bytes = new Uint8Array([...clean.subarray(0, i), ...b, ...clean.subarray(swap ? i + 1 : i)]);
          const fast = outcome(() => parseSnapshot("p", undefined, bytes, scopeEntry));
          assert.deepEqual(fast, outcome(() => parseSnapshotJson("p", undefined, bytes, scopeEntry)), String(bytes));
        },
      ),
      { numRuns: 2000 },
    );
    // The scope's own bytes are the one place a U+FFFD could pass: "ws:acme" with its "e" made malformed.
    const bytes = encodeSnapshot("ws:acme", 1, []);
    bytes[bytes.indexOf(0x65, new TextDecoder().decode(bytes).indexOf("acme"))] = 0xff;
    assert.deepEqual(outcome(() => parseSnapshot("p", undefined, bytes, scopeEntry)), { error: "corrupt" });
  });

  test("a snapshot's text through Node's ASCII path is UTF-8's text, or nothing when a byte is not ASCII", async () => {
    // Node reads a snapshot's text through Buffer when every byte is ASCII (src/platform/text.ts); checked here on
    // node:buffer of every runtime, on views that start and end inside a larger buffer.
    assert.equal(asciiText !== undefined, runtimeName() === "node");
    const text = asciiTextOn(await import("node:buffer"));
    const byte = fc.oneof(
      { weight: 9, arbitrary: fc.integer({ min: 0, max: 0x7f }) },
      fc.integer({ min: 0, max: 255 }),
    );
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 300 }), fc.nat(8), fc.nat(8), (values, before, after) => {
        const whole = new Uint8Array(before + values.length + after).fill(0xc3);
        whole.set(values, before);
        const bytes = whole.subarray(before, before + values.length);
        const expected = values.every((v) => v < 0x80) ? new TextDecoder().decode(bytes) : undefined;
        assert.equal(text(bytes), expected);
      }),
      { numRuns: 1000 },
    );
    // A whole snapshot, as the list reads it.
    const bytes = encodeSnapshot("ws:acme", 3, [scopeEntry("ws:acme", "k.1", 1, 2, 3)]);
    assert.equal(text(bytes), new TextDecoder().decode(bytes));
  });

  const record: fc.Arbitrary<LogRecord> = fc.oneof(
    fc.tuple(key, count, count, count).map(([k, c, u, b]) => ({
      op: "put" as const,
      key: k,
      created: c,
      updated: u,
      bytes: b,
    })),
    key.map((k) => ({ op: "delete" as const, key: k })),
  );
  const parse = (bytes: Uint8Array) =>
    parseLog(bytes, (why) => new VaultError("corrupt", why), (x) => (typeof x === "string" ? x : undefined));

  test("a reader's list of a snapshot and its log is the writer's map of them, sorted by key", async () => {
    const dir = tempDir("merge");
    const fs = defaultFileSystem;
    await fc.assert(
      fc.asyncProperty(entries, fc.array(record, { maxLength: 10 }), async (es, records) => {
        writeFileSync(join(dir, "metadata.json"), encodeSnapshot(SCOPE, 2, es));
        const log = [encodeLogHeader(SCOPE, 2), ...records.map(encodeLogRecord)].flatMap((l) => [...l]);
        writeFileSync(join(dir, "metadata.log"), new Uint8Array(log));
        const read = await readScopeEntries(fs, dir, SCOPE, scopeEntry);
        const written = await loadScopeIndex(fs, dir, SCOPE);
        const expected = [...written!.entries.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
        assert.deepEqual(read?.entries, expected);
      }),
      { numRuns: 300 },
    );
  });

  test("a log of 150 000 records over a snapshot of 100 000 is read whole, in order", async () => {
    // A writer compacts at a quarter of the scope's entries, and another writer's log may hold more: applying that
    // many changes must not build an argument list as long as the log (Node and Deno refuse one of 200 000).
    const dir = tempDir("long-log");
    const key = (i: number) => `k.${String(i).padStart(6, "0")}`;
    const snapshot = Array.from({ length: 100_000 }, (_, i) => scopeEntry(SCOPE, key(2 * i), 1, 1, 1));
    writeFileSync(join(dir, "metadata.json"), encodeSnapshot(SCOPE, 2, snapshot));
    // Puts between the snapshot's keys and after them, and deletes of some of its keys.
    const records = Array.from(
      { length: 150_000 },
      (_, i): LogRecord =>
        i % 10 === 9
          ? { op: "delete", key: key(2 * (i % 100_000)) }
          : { op: "put", key: key(2 * i + 1), created: 2, updated: 3, bytes: 4 },
    );
    const lines = [encodeLogHeader(SCOPE, 2), ...records.map(encodeLogRecord)];
    const log = new Uint8Array(lines.reduce((n, l) => n + l.length, 0));
    lines.reduce((at, l) => (log.set(l, at), at + l.length), 0);
    writeFileSync(join(dir, "metadata.log"), log);
    const read = await readScopeEntries(defaultFileSystem, dir, SCOPE, scopeEntry);
    const written = await loadScopeIndex(defaultFileSystem, dir, SCOPE);
    const expected = [...written!.entries.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
    // 135 000 puts of new keys; the deletes name 10 000 of the snapshot's keys (the last 5 000 of them twice).
    assert.equal(expected.length, 100_000 - 10_000 + 135_000);
    assert.deepEqual(read?.entries, expected);
  });

  test("a log cut anywhere, or with one byte changed, reads as a prefix of its records or as corrupt", () => {
    fc.assert(
      fc.property(
        fc.array(record, { minLength: 1, maxLength: 6 }),
        fc.nat(),
        fc.nat(255),
        fc.boolean(),
        (records, at, byte, cut) => {
          const header = encodeLogHeader("ws:acme", 3);
          const lines = records.map(encodeLogRecord);
          const full = new Uint8Array([...header, ...lines.flatMap((l) => [...l])]);
          assert.deepEqual(parse(full).records, records);
          const i = at % full.length;
          const damaged = cut ? full.slice(0, i) : full.slice();
          if (!cut) damaged[i] = byte;
          const got = outcome(() => parse(damaged));
          if ("ok" in got) {
            const read = (got.ok as { records: LogRecord[] }).records;
            assert.deepEqual(read, records.slice(0, read.length), "a prefix, never a changed record");
            if (cut) {
              // Every record whose line is complete before the cut is read.
              let end = header.length;
              let whole = 0;
              for (const l of lines) if ((end += l.length) <= i) whole++;
              assert.equal(read.length, whole);
            }
          } else {
            // Only damage before the last line makes it corrupt, or a newline written into the last
            // line, which makes a line that is no longer last (a crash appends; it never adds a newline).
            const lastStart = full.length - lines.at(-1)!.length;
            assert.ok(i < lastStart || (!cut && byte === 0x0a), `corrupt for damage at ${i} of ${full.length}`);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});
