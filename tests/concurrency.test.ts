/**
 * Several processes of all three runtimes writing one vault at once (docs/FORMAT.md
 * §5.3–§5.4; README, "Threat model"), with and without random SIGKILLs.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { migrateVault, Vault } from "../src/vault.ts";
import { checkVault } from "../src/fsck.ts";
import { rekeyVault } from "../src/rekey.ts";
import { hex, ROOT, runScript, RUNTIME_NAMES, RUNTIMES, tempDir, testKek } from "./helpers.ts";

const KEK = testKek(9);
const SCOPES = ["global", "ws:shared", "pr:p1"];

interface Worker {
  kill(): void;
  done: Promise<{
    code: number | null;
    signal: string | null;
    acked: Map<string, string>;
    /** The worker's other lines: its refusals ("err …") and read-backs ("read …"), with "reopen". */
    other: string[];
    stderr: string;
  }>;
}

function startWorker(
  runtime: (typeof RUNTIME_NAMES)[number],
  root: string,
  id: number,
  count: number,
  startAt: number,
  scopes: readonly string[] = SCOPES,
  layout: "scoped" | "palyra" = "scoped",
  onError: "throw" | "reopen" = "throw",
) {
  const argv = [
    ...RUNTIMES[runtime](join(ROOT, "tests/workers/vault_worker.ts")),
    "put",
    root,
    String(id),
    String(count),
    scopes.join(","),
    String(startAt),
    "encrypted_file",
    layout,
    onError,
  ];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (c: Uint8Array) => (out += new TextDecoder().decode(c)));
  child.stderr.on("data", (c: Uint8Array) => (err += new TextDecoder().decode(c)));
  child.stdin.on("error", () => {});
  child.stdin.end(hex(KEK) + "\n"); // the key travels on stdin, never in argv
  const worker: Worker = {
    kill: () => child.kill("SIGKILL"),
    done: new Promise((resolve) => {
      child.on("close", (code, signal) => {
        const acked = new Map<string, string>();
        const other: string[] = [];
        for (const line of out.split("\n")) {
          const m = /^ok (\S+) (\S+) ([0-9a-f]+)$/.exec(line);
          if (m) acked.set(`${m[1]}/${m[2]}`, m[3]!);
          else if (/^(err|read) /.test(line)) other.push(line);
        }
        resolve({ code, signal, acked, other, stderr: err });
      });
    }),
  };
  return worker;
}

/** Every acknowledged put reads back exactly; the vault lists consistently. */
async function verify(root: string, acked: Map<string, string>, kek = KEK): Promise<Vault> {
  const vault = await Vault.open({ root, kek, backend: "encrypted_file", lockTimeoutMs: 5_000 });
  for (const [ref, value] of acked) {
    using got = await vault.resolve(ref);
    assert.equal(hex(got.bytes), value, ref);
  }
  const listed = await vault.listSecrets();
  const seen = new Set<string>();
  for (const m of listed) {
    const ref = `${m.scope}/${m.key}`;
    assert.ok(!seen.has(ref), `listed twice: ${ref}`);
    seen.add(ref);
    using got = await vault.resolve(ref); // every listed entry has a readable object
    assert.equal(got.length, m.valueBytes, ref);
  }
  for (const ref of acked.keys()) assert.ok(seen.has(ref), `acknowledged but not listed: ${ref}`);
  return vault;
}

describe("multi-process", () => {
  test("8 processes mixing Deno, Bun and Node, 200 puts each into shared scopes: every put present", async () => {
    const root = join(tempDir("mp"), "vault");
    const startAt = Date.now() + 3_000;
    const workers = Array.from({ length: 8 }, (_, i) => startWorker(RUNTIME_NAMES[i % 3]!, root, i, 200, startAt));
    const results = await Promise.all(workers.map((w) => w.done));
    const all = new Map<string, string>();
    for (const r of results) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.acked.size, 200);
      for (const [k, v] of r.acked) all.set(k, v);
    }
    assert.equal(all.size, 1600);
    const vault = await verify(root, all);
    assert.equal((await vault.listSecrets()).length, 1600);
  });

  test("4 processes mixing Deno, Bun and Node write one vault in Palyra's layout: every put present", async () => {
    const root = join(tempDir("mp-palyra"), "vault");
    const scopes = ["global", "principal:p1", "channel:slack:T1:U2", "skill:s"];
    const startAt = Date.now() + 3_000;
    const runtimes = [...RUNTIME_NAMES, RUNTIME_NAMES[0]!];
    const workers = runtimes.map((rt, i) => startWorker(rt, root, i, 30, startAt, scopes, "palyra"));
    const results = await Promise.all(workers.map((w) => w.done));
    const all = new Map<string, string>();
    for (const r of results) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.acked.size, 30);
      for (const [k, v] of r.acked) all.set(k, v);
    }
    const vault = await verify(root, all);
    assert.equal(vault.layout, "palyra");
    assert.equal((await vault.listSecrets()).length, 120);
    assert.deepEqual(readdirSync(root).sort(), ["backend.kind", "metadata.json", "objects"], "no lock or scopes/ left");
    assert.deepEqual(readdirSync(join(root, "objects")), ["objects.store.json"]);
  });

  test("writers of all three runtimes while another process migrates the vault back and forth: nothing acknowledged is lost, every refusal is a conflict", async () => {
    const root = join(tempDir("mp-migrate"), "vault");
    const seed = await Vault.open({ root, kek: KEK, backend: "encrypted_file" });
    await seed.putSecret("global", "seed", "s");
    seed.close();
    const startAt = Date.now() + 3_000;
    const workers = RUNTIME_NAMES.map((rt, i) =>
      startWorker(rt, root, i, 40, startAt, ["global", "principal:p1"], "scoped", "reopen")
    );
    let running = workers.length;
    const results = Promise.all(workers.map((w) => w.done.finally(() => running--)));
    await new Promise((r) => setTimeout(r, startAt - Date.now()));
    // Migrations back and forth for as long as the writers run (this process is the other one), at most 16.
    let migrations = 0;
    while ((running > 0 || migrations < 2) && migrations < 16) {
      await migrateVault({ root, kek: KEK, to: migrations % 2 === 0 ? "palyra" : "scoped" });
      migrations++;
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 60));
    }
    const all = new Map<string, string>([["global/seed", hex(new TextEncoder().encode("s"))]]);
    for (const r of await results) {
      assert.equal(r.code, 0, r.stderr);
      for (const [k, v] of r.acked) all.set(k, v);
      for (const line of r.other) {
        // A refused put, or a read through a handle the migration left behind: a conflict that says to open again.
        if (line === "read ok") continue;
        assert.match(line, /^(err|read) conflict /, line);
      }
    }
    assert.ok(all.size > 1, "some puts were acknowledged");
    const vault = await verify(root, all);
    assert.equal((await vault.listSecrets()).length, all.size, "nothing but what was acknowledged");
    vault.close();
  });

  test("a reader listing a scope while another process writes into it: every list succeeds and only grows", async () => {
    // Readers take no lock; the writer appends to the scope's metadata.log under them. A read of the log that a
    // record landed in between its stat and its read used to fail as "corrupt: larger than 64 MiB".
    const root = join(tempDir("mp-list"), "vault");
    const reader = await Vault.open({ root, kek: KEK, backend: "encrypted_file" });
    await reader.putSecret("global", "seed", "s");
    const writer = startWorker(RUNTIME_NAMES[1]!, root, 0, 300, Date.now() + 1_000, ["global"]);
    let finished = false;
    const done = writer.done.finally(() => (finished = true));
    let lists = 0;
    let seen = 0;
    while (!finished) {
      await new Promise((r) => setTimeout(r, 0)); // let the worker's pipes and exit through
      const listed = await reader.listSecrets("global");
      assert.ok(listed.length >= seen, "a later list never holds fewer secrets");
      seen = listed.length;
      lists++;
    }
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await reader.listSecrets("global")).length, 301);
    assert.ok(lists > 0);
    reader.close();
  });

  test("a reader getting secrets while another process keeps replacing them: every get answers with a value a writer wrote", async () => {
    // Each replacement renames a new object over the old one. On Deno, whose open cannot refuse a link itself, a
    // read that looked at the old file and opened the new one took the difference for a link swapped in, and the
    // get failed with "permission: … is a symbolic link".
    const base = tempDir("mp-replace");
    const root = join(base, "vault");
    const identityRoot = join(base, "identity");
    const reader = await Vault.open({ root, identityRoot });
    for (let i = 0; i < 3; i++) await reader.putSecret("global", `k${i}`, `value-${i}`);
    const startAt = Date.now() + 1_500;
    const until = startAt + 3_000;
    const writer = runScript(RUNTIME_NAMES[1]!, "tests/workers/vault_worker.ts", [
      "rotate",
      root,
      identityRoot,
      "3",
      `${startAt}`,
      `${until}`,
    ]);
    await new Promise((r) => setTimeout(r, startAt - Date.now()));
    let reads = 0;
    const wrong: string[] = [];
    while (Date.now() < until) {
      if (reads % 100 === 0) await new Promise((r) => setTimeout(r, 0)); // let the worker's pipes through
      try {
        // Not `using`: on Node, tsx lowers it so that one failure in this loop would be thrown again by every later read.
        const value = await reader.getSecret("global", `k${reads % 3}`);
        const text = value.text();
        value[Symbol.dispose]();
        if (!/^value-\d+$/.test(text)) wrong.push(`k${reads % 3} holds a value no writer wrote`);
      } catch (e) {
        wrong.push(String(e));
      }
      reads++;
    }
    const w = await writer;
    assert.equal(w.code, 0, w.stderr);
    const puts = Number(/^rotated (\d+)$/m.exec(new TextDecoder().decode(w.stdout))?.[1]);
    assert.ok(puts >= 20 && reads >= 100, `too few replacements (${puts}) or reads (${reads}) to tell`);
    assert.deepEqual(wrong.slice(0, 3), [], `${wrong.length} of ${reads} reads during ${puts} replacements were wrong`);
    reader.close();
  });

  test("fsck --repair over and over beside writers of all three runtimes: nothing lost, and it reports only what it did", async () => {
    // fsck looks without a lock: a put or its temporary files in flight used to be reported (and "repaired") as an
    // orphan object, or as a leftover that a repair did nothing about.
    const root = join(tempDir("mp-fsck"), "vault");
    const vault = await Vault.open({ root, kek: KEK, backend: "encrypted_file" });
    await vault.putSecret("global", "seed", "s");
    const startAt = Date.now() + 2_000;
    const workers = RUNTIME_NAMES.map((rt, i) => startWorker(rt, root, i, 100, startAt));
    let running = workers.length;
    const results = Promise.all(workers.map((w) => w.done.finally(() => running--)));
    await new Promise((r) => setTimeout(r, startAt - Date.now()));
    let checks = 0;
    while (running > 0) {
      const report = await checkVault(vault, { repair: true });
      for (const f of report.findings) {
        // A young temporary file of a write still running is listed and left; nothing else is wrong here.
        assert.equal(`${f.code} ${f.repair}`, "leftover left", `${f.code} ${f.repair} ${f.path}: ${f.message}`);
      }
      checks++;
      await new Promise((r) => setTimeout(r, 0));
    }
    const all = new Map<string, string>([["global/seed", hex(new TextEncoder().encode("s"))]]);
    for (const r of await results) {
      assert.equal(r.code, 0, r.stderr);
      for (const [k, v] of r.acked) all.set(k, v);
    }
    assert.ok(checks > 0);
    assert.equal(all.size, 301);
    const after = await verify(root, all);
    assert.equal((await after.listSecrets()).length, 301);
    assert.deepEqual((await checkVault(after)).findings, []);
    after.close();
    vault.close();
  });

  test("writers of all three runtimes that keep the old key while another process re-keys the vault: every acknowledged put opens with the new key", async () => {
    // A writer that still holds the old key used to go on sealing under it after the re-key had passed its scope:
    // secrets the new key cannot open, lost once the old key is thrown away.
    const root = join(tempDir("mp-rekey"), "vault");
    const vault = await Vault.open({ root, kek: KEK, backend: "encrypted_file" });
    await vault.putSecret("global", "seed", "s");
    const startAt = Date.now() + 2_000;
    const workers = RUNTIME_NAMES.map((rt, i) => startWorker(rt, root, i, 120, startAt, SCOPES, "scoped", "reopen"));
    let running = workers.length;
    const results = Promise.all(workers.map((w) => w.done.finally(() => running--)));
    // Re-key once the writers are well under way (this process is the other one).
    while (running > 0 && (await vault.listSecrets()).length < 40) await new Promise((r) => setTimeout(r, 5));
    assert.ok(running > 0, "the writers were still running when the re-key began");
    const newKek = testKek(10);
    await rekeyVault(vault, { toKek: newKek });
    const all = new Map<string, string>([["global/seed", hex(new TextEncoder().encode("s"))]]);
    let refused = 0;
    for (const r of await results) {
      assert.equal(r.code, 0, r.stderr);
      for (const [k, v] of r.acked) all.set(k, v);
      for (const line of r.other) {
        // A put refused for its key; a read-back of a secret the re-key had already moved to the new key.
        if (line === "read ok" || /^read crypto /.test(line)) continue;
        assert.match(line, /^err identity .*kek_id/, line);
        refused++;
      }
    }
    const after = await verify(root, all, newKek);
    assert.equal((await after.listSecrets()).length, all.size, "nothing but what was acknowledged");
    assert.ok(refused > 0, "some puts came after the re-key");
    assert.deepEqual((await checkVault(after)).findings, []);
    after.close();
    vault.close();
  });

  test("writers SIGKILLed at random: acknowledged puts survive, no lock blocks the next writer", async () => {
    const root = join(tempDir("crash"), "vault");
    const all = new Map<string, string>();
    let killed = 0;
    for (let round = 0; round < 2; round++) {
      const startAt = Date.now() + 3_000;
      const workers = Array.from(
        { length: 8 },
        (_, i) => startWorker(RUNTIME_NAMES[(i + round) % 3]!, root, round * 10 + i, 1_000, startAt),
      );
      const timers = workers.map((w) => setTimeout(() => w.kill(), startAt - Date.now() + 100 + Math.random() * 1_500));
      const results = await Promise.all(workers.map((w) => w.done));
      timers.forEach(clearTimeout);
      for (const r of results) {
        if (r.signal === "SIGKILL") killed++;
        else assert.equal(r.code, 0, r.stderr);
        for (const [k, v] of r.acked) all.set(k, v);
      }
      assert.ok(all.size > 0, "some puts were acknowledged before the kills");
    }
    assert.ok(killed >= 8, `expected most writers to be killed, got ${killed}`);
    const vault = await verify(root, all);
    // A new writer in every scope gets the lock promptly, whatever the dead left behind.
    for (const scope of SCOPES) await vault.putSecret(scope, "after.crash", "x");
    const leftovers = readdirSync(join(root, "scopes")).flatMap((d) => readdirSync(join(root, "scopes", d)))
      .filter((f) => f === ".metadata.lock");
    assert.deepEqual(leftovers, [], "no lock held after the new writes");
  });
});
