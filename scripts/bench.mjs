#!/usr/bin/env node
// `npm run bench`: seeds vaults of 10 … 100 000 secrets once, then measures
// put, get, list and delete on Deno, Bun and Node in turn. Prints ops/s and
// each figure as a ratio to the 10-secret case of the same layout, plus put
// against the durable-write floor measured in the same run; then CLI start-up,
// the keychain backends and the PostgreSQL store.
//
//   node scripts/bench.mjs [deno|bun|node …]      everything (on those runtimes)
//   node scripts/bench.mjs pg [deno|bun|node …]   the PostgreSQL store only
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { privateKeyring } from "../bench/keyring.mjs";

const root = new URL("..", import.meta.url).pathname;
const bin = (name) => join(root, "node_modules", ".bin", name);
const script = join(root, "bench", "vault_bench.ts");
const data = join(root, ".bench", "data");
const runtimes = {
  deno: [bin("deno"), "run", "-A", "--quiet", "--config", join(root, "deno.json"), script],
  bun: [bin("bun"), script],
  node: ["node", "--import", "tsx", script],
};
const only = process.argv.slice(2).filter((a) => a in runtimes);
const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1)).padStart(8);
const ratio = (x, base) => (`x${(x / base).toFixed(2)}`).padStart(7);

if (process.argv.includes("pg")) {
  await postgresBench(only.length ? only : Object.keys(runtimes));
  process.exit(0);
}

rmSync(join(root, ".bench"), { recursive: true, force: true });
mkdirSync(data, { recursive: true });
let t0 = Date.now();
const seeded = spawnSync(runtimes.bun[0], [...runtimes.bun.slice(1), "seed", data], { stdio: "inherit" });
if (seeded.status !== 0) process.exit(1);
console.log(`seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

for (const name of only.length ? only : Object.keys(runtimes)) {
  const [cmd, ...args] = runtimes[name];
  t0 = Date.now();
  const r = spawnSync(cmd, [...args, "run", data], { cwd: root, encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    console.error(r.stderr);
    process.exit(1);
  }
  const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const floor = rows.find((x) => x.op === "floor").opsPerSec;
  console.log(`\n## ${name} (${((Date.now() - t0) / 1000).toFixed(0)} s)   ops/s, and ratio to the 10-secret case`);
  console.log("layout        secrets     put/s  ratio     get/s  ratio    list/s  ratio  delete/s  ratio");
  for (const layout of ["many_scopes", "one_scope"]) {
    const mine = rows.filter((x) => x.layout === layout);
    const base = mine.find((x) => x.n === 10);
    for (const x of mine) {
      console.log(
        `${layout.padEnd(12)} ${String(x.n).padStart(8)}  ${fmt(x.put)} ${ratio(x.put, base.put)}  ${fmt(x.get)} ${
          ratio(x.get, base.get)
        }  ${fmt(x.list)} ${ratio(x.list, base.list)}  ${fmt(x.delete)} ${ratio(x.delete, base.delete)}`,
      );
    }
  }
  for (const c of rows.filter((x) => x.op === "cipher")) {
    console.log(
      `${String(c.size).padStart(6)}-byte value, KEK on ${c.engine.padEnd(9)}: seal ${
        fmt(c.seal).trim()
      }/s vs bare WebCrypto ${fmt(c.bareSeal).trim()}/s ` +
        `(x${(c.bareSeal / c.seal).toFixed(2)} the time); open ${fmt(c.open).trim()}/s vs ${
          fmt(c.bareOpen).trim()
        }/s ` +
        `(x${(c.bareOpen / c.open).toFixed(2)}); target at 64 KiB: within x1.5`,
    );
    console.log(
      `${" ".repeat(6)}  floor, a data key imported for each (the least a WebCrypto seal or open does): ` +
        `seal x${(c.bareSeal / c.freshKeySeal).toFixed(2)}, open x${(c.bareOpen / c.freshKeyOpen).toFixed(2)} ` +
        `the bare time; the vault's seal takes x${(c.freshKeySeal / c.seal).toFixed(2)} the floor's, its open x${
          (c.freshKeyOpen / c.open).toFixed(2)
        }`,
    );
  }
  const getPair = rows.find((x) => x.op === "getPair");
  const putPair = rows.find((x) => x.op === "putPair");
  const at10 = rows.find((x) => x.layout === "many_scopes" && x.n === 10);
  const one = (n) => rows.find((x) => x.layout === "one_scope" && x.n === n);
  console.log(
    `targets: put = ${(floor / at10.put / 2).toFixed(2)}× two durable writes (≤ 1.3); ` +
      `get = ${(getPair.floor / getPair.get).toFixed(2)}× a sync read + open of the same envelope (≤ 2); ` +
      `one scope: put at 100 000 = ${(putPair.at10 / putPair.at100k).toFixed(2)}× put at 10, interleaved (≤ 1.5; ` +
      `${(one(10).put / one(100000).put).toFixed(2)}× in the rows above, measured apart), ` +
      `list of 100 000 = ${(1000 / one(100000).list).toFixed(0)} ms, ${one(100000).listCpuMs.toFixed(0)} ms of CPU ` +
      `(every thread's) (≤ 60)`,
  );
  const mem = spawnSync(cmd, [...args, "listmem", data], { cwd: root, encoding: "utf8" });
  if (mem.status === 0) {
    const m = JSON.parse(mem.stdout.trim().split("\n").pop());
    console.log(
      `list of ${m.secrets} in a fresh process: ${m.ms.toFixed(0)} ms, peak memory +${
        (m.peakBytes / 2 ** 20).toFixed(1)
      } MiB ` +
        `= ${(m.peakBytes / m.snapshotBytes).toFixed(2)}× the ${
          (m.snapshotBytes / 2 ** 20).toFixed(1)
        } MiB snapshot (≤ 3)`,
    );
    console.log(
      `  against a version 1 snapshot of the same entries (${
        (m.v1Bytes / 2 ** 20).toFixed(1)
      } MiB, object ids stored): ${(m.peakBytes / m.v1Bytes).toFixed(2)}×`,
    );
    // Its floor: the same result built in a loop in a fresh process, with nothing read or parsed.
    const alloc = spawnSync(cmd, [...args, "allocmem", data], { cwd: root, encoding: "utf8" });
    if (alloc.status === 0) {
      const a = JSON.parse(alloc.stdout.trim().split("\n").pop());
      console.log(
        `  building its ${a.objects} result objects alone, in a loop: +${(a.peakBytes / 2 ** 20).toFixed(1)} MiB = ` +
          `${(a.peakBytes / m.snapshotBytes).toFixed(2)}× the snapshot; the list takes ${
            (m.peakBytes / a.peakBytes).toFixed(2)
          }× that`,
      );
    }
    // The floors under its reading: the snapshot's bytes alone, then those bytes scanned with no entry kept.
    for (const stage of ["read", "scan"]) {
      const r = spawnSync(cmd, [...args, "readmem", data, stage], { cwd: root, encoding: "utf8" });
      if (r.status !== 0) continue;
      const f = JSON.parse(r.stdout.trim().split("\n").pop());
      console.log(
        `  ${stage === "read" ? "reading the snapshot alone" : "reading and scanning it, keeping no entry"}: +${
          (f.peakBytes / 2 ** 20).toFixed(1)
        } MiB = ${(f.peakBytes / m.snapshotBytes).toFixed(2)}× the snapshot`,
      );
    }
  } else {
    console.log(`list memory: not measured (${mem.stderr.trim().split("\n").pop()})`);
  }
  const put10 = rows.find((x) => x.layout === "many_scopes" && x.n === 10).put;
  console.log(
    `durable-write floor (write+fsync+rename+fsync folder, same size): ${fmt(floor).trim()} ops/s; ` +
      `put at 10 secrets: ${fmt(put10).trim()} ops/s = ${(floor / put10).toFixed(2)} floors per put`,
  );
}

// CLI start-up against an empty program on each runtime.
if (spawnSync("node", [join(root, "bench", "cli_startup.mjs")], { cwd: root, stdio: "inherit" }).status !== 0) {
  process.exit(1);
}

// Keychain backends: each runtime inside its own private D-Bus session with an unlocked keyring.
const keychainScript = join(root, "bench", "keychain_bench.ts");
console.log("\n## keychain backends (ops/s; ratio = backend / encrypted_file in the same run)");
for (const name of only.length ? only : Object.keys(runtimes)) {
  const ring = privateKeyring(process.env);
  if (ring === undefined) {
    console.log(`${name}: keychain bench skipped (no dbus-daemon, gnome-keyring-daemon or secret-tool)`);
    continue;
  }
  const [cmd, ...args] = [...runtimes[name].slice(0, -1), keychainScript];
  const r = spawnSync(cmd, args, { cwd: root, env: ring.env, encoding: "utf8" });
  ring.stop();
  if (r.status !== 0) {
    console.log(`${name}: keychain bench failed (${r.stderr.trim().split("\n").at(-1)})`);
    continue;
  }
  const rows = r.stdout.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  const file = rows.find((x) => x.backend === "encrypted_file");
  for (const x of rows) {
    console.log(
      `${name.padEnd(5)} ${x.backend.padEnd(22)} put/s ${fmt(x.put)} (x${(x.put / file.put).toFixed(2)})  ` +
        `get/s ${fmt(x.get)} (x${(x.get / file.get).toFixed(2)})`,
    );
  }
}

await postgresBench(only.length ? only : Object.keys(runtimes));

/**
 * The PostgreSQL store: one private server (started by bench/postgres_bench.ts under Bun, stopped
 * when its stdin closes, so also when this process dies), then put and get against the file store
 * in the same process on each runtime, and (Bun only) 1, 2, 4 and 8 writer processes as one device.
 */
async function postgresBench(names) {
  const script = join(root, "bench", "postgres_bench.ts");
  const command = (name, ...args) => [...runtimes[name].slice(0, -1), script, ...args];
  const t0 = Date.now();
  console.log("\n## PostgreSQL store (ops/s; ratio = PostgreSQL / encrypted_file in the same process, 40-byte values)");
  const [cmd, ...args] = command("bun", "server");
  const server = spawn(cmd, args, { cwd: root, stdio: ["pipe", "pipe", "pipe"] });
  let serverErr = "";
  server.stderr.on("data", (c) => (serverErr += c));
  const exited = new Promise((resolve) => server.on("exit", resolve));
  const databases = await new Promise((resolve) => {
    let out = "";
    server.stdout.on("data", (c) => {
      out += c;
      const line = out.split("\n").slice(0, -1).find((l) => l.startsWith("{"));
      if (line !== undefined) resolve(JSON.parse(line).databases);
    });
    exited.then(() => resolve(undefined));
  });
  if (databases === undefined) {
    console.log(`PostgreSQL bench skipped: the server did not start (${serverErr.trim().split("\n").at(-1)})`);
    return;
  }
  const lastLine = (r) => (r.error?.message ?? r.stderr.trim().split("\n").at(-1));
  const jsonRows = (r) => r.stdout.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  try {
    console.log("runtime    pg put/s  file put/s    ratio    pg get/s  file get/s    ratio   (puts, gets per store)");
    for (const name of names) {
      const [c, ...a] = command(name, "compare", databases[name]);
      const r = spawnSync(c, a, { cwd: root, encoding: "utf8", timeout: 120_000 });
      if (r.status !== 0) {
        console.log(`${name.padEnd(8)} failed (${lastLine(r)})`);
        continue;
      }
      const rows = jsonRows(r);
      const put = rows.find((x) => x.op === "put");
      const get = rows.find((x) => x.op === "get");
      console.log(
        `${name.padEnd(8)} ${fmt(put.pg)}    ${fmt(put.file)} ${ratio(put.pg, put.file)}    ${fmt(get.pg)}    ${
          fmt(get.file)
        } ${ratio(get.pg, get.file)}   (${put.pgOps}/${put.fileOps}, ${get.pgOps}/${get.fileOps})`,
      );
    }
    if (names.includes("bun")) {
      const [c, ...a] = command("bun", "scale", databases.scale);
      const r = spawnSync(c, a, { cwd: root, encoding: "utf8", timeout: 180_000 });
      if (r.status !== 0) {
        console.log(`bun writer scaling failed (${lastLine(r)})`);
      } else {
        const rows = jsonRows(r).filter((x) => x.op === "writers");
        const one = rows.find((x) => x.writers === 1);
        console.log("bun: writer processes on one database, one device, distinct keys in one scope, ~4 s window");
        console.log("writers     put/s  ratio to 1 writer    puts   per writer (min-max)");
        for (const x of rows) {
          console.log(
            `${String(x.writers).padStart(7)}  ${fmt(x.putsPerSec)}  ${
              ratio(x.putsPerSec, one.putsPerSec).padStart(17)
            }  ${String(x.puts).padStart(6)}   ${Math.min(...x.perWriter)}-${Math.max(...x.perWriter)}`,
          );
        }
      }
    }
  } finally {
    server.stdin.end();
    const timer = setTimeout(() => server.kill("SIGTERM"), 30_000);
    await exited;
    clearTimeout(timer);
  }
  console.log(`PostgreSQL part: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}
