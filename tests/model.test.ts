/**
 * The vault against a model: random sequences of what programs do to one vault
 * folder through several handles (puts, gets, deletes and lists, some of them
 * at once; handles opened early, closed and opened again; rekey, migration
 * between the two layouts, fsck), checked against a plain map of what was
 * stored. Every answer must be the map's, and every error one that the
 * situation calls for, with its code: a handle never answers "not set" or
 * lists nothing where the vault holds a secret, and loses nothing. This
 * property found that a handle opened before its vault existed never saw it
 * (tests/handles.test.ts has the cases with the CLI as the other process).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { migrateVault, Vault } from "../src/vault.ts";
import { rekeyVault } from "../src/rekey.ts";
import { checkVault } from "../src/fsck.ts";
import { VaultError } from "../src/errors.ts";
import { hex, tempDir, testKek } from "./helpers.ts";

type Layout = "scoped" | "palyra";
const HANDLES = 3;
// Scopes both layouts hold, and two (ws:, pr:) that only the scoped layout holds.
const SCOPES = ["global", "principal:alice", "channel:slack:T01:U02", "skill:日本語", "ws:acme", "pr:x"];
const KEYS = ["k1", "k2", "k3", "a.b", "z_9", "x-y"];
const onlyScoped = (scope: string) => scope.startsWith("ws:") || scope.startsWith("pr:");
const MAX = 65_536;

type Op =
  | { op: "put"; h: number; s: string; k: string; v: Uint8Array | string; overwrite?: boolean }
  | { op: "get"; h: number; s: string; k: string }
  | { op: "delete"; h: number; s: string; k: string }
  | { op: "list"; h: number; s?: string }
  | { op: "burst"; puts: { h: number; s: string; k: string; v: Uint8Array }[]; lh: number }
  | { op: "reopen"; h: number; engine: "noble" | "webcrypto" }
  | { op: "rekey"; h: number; fill: number }
  | { op: "migrate"; to: Layout; closeHandles: boolean }
  | { op: "fsck"; h: number };

const h = fc.nat(HANDLES - 1);
const s = fc.constantFrom(...SCOPES);
const k = fc.constantFrom(...KEYS);
const value = fc.oneof(
  { weight: 8, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 64 }) },
  { weight: 1, arbitrary: fc.constantFrom(MAX - 1, MAX, MAX + 1).map((n) => new Uint8Array(n).fill(n & 0xff)) },
  { weight: 2, arbitrary: fc.string({ maxLength: 10 }) },
);
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({ op: fc.constant("put"), h, s, k, v: value, overwrite: fc.boolean() }, {
      requiredKeys: ["op", "h", "s", "k", "v"],
    }),
  },
  { weight: 5, arbitrary: fc.record({ op: fc.constant("get"), h, s, k }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("delete"), h, s, k }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("list"), h, s }, { requiredKeys: ["op", "h"] }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("burst"),
      puts: fc.uniqueArray(fc.record({ h, s, k, v: fc.uint8Array({ minLength: 1, maxLength: 40 }) }), {
        minLength: 2,
        maxLength: 6,
        selector: (p) => `${p.s}/${p.k}`,
      }),
      lh: h,
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("reopen"), h, engine: fc.constantFrom("noble", "webcrypto") }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("rekey"), h, fill: fc.integer({ min: 1, max: 250 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("migrate"),
      to: fc.constantFrom("scoped", "palyra"),
      closeHandles: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("fsck"), h }) },
) as fc.Arbitrary<Op>;

const bytesOf = (v: Uint8Array | string) => (typeof v === "string" ? new TextEncoder().encode(v) : v);

/** Expects `fn` to fail with one of `codes`; returns the code, or `undefined` when it succeeded. */
async function outcome<T>(fn: () => Promise<T>, allowed: readonly string[]): Promise<{ ok: T } | { code: string }> {
  try {
    return { ok: await fn() };
  } catch (e) {
    assert.ok(e instanceof VaultError, `expected a VaultError, got ${String(e)}`);
    assert.ok(allowed.includes(e.code), `unexpected ${e.code}: ${e.message}`);
    return { code: e.code };
  }
}

/** Runs `ops` on a fresh folder and checks every answer against the model. */
async function check(dir: string, layout0: Layout, ops: Op[]): Promise<void> {
  const root = join(dir, "vault");
  let kek = testKek(200);
  let layout: Layout = layout0;
  let created = false;
  const model = new Map<string, Uint8Array>();
  const handles: (Vault | undefined)[] = new Array(HANDLES).fill(undefined);
  const open = async (i: number, engine: "noble" | "webcrypto" = "noble") => {
    handles[i]?.close();
    // The layout is asked for only while there is no vault: an open of an existing one takes its own.
    handles[i] = await Vault.open({
      root,
      kek,
      backend: "encrypted_file",
      kekEngine: engine,
      ...(created ? {} : { layout: layout0 }),
    });
    return handles[i]!;
  };
  const handle = async (i: number) => handles[i] ?? (await open(i));
  const closeAll = () => handles.forEach((v, i) => (v?.close(), (handles[i] = undefined)));
  // What a handle may answer besides the model's answer: `not_found` before the vault exists, and `conflict`
  // when another handle migrated the vault since this one took its layout.
  const excuses = (
    v: Vault,
  ) => [...(created ? [] : ["not_found"]), ...(created && v.layout !== layout ? ["conflict"] : [])];
  const keysNow = () => [...model.keys()].sort();

  for (const o of ops) {
    if (o.op === "put") {
      const v = await handle(o.h);
      const bytes = bytesOf(o.v);
      const current = model.get(`${o.s}/${o.k}`);
      const refusal = layout === "palyra" && onlyScoped(o.s)
        ? "invalid_scope"
        : bytes.length > MAX
        ? "value_too_large"
        : o.overwrite === false && current !== undefined && hex(current) !== hex(bytes)
        ? "conflict"
        : undefined;
      const options = o.overwrite === undefined ? {} : { overwrite: o.overwrite };
      const r = await outcome(() => v.putSecret(o.s, o.k, o.v, options), [
        ...(refusal ? [refusal] : []),
        ...excuses(v).filter((c) => c !== "not_found"),
      ]);
      if ("ok" in r) {
        assert.equal(refusal, undefined, `put ${o.s}/${o.k} succeeded where ${refusal} was due`);
        model.set(`${o.s}/${o.k}`, bytes.slice());
        created = true;
      }
    } else if (o.op === "get") {
      const v = await handle(o.h);
      const want = model.get(`${o.s}/${o.k}`);
      const r = await outcome(() => v.getSecret(o.s, o.k), [
        ...(want === undefined ? ["not_found"] : []),
        ...excuses(v),
      ]);
      if ("ok" in r) {
        assert.ok(want !== undefined, `get ${o.s}/${o.k} found a value never stored`);
        assert.equal(hex(r.ok.bytes), hex(want), `get ${o.s}/${o.k}`);
        r.ok.dispose();
      }
    } else if (o.op === "delete") {
      const v = await handle(o.h);
      const r = await outcome(() => v.deleteSecret(o.s, o.k), excuses(v));
      if ("ok" in r) {
        assert.equal(r.ok, model.has(`${o.s}/${o.k}`), `delete ${o.s}/${o.k}`);
        model.delete(`${o.s}/${o.k}`);
      }
    } else if (o.op === "list") {
      const v = await handle(o.h);
      const r = await outcome(() => v.listSecrets(o.s), excuses(v));
      if ("ok" in r) {
        const want = keysNow().filter((ref) => o.s === undefined || ref.startsWith(`${o.s}/`));
        assert.deepEqual(r.ok.map((m) => `${m.scope}/${m.key}`).sort(), want, `list ${o.s ?? "(all)"}`);
      }
    } else if (o.op === "burst") {
      // Puts of different keys at once through several handles, and a list among them.
      const before = keysNow();
      const vaults = await Promise.all(o.puts.map((p) => handle(p.h)));
      const lister = await handle(o.lh);
      const allowed = vaults.map((v, i) => [
        ...(layout === "palyra" && onlyScoped(o.puts[i]!.s) ? ["invalid_scope"] : []),
        ...excuses(v).filter((c) => c !== "not_found"),
      ]);
      const listAllowed = excuses(lister);
      const [listed, ...puts] = await Promise.all([
        outcome(() => lister.listSecrets(), listAllowed),
        ...o.puts.map((p, i) => outcome(() => vaults[i]!.putSecret(p.s, p.k, p.v), allowed[i]!)),
      ]);
      o.puts.forEach((p, i) => {
        if ("ok" in puts[i]!) {
          model.set(`${p.s}/${p.k}`, p.v.slice());
          created = true;
        }
      });
      if ("ok" in listed!) {
        // Each put landed before the list read its scope or after: never a key lost, never one not written.
        const got = listed.ok.map((m) => `${m.scope}/${m.key}`);
        const after = new Set(keysNow());
        for (const ref of before) assert.ok(got.includes(ref), `a list during puts lost ${ref}`);
        for (const ref of got) assert.ok(after.has(ref), `a list during puts saw ${ref}, never stored`);
      }
    } else if (o.op === "reopen") {
      await open(o.h, o.engine);
    } else if (o.op === "rekey") {
      const v = await handle(o.h);
      const next = testKek(o.fill);
      const r = await outcome(
        () => rekeyVault(v, { toKek: next }),
        [...excuses(v), ...(layout === "palyra" ? ["conflict"] : [])],
      );
      if ("ok" in r) {
        assert.equal(layout, "scoped", "a vault in Palyra's layout is not rekeyed");
        kek = next;
        closeAll(); // their KEK is the old one
      }
    } else if (o.op === "migrate") {
      if (o.closeHandles) closeAll();
      const refused = o.to === "palyra" && keysNow().some((ref) => onlyScoped(ref));
      const r = await outcome(
        () => migrateVault({ root, kek, to: o.to }),
        [...(created ? [] : ["not_found"]), ...(refused ? ["invalid_scope"] : [])],
      );
      if ("ok" in r) {
        assert.ok(!refused, "a vault holding ws: or pr: moved to Palyra's layout");
        layout = o.to;
      }
    } else {
      const v = await handle(o.h);
      const r = await outcome(() => checkVault(v), excuses(v));
      if ("ok" in r) {
        assert.deepEqual(r.ok.findings, [], "fsck of a vault no one damaged");
        assert.equal(r.ok.secrets, model.size);
      }
    }
  }
  closeAll();
  if (!created) return;
  // A handle opened now reads exactly the model.
  const fresh = await Vault.open({ root, kek });
  assert.equal(fresh.layout, layout);
  assert.deepEqual((await fresh.listSecrets()).map((m) => `${m.scope}/${m.key}`).sort(), keysNow());
  for (const [ref, want] of model) {
    const got = await fresh.resolve(ref);
    assert.equal(hex(got.bytes), hex(want), ref);
    got.dispose();
  }
  fresh.close();
}

describe("the vault against a model", () => {
  test("random sequences through several handles: every answer is the model's, every error called for", async () => {
    const base = tempDir("model");
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Layout>("scoped", "palyra"),
        fc.array(op, { minLength: 1, maxLength: 40 }),
        (l, ops) => check(join(base, String(n++)), l, ops),
      ),
      { numRuns: 40 },
    );
  });
});
