/**
 * Several processes on three runtimes, as three devices, writing into one
 * PostgreSQL store at once (README, "PostgreSQL store"): every acknowledged
 * put is readable by every device afterwards, and no version of a key is lost
 * or given twice.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Vault } from "../src/vault.ts";
import { rejectsWith, runScript, RUNTIME_NAMES, tempDir } from "./helpers.ts";
import { postgresServer } from "./postgres_server.ts";

const opened: Vault[] = [];
after(() => {
  for (const v of opened) v.close();
});

const PUTS = 200;

test("6 processes on Deno, Bun and Node, as 3 devices, 200 puts each: nothing lost, no version twice", async () => {
  const pg = await postgresServer();
  const url = await pg.database();
  const dir = tempDir("pg-fleet");
  const devices: Vault[] = [];
  for (let d = 0; d < 3; d++) {
    const vault = await Vault.open({ store: url, identityRoot: join(dir, `device${d}`), keepVersions: 100_000 });
    opened.push(vault);
    devices.push(vault);
  }
  // Not members yet: told so, whatever they ask.
  await rejectsWith(() => devices[1]!.getSecret("global", "x"), "permission", /not a member/);
  await rejectsWith(() => devices[2]!.listSecrets(), "permission", /not a member/);
  for (const d of devices.slice(1)) await devices[0]!.addDevice(d.device!.recipient);
  // Processes 0..5 run on deno, bun, node, deno, bun, node; process i is device ⌊i/2⌋, so each device
  // writes from two runtimes at once.
  const results = await Promise.all(
    Array.from({ length: 6 }, (_, i) =>
      runScript(RUNTIME_NAMES[i % 3]!, "tests/workers/pg_writer.ts", [
        url,
        join(dir, `device${Math.floor(i / 2)}`),
        String(i),
        String(PUTS),
      ], { timeoutMs: 300_000 })),
  );
  const acknowledged: { scope: string; key: string; version: number; value: string }[] = [];
  for (const [i, r] of results.entries()) {
    assert.equal(r.code, 0, `writer ${i} (${RUNTIME_NAMES[i % 3]}): ${r.stderr}`);
    const lines = new TextDecoder().decode(r.stdout).trim().split("\n");
    assert.equal(lines.length, PUTS, `writer ${i} acknowledged every put`);
    for (const line of lines) acknowledged.push(JSON.parse(line));
  }
  // Per key: the versions handed out are exactly 1..n, each once.
  const byKey = new Map<string, number[]>();
  for (const a of acknowledged) {
    byKey.set(`${a.scope}/${a.key}`, [...(byKey.get(`${a.scope}/${a.key}`) ?? []), a.version]);
  }
  for (const [key, versions] of byKey) {
    const sorted = versions.slice().sort((x, y) => x - y);
    assert.deepEqual(sorted, sorted.map((_, i) => i + 1), `versions of ${key}`);
  }
  assert.equal(byKey.get("ws:fleet/shared.1")?.length, 6 * 20, "every writer wrote the shared keys");
  // Every device reads every acknowledged version, and the live value is the last one.
  for (const device of devices) {
    for (const a of acknowledged) {
      using v = await device.getSecret(a.scope, a.key, { version: a.version });
      assert.equal(v.text(), a.value, `${a.scope}/${a.key} v${a.version}`);
    }
    for (const [key, versions] of byKey) {
      const [scope, name] = key.split("/") as [string, string];
      const last = acknowledged.find((a) => a.scope === scope && a.key === name && a.version === versions.length)!;
      using live = await device.getSecret(scope, name);
      assert.equal(live.text(), last.value, `live ${key}`);
    }
  }
  const listed = await devices[2]!.listSecrets();
  assert.equal(listed.length, byKey.size);
});
