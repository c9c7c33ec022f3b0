#!/usr/bin/env node
// `npm run bench`: seeds vaults of 10 … 100 000 secrets once, then measures
// put, get, list and delete on Deno, Bun and Node in turn. Prints ops/s and
// each figure as a ratio to the 10-secret case of the same layout, plus put
// against the durable-write floor measured in the same run.
import { spawnSync } from "node:child_process";
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

rmSync(join(root, ".bench"), { recursive: true, force: true });
mkdirSync(data, { recursive: true });
let t0 = Date.now();
const seeded = spawnSync(runtimes.bun[0], [...runtimes.bun.slice(1), "seed", data], { stdio: "inherit" });
if (seeded.status !== 0) process.exit(1);
console.log(`seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1)).padStart(8);
const ratio = (x, base) => (`x${(x / base).toFixed(2)}`).padStart(7);
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
  }
  const getFloor = rows.find((x) => x.op === "getFloor").opsPerSec;
  const at10 = rows.find((x) => x.layout === "many_scopes" && x.n === 10);
  const one = (n) => rows.find((x) => x.layout === "one_scope" && x.n === n);
  console.log(
    `targets: put = ${(floor / at10.put / 2).toFixed(2)}× two durable writes (≤ 1.3); ` +
      `get = ${(getFloor / at10.get).toFixed(2)}× a sync read + open of the same envelope (≤ 2); ` +
      `one scope: put at 100 000 = ${(one(10).put / one(100000).put).toFixed(2)}× put at 10 (≤ 1.5), ` +
      `list of 100 000 = ${(1000 / one(100000).list).toFixed(0)} ms (≤ 60)`,
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
