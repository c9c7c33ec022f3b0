#!/usr/bin/env node
// `npm test`: the whole suite on Deno, Bun and Node, then deno check, doc lint
// (every exported symbol documented), a type check of the JSDoc examples and of
// the README's, lint, fmt --check and publish --dry-run. Prints the test counts per runtime and
// fails if any runtime fails a test or runs none.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const bin = (name) => join(root, "node_modules", ".bin", name);
const files = readdirSync(join(root, "tests")).filter((f) => f.endsWith(".test.ts")).sort().map((f) =>
  join("tests", f)
);
const only = process.argv.slice(2);
// deno-lint-ignore no-control-regex -- ANSI colour codes in runner output
const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, "");

// Hermetic: tests that mean to use a keyring start their own; nothing reaches the user's.
const testEnv = { ...process.env, PALYRA_VAULT_BACKEND: "encrypted_file" };
delete testEnv.DBUS_SESSION_BUS_ADDRESS;
delete testEnv.PALYRA_VAULT_DIR;
delete testEnv.PALYRA_IDENTITY_DIR;
delete testEnv.PALYRA_VAULT_STORE;

function run(label, cmd, args) {
  const t0 = Date.now();
  console.log(`\n=== ${label}: ${[cmd, ...args].join(" ")}`);
  const r = spawnSync(cmd, args, {
    cwd: root,
    env: testEnv,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 256 << 20,
  });
  const out = strip((r.stdout ?? "") + (r.stderr ?? ""));
  return { out, status: r.status, seconds: ((Date.now() - t0) / 1000).toFixed(1) };
}

/** One process per test file, `jobs` at a time; each file's output whole, in the files' order. */
async function runEach(label, cmd, argsFor, jobs) {
  const t0 = Date.now();
  console.log(`\n=== ${label}: ${[cmd, ...argsFor("<file>")].join(" ")} (${jobs} files at a time)`);
  const results = new Array(files.length);
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const i = next++;
      results[i] = await new Promise((resolve) => {
        const child = spawn(cmd, argsFor(files[i]), { cwd: root, env: testEnv, stdio: ["ignore", "pipe", "pipe"] });
        const chunks = [];
        child.stdout.on("data", (c) => chunks.push(c));
        child.stderr.on("data", (c) => chunks.push(c));
        child.on("error", (e) => chunks.push(Buffer.from(`${cmd}: ${e.message}\n`)));
        child.on("close", (status) => resolve({ out: strip(Buffer.concat(chunks).toString("utf8")), status }));
      });
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  return { results, seconds: ((Date.now() - t0) / 1000).toFixed(1) };
}

const runtimes = [
  {
    name: "deno",
    cmd: bin("deno"),
    // Each file in a Deno process of its own, two at a time, as Node runs them: `deno test --parallel` runs files
    // as threads of one process, which share its environment, and a test that sets a variable for a vault it
    // opens would change it under another file's. Type-checked once, with everything else, by `deno check` below.
    each: (file) => ["test", "-A", "--quiet", "--no-check", file],
    count: (o) => {
      // Deno counts node:test describe blocks as tests and the tests in them as steps.
      const m = /(ok|FAILED) \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \((\d+) steps?\))?/.exec(o);
      return m ? { pass: +(m[3] ?? m[2]), fail: +(m[5] ?? m[4]) } : undefined;
    },
  },
  {
    name: "bun",
    cmd: bin("bun"),
    // Two worker processes, each file in a fresh global: Bun's own way to run files side by side.
    args: ["test", "--parallel=2", "--timeout", "300000", ...files.map((f) => "./" + f)],
    count: (o) => {
      const p = /^\s*(\d+) pass$/m.exec(o);
      const f = /^\s*(\d+) fail$/m.exec(o);
      return p ? { pass: +p[1], fail: f ? +f[1] : 0 } : undefined;
    },
  },
  {
    name: "node",
    cmd: "node",
    // Two test files at a time (Node's default on 2 cores is one): each file is a process of its own, and
    // many wait on child processes and servers, so this saves about a sixth of Node's time there. Deno's and
    // Bun's parts do the same (`each`, `--parallel=2`): the three took 15.5 minutes in all one file at a time.
    args: ["--import", "tsx", "--test", "--test-concurrency=2", "--test-reporter=spec", ...files],
    count: (o) => {
      const p = /^ℹ pass (\d+)$/m.exec(o) ?? /^# pass (\d+)$/m.exec(o);
      const f = /^ℹ fail (\d+)$/m.exec(o) ?? /^# fail (\d+)$/m.exec(o);
      return p ? { pass: +p[1], fail: f ? +f[1] : 0 } : undefined;
    },
  },
];

const summary = [];
let failed = false;
for (const rt of runtimes) {
  if (only.length && !only.includes(rt.name)) continue;
  let r;
  let c;
  let ok;
  if (rt.each) {
    const { results, seconds } = await runEach(rt.name, rt.cmd, rt.each, 2);
    const counts = results.map((x) => rt.count(x.out));
    c = counts.every((x) => x !== undefined)
      ? { pass: counts.reduce((n, x) => n + x.pass, 0), fail: counts.reduce((n, x) => n + x.fail, 0) }
      : undefined;
    ok = c !== undefined && c.pass > 0 && c.fail === 0 && results.every((x) => x.status === 0);
    r = { seconds };
    if (!ok) {
      for (const [i, x] of results.entries()) {
        if (x.status !== 0 || counts[i] === undefined) {
          console.log(`--- ${files[i]}\n${x.out.split("\n").slice(-400).join("\n")}`);
        }
      }
    }
  } else {
    r = run(rt.name, rt.cmd, rt.args);
    c = rt.count(r.out);
    ok = r.status === 0 && c !== undefined && c.pass > 0 && c.fail === 0;
    if (!ok) console.log(r.out.split("\n").slice(-400).join("\n"));
  }
  if (!ok) failed = true;
  summary.push(
    `${rt.name}: ${c ? `${c.pass} passed, ${c.fail} failed` : "no test count found"} (${r.seconds} s)${
      ok ? "" : "  <-- FAILED"
    }`,
  );
  console.log(summary.at(-1));
}

const checks = [
  ["deno check", bin("deno"), [
    "check",
    "mod.ts",
    "cli.ts",
    "config.ts",
    "backends.ts",
    "src/",
    "tests/",
    "bench/",
    "scripts/",
  ]],
  ["deno doc --lint", bin("deno"), ["doc", "--lint", "mod.ts", "cli.ts", "config.ts", "backends.ts"]],
  ["deno check --doc", bin("deno"), ["check", "--doc", "mod.ts", "cli.ts", "config.ts", "backends.ts", "src/"]],
  // The README's TypeScript examples, as a user copies them, against the package's types (its `jsr:` and `@palyra/vault`
  // imports resolve to this checkout).
  ["deno check README", bin("deno"), ["check", "--doc-only", "README.md"]],
  ["deno lint", bin("deno"), ["lint"]],
  ["deno fmt --check", bin("deno"), ["fmt", "--check"]],
  ["deno publish --dry-run", bin("deno"), ["publish", "--dry-run", "--allow-dirty"]],
];
if (only.length === 0) {
  for (const [label, cmd, args] of checks) {
    const r = run(label, cmd, args.filter((a) => a !== "cli.ts" || existsSync(join(root, "cli.ts"))));
    const ok = r.status === 0;
    if (!ok) {
      failed = true;
      console.log(r.out.split("\n").slice(-80).join("\n"));
    }
    summary.push(`${label}: ${ok ? "ok" : "FAILED"} (${r.seconds} s)`);
    console.log(summary.at(-1));
  }
}

console.log("\n=== summary");
for (const line of summary) console.log(line);
let pass = 0;
let fail = 0;
for (const line of summary) {
  const m = /: (\d+) passed, (\d+) failed/.exec(line);
  if (m) {
    pass += +m[1];
    fail += +m[2];
  }
}
if (failed && fail === 0) fail = 1; // a failed check or a runtime with no count still fails the run
console.log(`${pass} passed, ${fail} failed`);
process.exit(failed ? 1 : 0);
