/**
 * PostgreSQL store benchmark, run by `npm run bench` (scripts/bench.mjs):
 *
 *   server               start one private PostgreSQL server (tests/postgres_server.ts), make a
 *                        database for each runtime and one for the writer scaling, print their URLs
 *                        as a JSON line, and stop the server when stdin closes (or on a signal)
 *   compare <url>        put/s and get/s of the PostgreSQL store at <url> and of the file store
 *                        (encrypted_file in a temporary folder) in the same process, as one device
 *   scale <url>          total put/s of 1, 2, 4 and 8 writer processes of this runtime, each its own
 *                        Vault on <url> as the same device, writing distinct keys into one scope for
 *                        WINDOW_MS after a common start signal
 *   writer <url> <identity> <index> <scope> <windowMs>
 *                        one of those writers: opens, says it is ready, waits for "go" on stdin
 *
 * Prints one JSON line per figure (ops/s); scripts/bench.mjs turns them into ratios, because these
 * machines are too noisy for absolute times to mean much.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Vault } from "../src/vault.ts";
import { runtimeName } from "../src/platform/runtime.ts";
import { RUNTIMES } from "../tests/helpers.ts";
import { postgresServer } from "../tests/postgres_server.ts";

const VALUE = "sk-bench-0123456789abcdefghijklmnopqrstu"; // 40 bytes, a typical API key
const PUTS = 300;
const GETS = 1000;
/** Each store's share of one measure stops after this long, whatever the count. */
const BUDGET_MS = 10_000;
/** Rounds alternate the two stores, so drift on a noisy machine falls on both alike. */
const PUT_ROUND = 50;
const GET_ROUND = 125;
const WARMUP = { puts: 20, gets: 50 };
const WRITERS = [1, 2, 4, 8];
const WINDOW_MS = 4000;
const SCOPE = "ws:bench";

const runtime = runtimeName();
const emit = (o: Record<string, unknown>) => console.log(JSON.stringify({ runtime, ...o }));
const scriptPath = fileURLToPath(import.meta.url);

function scratch(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `palyra-pg-bench-${label}-`));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Tally {
  ops: number;
  ms: number;
}

/**
 * Runs `op(store, i)` on both stores in alternating rounds of `round` operations until each has done
 * `count` or spent BUDGET_MS; returns each store's ops/s and count.
 */
async function alternate(
  stores: Record<"pg" | "file", Vault>,
  op: (vault: Vault, i: number) => Promise<unknown>,
  count: number,
  round: number,
): Promise<Record<"pg" | "file", Tally & { opsPerSec: number }>> {
  const tally: Record<"pg" | "file", Tally> = { pg: { ops: 0, ms: 0 }, file: { ops: 0, ms: 0 } };
  const done = (t: Tally) => t.ops >= count || t.ms >= BUDGET_MS;
  while (!done(tally.pg) || !done(tally.file)) {
    for (const name of ["file", "pg"] as const) {
      const t = tally[name];
      if (done(t)) continue;
      const t0 = performance.now();
      for (let n = 0; n < round && t.ops < count; n++) await op(stores[name], t.ops++);
      t.ms += performance.now() - t0;
    }
  }
  const rate = (t: Tally) => ({ ...t, opsPerSec: (t.ops * 1000) / t.ms });
  return { pg: rate(tally.pg), file: rate(tally.file) };
}

async function compare(url: string): Promise<void> {
  const dir = scratch("compare");
  const identityRoot = join(dir, "identity");
  // The same device on both: the file store's KEK and the PostgreSQL store's age identity come from it.
  const file = await Vault.open({ root: join(dir, "vault"), identityRoot, backend: "encrypted_file" });
  const pg = await Vault.open({ store: url, identityRoot });
  const stores = { pg, file };
  try {
    for (const vault of [file, pg]) {
      for (let i = 0; i < WARMUP.puts; i++) await vault.putSecret(SCOPE, `warm.${i}`, VALUE);
      for (let i = 0; i < WARMUP.gets; i++) (await vault.getSecret(SCOPE, `warm.${i % WARMUP.puts}`)).dispose();
    }
    const put = await alternate(stores, (vault, i) => vault.putSecret(SCOPE, `key.${i}`, VALUE), PUTS, PUT_ROUND);
    const written = Math.min(put.pg.ops, put.file.ops);
    const get = await alternate(
      stores,
      async (vault, i) => {
        using s = await vault.getSecret(SCOPE, `key.${(i * 7919) % written}`);
        return s.length;
      },
      GETS,
      GET_ROUND,
    );
    for (const [op, r] of [["put", put], ["get", get]] as const) {
      emit({
        op,
        pg: r.pg.opsPerSec,
        file: r.file.opsPerSec,
        pgOps: r.pg.ops,
        fileOps: r.file.ops,
        valueBytes: VALUE.length,
      });
    }
  } finally {
    pg.close();
    file.close();
  }
}

/** The JSON lines a child prints, one at a time. */
function lines(child: ChildProcess): AsyncIterator<string> {
  return createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
}

async function nextJson(it: AsyncIterator<string>, what: string, timeoutMs: number): Promise<Record<string, unknown>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    for (;;) {
      const r = await Promise.race([it.next(), timeout]);
      if (r.done) throw new Error(`${what}: exited without answering`);
      if (r.value.startsWith("{")) return JSON.parse(r.value);
    }
  } finally {
    clearTimeout(timer);
  }
}

async function scale(url: string): Promise<void> {
  const dir = scratch("scale");
  const identityRoot = join(dir, "identity");
  // Made once here: the identity, and the vault in the database with this device as its member.
  const first = await Vault.open({ store: url, identityRoot });
  await first.putSecret(SCOPE, "made", VALUE);
  first.close();

  const live = new Set<ChildProcess>();
  const killAll = () => {
    for (const c of live) c.kill("SIGKILL");
  };
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => process.exit(130));
  }
  const [cmd, ...args] = RUNTIMES[runtime](scriptPath);
  for (const n of WRITERS) {
    const scope = `ws:scale${n}`;
    const children = Array.from({ length: n }, (_, i) => {
      const child = spawn(cmd!, [...args, "writer", url, identityRoot, String(i), scope, String(WINDOW_MS)], {
        stdio: ["pipe", "pipe", "inherit"],
      });
      live.add(child);
      child.on("exit", () => live.delete(child));
      child.stdin!.on("error", () => {});
      return { child, out: lines(child) };
    });
    try {
      await Promise.all(children.map((c, i) => nextJson(c.out, `writer ${i} of ${n} starting`, 60_000)));
      for (const c of children) c.child.stdin!.end("go\n");
      const results = await Promise.all(
        children.map((c, i) => nextJson(c.out, `writer ${i} of ${n}`, WINDOW_MS + 60_000)),
      );
      await Promise.all(children.map((c) => c.child.exitCode === null ? new Promise((r) => c.child.on("exit", r)) : 0));
      const puts = results.reduce((s, r) => s + Number(r.puts), 0);
      // Over the longest writer's window: a put that outlasts the window counts, and so does its time.
      const seconds = Math.max(...results.map((r) => Number(r.ms))) / 1000;
      const perWriter = results.map((r) => Number(r.puts));
      emit({ op: "writers", writers: n, puts, seconds, putsPerSec: puts / seconds, perWriter });
    } catch (e) {
      killAll();
      throw e;
    }
  }
}

async function writer(url: string, identityRoot: string, index: string, scope: string, windowMs: number) {
  const vault = await Vault.open({ store: url, identityRoot });
  try {
    await vault.putSecret(scope, `w${index}.warm`, VALUE); // connection made, vault key loaded
    const go = new Promise<boolean>((resolve) => {
      let text = "";
      process.stdin.on("data", (c: Uint8Array | string) => {
        text += typeof c === "string" ? c : new TextDecoder().decode(c);
        if (text.includes("go")) resolve(true);
      });
      process.stdin.on("end", () => resolve(text.includes("go")));
    });
    console.log(JSON.stringify({ ready: Number(index) }));
    if (!(await go)) return; // the coordinator went away before the start
    const t0 = performance.now();
    let puts = 0;
    while (performance.now() - t0 < windowMs) await vault.putSecret(scope, `w${index}.k${puts++}`, VALUE);
    console.log(JSON.stringify({ puts, ms: performance.now() - t0 }));
  } finally {
    vault.close();
    process.stdin.destroy();
  }
}

async function server(): Promise<void> {
  const pg = await postgresServer();
  // The server's supervisor stops it when this process ends, however it ends.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => process.exit(130));
  const databases: Record<string, string> = {};
  for (const name of ["deno", "bun", "node", "scale"]) databases[name] = await pg.database();
  console.log(JSON.stringify({ op: "server", databases }));
  process.stdin.on("data", () => {});
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === "server") await server();
else if (mode === "compare" && rest[0]) await compare(rest[0]);
else if (mode === "scale" && rest[0]) await scale(rest[0]);
else if (mode === "writer" && rest.length === 5) {
  const [url, identityRoot, index, scope, windowMs] = rest as [string, string, string, string, string];
  await writer(url, identityRoot, index, scope, Number(windowMs));
} else {
  console.error(
    "usage: postgres_bench.ts server | compare <url> | scale <url> | writer <url> <identity> <i> <scope> <ms>",
  );
  process.exit(2);
}
