/**
 * One suite of vault behaviour, run against every backend (docs/FORMAT.md §5, §8; README, "API").
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Vault } from "../src/vault.ts";
import type { BlobBackend } from "../src/backends/backend.ts";
import { objectId } from "../src/crypto/ids.ts";
import { randomBytes, rejectsWith } from "./helpers.ts";
import type { VaultErrorCode } from "../src/errors.ts";

/** What a backend's setup hands the suite. */
export interface SuiteFixture {
  vault: Vault;
  /** Direct access to the store the vault writes to. */
  backend: BlobBackend;
  /** The same store, opened with another identity. */
  openWithOtherKey(): Promise<Vault>;
  /** How a read by another identity fails. Default: `crypto`, naming the `kek_id`. */
  otherIdentityFails?: { code: VaultErrorCode; message: RegExp };
  /** Asserts that the vault holds nothing. Default: there is not even a vault folder. */
  assertEmpty?(vault: Vault): Promise<void>;
}

const MAX = 64 * 1024;

/** The largest value whose envelope fits the backend (envelope ≈ 4/3 value + ~350 bytes). */
function largestValue(backend: BlobBackend): number {
  const limit = backend.maxPayloadBytes;
  return limit === undefined ? MAX : Math.min(MAX, Math.floor(((limit - 450) * 3) / 4));
}

/** Registers the shared suite for one backend. */
export function vaultSuite(
  name: string,
  setup: () => Promise<SuiteFixture>,
  /**
   * `blobBackend: false`: the store keeps no objects (PostgreSQL), so `backend` is a view into its table;
   * `versions`: its metadata carries a version.
   */
  kind: { blobBackend?: boolean; versions?: boolean } = {},
): void {
  describe(`vault suite: ${name}`, () => {
    test("round trip of values from 0 bytes to maxSecretBytes (or the backend's limit)", async () => {
      const { vault, backend } = await setup();
      const largest = largestValue(backend);
      const sizes = [0, 1, 2, 15, 16, 17, 255, 1000, 4096, 30_000, MAX - 1, MAX].filter((n) => n <= largest);
      if (largest < MAX) sizes.push(largest);
      for (const n of sizes) {
        const v = randomBytes(n);
        const meta = await vault.putSecret("global", `size.${n}`, v);
        assert.equal(meta.valueBytes, n);
        using got = await vault.getSecret("global", `size.${n}`);
        assert.deepEqual(got.bytes, v, `size ${n}`);
      }
    });

    test("maxSecretBytes + 1 is value_too_large and writes nothing", async () => {
      const { vault, backend } = await setup();
      await vault.putSecret("global", "seed", "x");
      const before = await vault.listSecrets();
      await rejectsWith(() => vault.putSecret("global", "too.big", randomBytes(MAX + 1)), "value_too_large", /65537/);
      assert.deepEqual(await vault.listSecrets(), before);
      await rejectsWith(() => backend.get(objectId("global", "too.big")), "not_found");
      await rejectsWith(() => vault.getSecret("global", "too.big"), "not_found");
    });

    test("a value whose envelope exceeds the backend's payload limit is value_too_large and writes nothing", async () => {
      const { vault, backend } = await setup();
      const limit = backend.maxPayloadBytes;
      // Without a backend limit, maxSecretBytes is the only limit (tested above).
      const n = limit === undefined ? MAX + 1 : largestValue(backend) + 600;
      await vault.putSecret("global", "seed", "x");
      await rejectsWith(() => vault.putSecret("global", "over.limit", randomBytes(n)), "value_too_large");
      await rejectsWith(() => backend.get(objectId("global", "over.limit")), "not_found");
      assert.deepEqual((await vault.listSecrets("global")).map((m) => m.key), ["seed"]);
    });

    test("strings are stored as UTF-8, bytes exactly (NUL, invalid UTF-8, trailing newline)", async () => {
      const { vault } = await setup();
      await vault.putSecret("ws:acme", "text", "héllo wörld ✓\n");
      using t = await vault.getSecret("ws:acme", "text");
      assert.equal(t.text(), "héllo wörld ✓\n");
      const raw = new Uint8Array([0, 0xff, 0xfe, 0x0a, 0xc3, 0x28, 0]);
      await vault.putSecret("ws:acme", "raw", raw);
      using r = await vault.getSecret("ws:acme", "raw");
      assert.deepEqual(r.bytes, raw);
    });

    test("the caller's buffer is left alone; a string's UTF-8 copy is not kept", async () => {
      const { vault } = await setup();
      const mine = new Uint8Array([1, 2, 3]);
      await vault.putSecret("global", "mine", mine);
      assert.deepEqual(mine, new Uint8Array([1, 2, 3]));
    });

    test("overwrite keeps created_at and updates updated_at and size", async () => {
      const { vault } = await setup();
      const first = await vault.putSecret("pr:alice", "token", "one");
      await new Promise((r) => setTimeout(r, 5));
      const second = await vault.putSecret("pr:alice", "token", "three");
      assert.equal(second.createdAtUnixMs, first.createdAtUnixMs);
      assert.ok(second.updatedAtUnixMs > first.updatedAtUnixMs);
      assert.equal(second.valueBytes, 5);
      using v = await vault.getSecret("pr:alice", "token");
      assert.equal(v.text(), "three");
      const listed = await vault.listSecrets("pr:alice");
      const { replaced, ...stored } = second;
      assert.equal(replaced, true);
      assert.equal(first.replaced, false);
      assert.deepEqual(listed, [stored]);
    });

    test("delete removes the value and reports whether it existed", async () => {
      const { vault, backend } = await setup();
      await vault.putSecret("ws:acme", "gone", "x");
      await vault.putSecret("ws:acme", "kept", "y");
      assert.equal(await vault.deleteSecret("ws:acme", "gone"), true);
      assert.equal(await vault.deleteSecret("ws:acme", "gone"), false);
      await rejectsWith(() => vault.getSecret("ws:acme", "gone"), "not_found", /"gone".*"ws:acme"/);
      await rejectsWith(() => backend.get(objectId("ws:acme", "gone")), "not_found");
      assert.deepEqual((await vault.listSecrets("ws:acme")).map((m) => m.key), ["kept"]);
      assert.equal(await vault.deleteSecret("ws:never", "x"), false);
    });

    test("list per scope and across scopes, sorted by scope then key", async () => {
      const { vault } = await setup();
      const puts: Array<[string, string]> = [
        ["ws:b", "z"],
        ["global", "m"],
        ["ws:b", "a"],
        ["pr:日本", "k"],
        ["GLOBAL", "a"],
        ["ws:a", "q"],
      ];
      for (const [s, k] of puts) await vault.putSecret(s, k, `${s}/${k}`);
      const all = await vault.listSecrets();
      assert.deepEqual(all.map((m) => `${m.scope}/${m.key}`), [
        "global/a",
        "global/m",
        "pr:日本/k",
        "ws:a/q",
        "ws:b/a",
        "ws:b/z",
      ]);
      assert.deepEqual((await vault.listSecrets("ws:b")).map((m) => m.key), ["a", "z"]);
      assert.deepEqual(await vault.listSecrets({ kind: "workspace", id: "nothing-here" }), []);
      // Metadata only, never a value; a store that keeps versions names the version too.
      const fields = [
        "createdAtUnixMs",
        "key",
        "scope",
        "updatedAtUnixMs",
        "valueBytes",
        ...(kind.versions ? ["version"] : []),
      ];
      for (const m of all) assert.deepEqual(Object.keys(m).sort(), fields);
    });

    test("resolve reads a reference, with or without vault://", async () => {
      const { vault } = await setup();
      await vault.putSecret("ws:acme", "github_token", "ghp_x");
      using a = await vault.resolve("ws:acme/github_token");
      using b = await vault.resolve("vault://ws:acme/github_token");
      assert.equal(a.text(), "ghp_x");
      assert.equal(b.text(), "ghp_x");
      await rejectsWith(() => vault.resolve("ws:acme"), "invalid_ref");
      await rejectsWith(() => vault.resolve("ws:acme/missing"), "not_found");
    });

    test("an object copied onto another key or scope is rejected as crypto", async () => {
      const { vault, backend } = await setup();
      await vault.putSecret("ws:acme", "a", "value-a");
      await vault.putSecret("ws:acme", "b", "value-b");
      await vault.putSecret("ws:other", "a", "value-c");
      const objA = await backend.get(objectId("ws:acme", "a"));
      await backend.put(objectId("ws:acme", "b"), objA);
      await rejectsWith(() => vault.getSecret("ws:acme", "b"), "crypto");
      await backend.put(objectId("ws:other", "a"), objA);
      await rejectsWith(() => vault.getSecret("ws:other", "a"), "crypto");
      using still = await vault.getSecret("ws:acme", "a");
      assert.equal(still.text(), "value-a");
    });

    test("a truncated or extended object is rejected as crypto", async () => {
      const { vault, backend } = await setup();
      await vault.putSecret("global", "t", "value");
      const id = objectId("global", "t");
      const obj = await backend.get(id);
      await backend.put(id, obj.subarray(0, obj.length - 3));
      await rejectsWith(() => vault.getSecret("global", "t"), "crypto");
      await backend.put(id, new Uint8Array([...obj, 32, 32, 120]));
      await rejectsWith(() => vault.getSecret("global", "t"), "crypto");
    });

    test("another identity cannot read the secrets", async () => {
      const fx = await setup();
      await fx.vault.putSecret("global", "openai_api_key", "sk-test");
      const other = await fx.openWithOtherKey();
      const fails = fx.otherIdentityFails ?? { code: "crypto", message: /kek_id/ };
      await rejectsWith(() => other.getSecret("global", "openai_api_key"), fails.code, fails.message);
    });

    test("many concurrent puts in this process all land", async () => {
      const { vault } = await setup();
      const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
      await Promise.all(keys.map((k) => vault.putSecret("ws:busy", k, `v-${k}`)));
      assert.deepEqual((await vault.listSecrets("ws:busy")).map((m) => m.key), keys.slice().sort());
      for (const k of keys) {
        using v = await vault.getSecret("ws:busy", k);
        assert.equal(v.text(), `v-${k}`);
      }
    });

    // A PostgreSQL store keeps rows, not objects: this contract is of blob backends.
    if (kind.blobBackend !== false) {
      test("the backend contract: an object id other than obj_<64 hex> is refused, a missing object is not_found", async () => {
        const { backend } = await setup();
        // Ids that could name a path outside the folder or an option of a keychain tool.
        const bad = [
          "../../../etc/passwd",
          "--help",
          "obj_" + "0".repeat(63),
          "OBJ_" + "a".repeat(64),
          "obj_" + "g".repeat(64),
          "",
        ];
        for (const id of bad) {
          const form = /not of the form obj_<64 hex>/;
          await rejectsWith(() => backend.put(id, new Uint8Array([1])), "io", form);
          await rejectsWith(() => backend.get(id), "io", form);
          await rejectsWith(() => backend.delete(id), "io", form);
        }
        const missing = objectId("global", "never.stored");
        await rejectsWith(() => backend.get(missing), "not_found", new RegExp(`read object "${missing}" failed`));
        await backend.delete(missing); // removing what is not there succeeds
        await rejectsWith(() => backend.get(missing), "not_found");
      });
    }

    test("bad input to every method gets its typed error", async () => {
      const fx = await setup();
      const { vault } = fx;
      await rejectsWith(() => vault.putSecret("team:x", "k", "v"), "invalid_scope");
      await rejectsWith(() => vault.putSecret("global", "Bad Key", "v"), "invalid_key");
      await rejectsWith(() => vault.getSecret("ws:", "k"), "invalid_scope");
      await rejectsWith(() => vault.getSecret("global", ""), "invalid_key");
      await rejectsWith(() => vault.deleteSecret("ws:a/b", "k"), "invalid_scope");
      await rejectsWith(() => vault.deleteSecret("global", "k/../x"), "invalid_key");
      await rejectsWith(() => vault.listSecrets("pr:\u0000"), "invalid_scope");
      await rejectsWith(() => vault.resolve("global/UPPER"), "invalid_ref");
      await assert.rejects(() => vault.putSecret("global", "k", 42 as unknown as string), TypeError);
      // Nothing was written: not even the vault folder.
      if (fx.assertEmpty !== undefined) await fx.assertEmpty(vault);
      else await rejectsWith(() => vault.listSecrets("global"), "not_found", /no vault at/);
    });
  });
}
