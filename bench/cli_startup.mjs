#!/usr/bin/env node
// `palyra-secrets get` against an empty program on the same runtime, in the same run: the ratio is
// the CLI's start-up cost (targets: ≤ 2× on each runtime and for the compiled binary). Beside it, the
// floor: bench/least_get.mjs, the least a get can do on that runtime (written out by hand from
// docs/FORMAT.md), against the same empty program. Runs are interleaved and the median of each is
// kept, because these machines are noisy.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { privateKeyring } from "./keyring.mjs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const bin = (name) => join(root, "node_modules", ".bin", name);
const ROUNDS = Number(process.env.STARTUP_ROUNDS ?? 21);
const work = mkdtempSync(join(tmpdir(), "palyra-startup-"));
const env = {
  ...process.env,
  PALYRA_VAULT_DIR: join(work, "vault"),
  PALYRA_IDENTITY_DIR: join(work, "identity"),
  PALYRA_VAULT_BACKEND: "encrypted_file",
};
writeFileSync(join(work, "empty.ts"), "export {};\n");
writeFileSync(join(work, "empty.mjs"), "export {};\n");

const must = (r, what) => {
  if (r.status !== 0) throw new Error(`${what} failed: ${r.stderr ?? r.error}`);
  return r;
};
// The README's Deno permissions, from `deno task cli`.
const tasks = JSON.parse(readFileSync(join(root, "deno.json"), "utf8")).tasks;
const denoFlags = tasks.cli.split(" deno run ")[1].replace(/ cli\.ts$/, "").split(" ");
const get = ["get", "global", "openai_api_key"];
// The README's offline binary: the flags `deno task compile:bun` gives bun build.
const compileFlags = /\bbun build (.*) cli\.ts /.exec(tasks["compile:bun"])[1].split(" ");
const bunCompile = (entry, out) =>
  must(
    spawnSync(bin("bun"), ["build", ...compileFlags, entry, "--outfile", out], {
      cwd: root,
      encoding: "utf8",
    }),
    out,
  ) &&
  out;
const least = join(root, "bench", "least_get.mjs");
const leastArgs = get.slice(1);
// Each runtime: its empty program, the CLI's get, and the least get (its fourth entry).
const pairs = [
  ["bun", [bin("bun"), join(work, "empty.ts")], [bin("bun"), join(root, "cli.ts"), ...get], [
    bin("bun"),
    least,
    ...leastArgs,
  ]],
  ["deno", [bin("deno"), "run", "-q", join(work, "empty.ts")], [
    bin("deno"),
    "run",
    ...denoFlags,
    join(root, "cli.ts"),
    ...get,
  ], [bin("deno"), "run", "-q", "--allow-read", "--allow-env", least, ...leastArgs]],
  ["node", ["node", join(work, "empty.mjs")], ["node", join(root, "bin", "palyra-secrets.mjs"), ...get], [
    "node",
    least,
    ...leastArgs,
  ]],
  ["binary (bun --compile)", [bunCompile(join(work, "empty.ts"), join(work, "empty-bin"))], [
    bunCompile(join(root, "cli.ts"), join(work, "palyra-secrets")),
    ...get,
  ], [bunCompile(least, join(work, "least-get")), ...leastArgs]],
];
// `run` with one secret, against starting the same program bare (issue: run's overhead).
const child = ["node", join(work, "empty.mjs")];
const runWith = ["run", "--env", "OPENAI_API_KEY=global/openai_api_key", "--", ...child];
pairs.push(
  ["run: binary", child, [join(work, "palyra-secrets"), ...runWith]],
  ["run: node", child, ["node", join(root, "bin", "palyra-secrets.mjs"), ...runWith]],
);
must(
  spawnSync(bin("bun"), [join(root, "cli.ts"), "set", "global", "openai_api_key"], { env, input: "sk-startup-bench" }),
  "seed",
);

/** A private keyring holding one secret: `secret-tool lookup` is what the compiled binary's get is measured against. */
function keyring() {
  const ring = privateKeyring(env);
  if (ring === undefined) return undefined;
  const stored = spawnSync("secret-tool", ["store", "--label=bench", "service", "palyra-bench", "account", "k"], {
    env: ring.env,
    input: "sk-startup-bench",
  });
  if (stored.status === 0) return ring;
  ring.stop();
  return undefined;
}
const ring = keyring();
if (ring) {
  pairs.push([
    "binary vs secret-tool lookup",
    ["secret-tool", "lookup", "service", "palyra-bench", "account", "k"],
    [join(work, "palyra-secrets"), ...get],
    [join(work, "least-get"), ...leastArgs],
    ring.env,
  ]);
}
for (const [, , cli, floor, own] of pairs) {
  must(spawnSync(cli[0], cli.slice(1), { cwd: root, env: own ?? env, encoding: "utf8" }), cli.join(" "));
  if (floor === undefined) continue;
  // The floor reads the same secret, or it measures nothing.
  const reveal = (cmd) =>
    must(spawnSync(cmd[0], [...cmd.slice(1), "--reveal"], { cwd: root, env, encoding: "utf8" }), cmd.join(" ")).stdout;
  if (reveal(floor) !== reveal(cli)) throw new Error(`${floor.join(" ")} read another value than ${cli.join(" ")}`);
}

const times = pairs.map(() => [[], [], []]);
for (let i = 0; i < ROUNDS; i++) {
  pairs.forEach(([, base, cli, floor, own], j) => {
    for (const [k, cmd] of [[0, base], [1, cli], [2, floor]]) {
      if (cmd === undefined) continue;
      const t = process.hrtime.bigint();
      must(
        spawnSync(cmd[0], cmd.slice(1), { cwd: root, env: own ?? env, stdio: ["ignore", "ignore", "pipe"] }),
        cmd.join(" "),
      );
      times[j][k].push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  });
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(
  `\n## CLI start-up: palyra-secrets get vs an empty program; run vs the same program started bare ` +
    `(median of ${ROUNDS} interleaved runs)`,
);
console.log("runtime                   empty ms   get ms   ratio (target ≤ 2)   least get ms   floor ratio");
pairs.forEach(([name, , , floor, own], j) => {
  const [e, g, l] = times[j].map(median);
  if (own !== undefined) {
    console.log(
      `compiled binary get ${g.toFixed(1)} ms vs secret-tool lookup ${e.toFixed(1)} ms: x${
        (g / e).toFixed(2)
      } (target < 1); the least get compiled: ${l.toFixed(1)} ms, x${(l / e).toFixed(2)}`,
    );
  } else {
    const floorColumns = floor === undefined ? "" : `${l.toFixed(1).padStart(21)}   x${(l / e).toFixed(2)}`;
    console.log(
      `${name.padEnd(24)} ${e.toFixed(1).padStart(9)} ${g.toFixed(1).padStart(8)}   x${
        (g / e).toFixed(2)
      }${floorColumns}`,
    );
  }
});
ring?.stop();
