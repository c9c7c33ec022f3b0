/**
 * Vault benchmark, run by `npm run bench` under each runtime.
 *
 *   seed <dir>    build vaults of 10 … 100 000 secrets, spread over many
 *                 scopes and all in one scope (fast, not durable: setup only)
 *   run <dir>     measure put, get, list and delete in each, and the
 *                 durable-write floor, printing one JSON line per figure
 *   listmem <dir> the peak memory of listing 100 000 secrets of one scope
 *   allocmem <dir> the peak memory of building that list's result in a loop, reading nothing
 *   readmem <dir> read|scan  the peak memory of reading the snapshot's bytes, or of reading and
 *                 scanning them while keeping no entry: the floors under listmem's reading
 *   cipher        64-byte and 64 KiB seal and open against bare WebCrypto (also part of run)
 *
 * Figures are ops/s; scripts/bench.mjs turns them into ratios, because
 * these machines are too noisy for absolute times to mean much.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { Vault } from "../src/vault.ts";
import { objectId, scopeDirName } from "../src/crypto/ids.ts";
import { openEnvelope, sealEnvelope } from "../src/crypto/envelope.ts";
import { vaultCipher } from "../src/store/cipher.ts";
import { encodeSnapshot, type IndexEntry, parseSnapshot } from "../src/store/scope_index.ts";
import { defaultFileSystem } from "../src/platform/fs.ts";
import { utf8 } from "../src/crypto/encoding.ts";
import { kekId } from "../src/crypto/kdf.ts";

const KEK = new Uint8Array(32).fill(42);
const SIZES = [10, 1_000, 10_000, 100_000];
const PER_SCOPE = 100; // "many scopes": 100 secrets in each
const VALUE = utf8("sk-bench-0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEF"); // a typical API key
const TARGET = "ws:target";

type Layout = "many_scopes" | "one_scope";

function vaultDir(base: string, layout: Layout, n: number): string {
  return join(base, `${layout}-${n}`);
}

function seed(base: string): void {
  for (const layout of ["many_scopes", "one_scope"] as const) {
    for (const n of SIZES) {
      const root = vaultDir(base, layout, n);
      mkdirSync(join(root, "objects"), { recursive: true, mode: 0o700 });
      mkdirSync(join(root, "scopes"), { recursive: true, mode: 0o700 });
      writeFileSync(join(root, "backend.kind"), "encrypted_file\n", { mode: 0o600 });
      writeFileSync(join(root, "kek.id"), kekId(KEK), { mode: 0o600 }); // as a vault records its key (FORMAT.md §5.7)
      const scopes = new Map<string, IndexEntry[]>();
      const now = Date.now();
      for (let i = 0; i < n; i++) {
        // The target scope holds the first PER_SCOPE secrets (or all of them).
        const scope = layout === "one_scope" || i < PER_SCOPE ? TARGET : `ws:s${Math.floor(i / PER_SCOPE)}`;
        const key = `key.${String(i).padStart(6, "0")}`;
        const id = objectId(scope, key);
        writeFileSync(join(root, "objects", id), sealEnvelope(KEK, scope, key, VALUE), { mode: 0o600 });
        let entries = scopes.get(scope);
        if (!entries) scopes.set(scope, entries = []);
        entries.push({
          key,
          object_id: id,
          created_at_unix_ms: now,
          updated_at_unix_ms: now,
          value_bytes: VALUE.length,
        });
      }
      for (const [scope, entries] of scopes) {
        const dir = join(root, "scopes", scopeDirName(scope));
        mkdirSync(dir, { mode: 0o700 });
        writeFileSync(join(dir, "metadata.json"), encodeSnapshot(scope, 1, entries), { mode: 0o600 });
      }
    }
  }
}

/** Runs `op(i)` until `maxOps` or `budgetMs` is reached (at least `minOps`); returns ops/s. */
async function measure(
  op: (i: number) => Promise<unknown>,
  maxOps: number,
  budgetMs: number,
  minOps = 5,
): Promise<number> {
  const t0 = performance.now();
  let i = 0;
  while (i < maxOps && (i < minOps || performance.now() - t0 < budgetMs)) await op(i++);
  return (i * 1000) / (performance.now() - t0);
}

async function floor(base: string): Promise<number> {
  const dir = join(base, "floor");
  mkdirSync(dir, { recursive: true });
  const size = sealEnvelope(KEK, TARGET, "key.000000", VALUE).length;
  const data = new Uint8Array(size);
  return await measure(
    async (i) => {
      const tmp = join(dir, `t${i}`);
      const fh = await fsp.open(tmp, "wx", 0o600);
      await fh.writeFile(data);
      await fh.sync();
      await fh.close();
      await fsp.rename(tmp, join(dir, "target"));
      const dh = await fsp.open(dir, "r");
      await dh.sync();
      await dh.close();
    },
    300,
    1500,
  );
}

/** Operations each op runs before `measureInterleaved` times it. */
const WARMUP_OPS = 300;

/**
 * Runs each op WARMUP_OPS times, then each in turn for `sliceMs` at a time, `rounds` times over; returns
 * each op's ops/s. Warmed first: the JavaScript around a cipher is compiled on the fly, WebCrypto is not,
 * and the steady state is what a process doing many of these sees (the first second alone measured 2-3×
 * slower). Interleaved so that every op sees the same machine: measured one second after another, the same
 * WebCrypto call on Deno took 250 µs in one window and 370 µs in the next, more than the difference being
 * measured. Slices of a tenth of a second keep each op's own steady state (its garbage collections among
 * it) its own.
 */
async function measureInterleaved<K extends string>(
  ops: Record<K, () => Promise<unknown>>,
  rounds: number,
  sliceMs: number,
  warmupOps = WARMUP_OPS,
): Promise<Record<K, number>> {
  const names = Object.keys(ops) as K[];
  for (const n of names) for (let i = 0; i < warmupOps; i++) await ops[n]();
  const spent = Object.fromEntries(names.map((n) => [n, 0])) as Record<K, number>;
  const done = Object.fromEntries(names.map((n) => [n, 0])) as Record<K, number>;
  for (let r = 0; r < rounds; r++) {
    for (const n of names) {
      const t0 = performance.now();
      let t = t0;
      while (t - t0 < sliceMs) {
        await ops[n]();
        done[n]++;
        t = performance.now();
      }
      spent[n] += t - t0;
    }
  }
  return Object.fromEntries(names.map((n) => [n, (done[n] * 1000) / spent[n]])) as Record<K, number>;
}

/**
 * Sealing and opening a 64 KiB value through the vault's path against bare WebCrypto AES-GCM of the
 * same bytes with a key imported once (the target: within 1.5×), and a typical small value, each after
 * WARMUP_OPS operations.
 */
async function cipherRows(emit: (o: Record<string, unknown>) => void): Promise<void> {
  for (const size of [64, 65536]) {
    const value = crypto.getRandomValues(new Uint8Array(size));
    const key = await crypto.subtle.importKey("raw", KEK.slice(), "AES-GCM", false, ["encrypt", "decrypt"]);
    const iv = new Uint8Array(12);
    const bare = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, value));
    const aad = new Uint8Array(utf8(`palyra.vault.v1|${TARGET}|k`));
    const sealedWithAad = new Uint8Array(
      await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, key, value),
    );
    // What any envelope's AES-GCM on WebCrypto must do: each value has its own data key, imported for it.
    const freshKey = () =>
      crypto.subtle.importKey("raw", crypto.getRandomValues(new Uint8Array(32)), "AES-GCM", false, [
        "encrypt",
        "decrypt",
      ]);
    const bareOps = {
      bareSeal: () => crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, value),
      bareOpen: () => crypto.subtle.decrypt({ name: "AES-GCM", iv }, key, bare),
      freshKeySeal: async () =>
        crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, await freshKey(), value),
      freshKeyOpen: async () => {
        const k = await crypto.subtle.importKey("raw", KEK.slice(), "AES-GCM", false, ["decrypt"]);
        return crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: aad }, k, sealedWithAad);
      },
    };
    // Each KEK engine: noble (a library vault's default) and WebCrypto (the CLI's).
    for (const engine of ["noble", "webcrypto"] as const) {
      // As the vault makes it: large values on the runtime's own AES-GCM where it has one.
      const cipher = vaultCipher(KEK, engine);
      const sealed = await cipher.seal(TARGET, "k", value);
      const ops = {
        seal: () => cipher.seal(TARGET, "k", value),
        open: () => cipher.open(TARGET, "k", sealed),
        ...bareOps,
      };
      emit({ op: "cipher", engine, size, ...await measureInterleaved(ops, 10, 100) });
    }
  }
}

/**
 * The get target: a vault's get against its floor, a synchronous read of the same stored object and a synchronous
 * open of its envelope, in interleaved tenths of a second (`measureInterleaved`). Measured apart (the floor first, the
 * gets minutes later among other rows), the ratio moved from 1.6 to 2.5 between whole runs on Bun, whose get/s moved
 * as much between two 10-secret rows of one run.
 */
async function getPair(base: string): Promise<{ get: number; floor: number }> {
  const root = vaultDir(base, "many_scopes", 10);
  const key = "key.000003";
  const path = join(root, "objects", objectId(TARGET, key));
  const vault = await Vault.open({ root, kek: KEK, backend: "encrypted_file" });
  try {
    const ops = {
      get: async () => {
        using s = await vault.getSecret(TARGET, key);
        return s.length;
      },
      // deno-lint-ignore require-await -- measureInterleaved() takes async ops
      floor: async () => openEnvelope(KEK, TARGET, key, readFileSync(path)).fill(0),
    };
    return await measureInterleaved(ops, 10, 100);
  } finally {
    vault.close();
  }
}

/**
 * The scaling target for a put: puts into the one-scope vaults of 10 and of 100 000 secrets from one process, in
 * interleaved tenths of a second (`measureInterleaved`), after 20 each to warm up (each vault's index read once, as a
 * long-running writer has it; fewer than the other pairs, since every put adds a key); returns each one's puts/s.
 * Measured apart, as the table's rows are, minutes and many other rows between them, the same ratio moved 0.8–1.9
 * between runs on one machine: a put is fsync-bound, and the disk's pace moves over minutes. Paired, both see the same
 * disk (README, "Performance", gives what it measured). The new keys are deleted afterwards, so the vaults keep their
 * sizes for the rows after.
 */
async function putPair(base: string, runtime: string): Promise<{ at10: number; at100k: number }> {
  const vaults = {
    at10: await Vault.open({ root: vaultDir(base, "one_scope", 10), kek: KEK, backend: "encrypted_file" }),
    at100k: await Vault.open({ root: vaultDir(base, "one_scope", 100_000), kek: KEK, backend: "encrypted_file" }),
  };
  const keys: Record<keyof typeof vaults, string[]> = { at10: [], at100k: [] };
  const put = (n: keyof typeof vaults) => () => {
    const key = `bench.pair.${runtime}.${keys[n].length}`;
    keys[n].push(key);
    return vaults[n].putSecret(TARGET, key, VALUE);
  };
  try {
    return await measureInterleaved({ at10: put("at10"), at100k: put("at100k") }, 8, 100, 20);
  } finally {
    for (const n of ["at10", "at100k"] as const) {
      for (const key of keys[n]) await vaults[n].deleteSecret(TARGET, key);
      vaults[n].close();
    }
  }
}

async function runAll(base: string): Promise<void> {
  const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined"
    ? "deno"
    : typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"
    ? "bun"
    : "node";
  const emit = (o: Record<string, unknown>) => console.log(JSON.stringify({ runtime, ...o }));
  emit({ op: "floor", opsPerSec: await floor(base) });
  emit({ op: "getPair", ...await getPair(base) });
  emit({ op: "putPair", ...await putPair(base, runtime) });
  await cipherRows(emit);
  for (const layout of ["many_scopes", "one_scope"] as const) {
    for (const n of SIZES) {
      const vault = await Vault.open({ root: vaultDir(base, layout, n), kek: KEK, backend: "encrypted_file" });
      const fresh = (i: number) => `bench.new.${runtime}.${i}`;
      // A long-running writer has read the scope's index once; that first read grows with the scope.
      await vault.putSecret(TARGET, `bench.warm.${runtime}`, VALUE);
      let puts = 0;
      const put = await measure((i) => (puts++, vault.putSecret(TARGET, fresh(i), VALUE)), 300, 1500);
      const inScope = Math.min(n, layout === "one_scope" ? n : PER_SCOPE);
      const get = await measure(
        async (i) => {
          using s = await vault.getSecret(TARGET, `key.${String((i * 7919) % inScope).padStart(6, "0")}`);
          return s.length;
        },
        2000,
        1000,
      );
      // The target names CPU time: beside the wall time, the process's CPU time (every thread, so the collector's
      // helpers too) per list.
      let lists = 0;
      const cpu0 = process.cpuUsage();
      const list = await measure(() => (lists++, vault.listSecrets(TARGET)), 500, 1000, 3);
      const cpu = process.cpuUsage(cpu0);
      const listCpuMs = (cpu.user + cpu.system) / 1000 / lists;
      const del = await measure((i) => vault.deleteSecret(TARGET, fresh(i)), puts, 1500, puts);
      await vault.deleteSecret(TARGET, `bench.warm.${runtime}`);
      emit({ layout, n, put, get, list, listCpuMs, delete: del });
      vault.close();
    }
  }
}

/**
 * Peak memory of listing the one-scope vault of 100 000 secrets, in a fresh process: the growth
 * of the resident high-water mark (Linux `VmHWM`) over the list, against the snapshot's size.
 */
async function listMemory(base: string): Promise<void> {
  const root = vaultDir(base, "one_scope", 100_000);
  const vault = await Vault.open({ root, kek: KEK, backend: "encrypted_file" });
  await vault.listSecrets("ws:empty"); // load every module the list uses
  const hwm = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? NaN) * 1024;
  const before = hwm();
  const t0 = performance.now();
  const listed = await vault.listSecrets(TARGET);
  const ms = performance.now() - t0;
  const peak = hwm() - before;
  const snapshot = statSync(join(root, "scopes", scopeDirName(TARGET), "metadata.json")).size;
  // The size of a version 1 snapshot of the same entries (docs/FORMAT.md §5.1: every field spelled out, the object id
  // stored): the form the index had when the memory target was set, about four times the lean one.
  const v1Bytes = utf8(JSON.stringify({
    version: 1,
    scope: TARGET,
    entries: listed.map((e) => ({
      key: e.key,
      object_id: objectId(TARGET, e.key),
      created_at_unix_ms: e.createdAtUnixMs,
      updated_at_unix_ms: e.updatedAtUnixMs,
      value_bytes: e.valueBytes,
    })),
  })).length;
  console.log(
    JSON.stringify({ op: "listMemory", secrets: listed.length, peakBytes: peak, snapshotBytes: snapshot, v1Bytes, ms }),
  );
}

/**
 * The floor under `listMemory`: the same growth while building the same 100 000 result objects (scope,
 * key, two times, a size, as `listSecrets` returns them) in a plain loop, with no file read or parsed.
 */
async function allocMemory(base: string): Promise<void> {
  const root = vaultDir(base, "one_scope", 100_000);
  const vault = await Vault.open({ root, kek: KEK, backend: "encrypted_file" });
  await vault.listSecrets("ws:empty"); // the same process state as listMemory's before its list
  const hwm = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? NaN) * 1024;
  const now = Date.now();
  const before = hwm();
  const built = new Array(100_000);
  for (let i = 0; i < built.length; i++) {
    built[i] = {
      scope: TARGET,
      key: `key.${String(i).padStart(6, "0")}`,
      createdAtUnixMs: now,
      updatedAtUnixMs: now,
      valueBytes: VALUE.length,
    };
  }
  const peak = hwm() - before;
  console.log(JSON.stringify({ op: "allocMemory", objects: built.length, peakBytes: peak }));
}

/**
 * Floors under `listMemory`'s reading, in a fresh process: the growth while reading the snapshot's bytes
 * through the vault's file layer (`read`), or reading them and scanning every entry as a list does while
 * keeping none (`scan`: the maker hands back one shared object, so what is left is the reading, the text
 * and the scan's own garbage).
 */
async function readMemory(base: string, stage: string): Promise<void> {
  const root = vaultDir(base, "one_scope", 100_000);
  const vault = await Vault.open({ root, kek: KEK, backend: "encrypted_file" });
  await vault.listSecrets("ws:empty"); // the same process state as listMemory's before its list
  const path = join(root, "scopes", scopeDirName(TARGET), "metadata.json");
  const hwm = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? NaN) * 1024;
  const shared = { key: "" };
  const before = hwm();
  const bytes = await defaultFileSystem.readFile(path);
  const entries = stage === "scan" ? parseSnapshot(path, TARGET, bytes, () => shared).entries.length : 0;
  const peak = hwm() - before;
  console.log(JSON.stringify({ op: "readMemory", stage, bytes: bytes.length, entries, peakBytes: peak }));
}

const [mode, dir, stage] = process.argv.slice(2);
if (mode === "seed" && dir) seed(dir);
else if (mode === "run" && dir) await runAll(dir);
else if (mode === "listmem" && dir) await listMemory(dir);
else if (mode === "allocmem" && dir) await allocMemory(dir);
else if (mode === "readmem" && dir && (stage === "read" || stage === "scan")) await readMemory(dir, stage);
else if (mode === "cipher") await cipherRows((o) => console.log(JSON.stringify(o)));
else {
  console.error("usage: vault_bench.ts seed|run|listmem|allocmem <dir>, readmem <dir> read|scan, or cipher");
  process.exit(2);
}
