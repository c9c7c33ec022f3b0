/** Scopes, keys and references (docs/FORMAT.md §1): properties and every rule. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  formatScope,
  formatVaultRef,
  fromTaggedScope,
  parseScope,
  parseVaultRef,
  toScope,
  toTaggedScope,
  validateKey,
  type VaultScope,
} from "../src/scope.ts";
import { rejectsWith } from "./helpers.ts";

const keyChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789._-");
const validKey = fc.array(keyChar, { minLength: 1, maxLength: 128 }).map((a) => a.join(""));
// Ids: any NFC Unicode text without control or format characters, slashes or surrounding space,
// within 256 UTF-8 bytes.
const idChar = fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }).filter((c) =>
  !/[\p{Cc}\p{Cf}\p{Cs}/\\]/u.test(c) && c.trim() === c
);
const validId = fc.array(fc.oneof(idChar, fc.constantFrom("a", "é", "日", "😀", " ", ":")), {
  minLength: 1,
  maxLength: 60,
})
  .map((a) => a.join("").trim())
  .filter((s) => s.length > 0 && s.normalize("NFC") === s && new TextEncoder().encode(s).length <= 256);
const validScope: fc.Arbitrary<VaultScope> = fc.oneof(
  fc.constant<VaultScope>({ kind: "global" }),
  validId.map((id): VaultScope => ({ kind: "workspace", id })),
  validId.map((id): VaultScope => ({ kind: "principal", id })),
  validId.map((id): VaultScope => ({ kind: "palyra_principal", id })),
  validId.map((id): VaultScope => ({ kind: "skill", id })),
  fc.tuple(validId.filter((n) => !n.includes(":")), validId).map((
    [name, account],
  ): VaultScope => ({ kind: "channel", name, account })),
);
const palyraScope = validScope.filter((s) => s.kind !== "workspace" && s.kind !== "principal");

describe("scope properties", () => {
  test("parse(format(scope)) is the identity on valid scopes", () => {
    fc.assert(fc.property(validScope, (s) => assert.deepEqual(parseScope(formatScope(s)), s)), { numRuns: 500 });
  });

  test("format(parse(text)) is the identity on canonical scope strings", () => {
    fc.assert(
      fc.property(validScope, (s) => {
        const text = formatScope(s);
        assert.equal(formatScope(parseScope(text)), text);
      }),
      { numRuns: 500 },
    );
  });

  test("parseVaultRef(formatVaultRef(ref)) is the identity, with or without vault://", () => {
    fc.assert(
      fc.property(validScope, validKey, fc.boolean(), (scope, key, prefixed) => {
        const text = (prefixed ? "vault://" : "") + formatVaultRef({ scope, key });
        assert.deepEqual(parseVaultRef(text), { scope, key });
      }),
      { numRuns: 500 },
    );
  });

  test("Palyra's tagged JSON form round-trips every scope of its layout, and refuses ws:/pr:", () => {
    fc.assert(
      fc.property(palyraScope, (s) => {
        const tagged = JSON.parse(JSON.stringify(toTaggedScope(s)));
        assert.deepEqual(fromTaggedScope(tagged), s);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(validScope.filter((s) => s.kind === "workspace" || s.kind === "principal"), (s) => {
        assert.throws(() => toTaggedScope(s), (e: Error & { code?: string }) => e.code === "invalid_scope");
      }),
      { numRuns: 50 },
    );
  });

  test("validateKey accepts exactly [a-z0-9._-]{1,128}", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 140 }), (k) => {
        const ok = /^[a-z0-9._-]{1,128}$/.test(k);
        let accepted = true;
        try {
          validateKey(k);
        } catch (e) {
          accepted = false;
          assert.equal((e as { code?: string }).code, "invalid_key");
        }
        assert.equal(accepted, ok, JSON.stringify(k));
      }),
      { numRuns: 1000 },
    );
  });

  test("any string either parses to a scope whose format re-parses the same, or fails with invalid_scope", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 300 }), (text) => {
        let scope: VaultScope;
        try {
          scope = parseScope(text);
        } catch (e) {
          assert.equal((e as { code?: string }).code, "invalid_scope");
          return;
        }
        assert.deepEqual(parseScope(formatScope(scope)), scope);
      }),
      { numRuns: 1000 },
    );
  });

  test("any string either parses to a reference or fails with invalid_ref", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          const ref = parseVaultRef(text);
          assert.deepEqual(parseVaultRef(formatVaultRef(ref)), ref);
        } catch (e) {
          assert.equal((e as { code?: string }).code, "invalid_ref");
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe("scope rules", () => {
  test("global in any letter case, printed lowercase", () => {
    for (const t of ["global", "GLOBAL", "Global", " gLoBaL "]) assert.equal(formatScope(parseScope(t)), "global");
  });

  test("ws: and pr: with trimmed ids", () => {
    assert.deepEqual(parseScope("ws:acme"), { kind: "workspace", id: "acme" });
    assert.deepEqual(parseScope("pr:  alice \t"), { kind: "principal", id: "alice" });
    assert.deepEqual(parseScope("ws:日本語 プロジェクト"), { kind: "workspace", id: "日本語 プロジェクト" });
    assert.deepEqual(parseScope("ws:a:b"), { kind: "workspace", id: "a:b" });
  });

  test('Palyra\'s scopes: principal:, channel:<name>:<account> (the account may hold ":"), skill:', () => {
    assert.deepEqual(parseScope("principal: alice "), { kind: "palyra_principal", id: "alice" });
    assert.deepEqual(parseScope("channel:slack:T01:U02"), { kind: "channel", name: "slack", account: "T01:U02" });
    assert.deepEqual(parseScope("channel: discord : 42 "), { kind: "channel", name: "discord", account: "42" });
    assert.deepEqual(parseScope("skill:web.search"), { kind: "skill", id: "web.search" });
    assert.equal(formatScope(parseScope("channel:slack:T01:U02")), "channel:slack:T01:U02");
    assert.notEqual(formatScope(parseScope("pr:alice")), formatScope(parseScope("principal:alice")));
    assert.deepEqual(toTaggedScope(parseScope("channel:slack:T01:U02")), {
      kind: "channel",
      channel_name: "slack",
      account_id: "T01:U02",
    });
    assert.deepEqual(toTaggedScope(parseScope("GLOBAL")), { kind: "global" });
    assert.deepEqual(toTaggedScope(parseScope("principal:bob")), { kind: "principal", principal_id: "bob" });
    assert.deepEqual(toTaggedScope(parseScope("skill:x")), { kind: "skill", skill_id: "x" });
  });

  test("tagged scopes from a file obey the same rules", async () => {
    await rejectsWith(
      () => fromTaggedScope({ kind: "principal", principal_id: "caf\u0065\u0301" }),
      "invalid_scope",
      /NFC/,
    );
    await rejectsWith(
      () => fromTaggedScope({ kind: "principal", principal_id: " alice" }),
      "invalid_scope",
      /white space/,
    );
    await rejectsWith(
      () => fromTaggedScope({ kind: "channel", channel_name: "a:b", account_id: "c" }),
      "invalid_scope",
    );
    await rejectsWith(() => fromTaggedScope({ kind: "workspace", id: "x" }), "invalid_scope", /tagged scope/);
    await rejectsWith(() => fromTaggedScope({ kind: "skill" }), "invalid_scope");
    await rejectsWith(() => fromTaggedScope(null), "invalid_scope");
    const e = await rejectsWith(() => toTaggedScope(parseScope("ws:acme")), "invalid_scope", /Palyra's layout/);
    assert.match(e.hint ?? "", /palyra-secrets migrate --to scoped/);
  });

  const bad: Array<[string, RegExp]> = [
    ["", /empty/],
    ["   ", /empty/],
    ["local", /prefix/],
    ["channel:slack", /":" before the account is missing/],
    ["channel::acct", /channel name after "channel:" is empty/],
    ["channel:slack:", /account after "channel:slack:" is empty/],
    ["skill:a\u200bb", /format character U\+200B/],
    ["principal:", /empty/],
    ["Skill:x", /must be lowercase/],
    ["channel:sl/ack:x", /"\/"/],
    ["WS:acme", /must be lowercase/],
    ["Pr:alice", /must be lowercase/],
    ["team:acme", /unknown scope prefix/],
    ["ws:", /empty/],
    ["pr:   ", /empty/],
    ["ws:a/b", /"\/"/],
    ["ws:a\\b", /"\\\\"/],
    ["ws:a\u0000b", /NUL/],
    ["ws:a\u0007b", /control character U\+0007/],
    ["ws:a\u007fb", /control character U\+007F/],
    ["ws:a\u0085b", /control character U\+0085/],
    ["ws:a\ud800b", /surrogate/],
    // Look-alikes: another normalization form, zero-width and bidi characters are refused.
    ["ws:caf\u0065\u0301", /not in Unicode NFC/],
    ["ws:acme\u200b", /format character U\+200B/],
    ["ws:\u202eemca", /format character U\+202E/],
    ["ws:a\ufeffcme", /format character U\+FEFF/],
    ["pr:a\u2066b", /format character U\+2066/],
    ["ws:" + "a".repeat(257), /257 bytes/],
    ["ws:" + "é".repeat(129), /258 bytes/],
  ];
  for (const [input, rule] of bad) {
    test(`rejects ${JSON.stringify(input).slice(0, 40)} naming the rule`, async () => {
      const e = await rejectsWith(() => parseScope(input), "invalid_scope", rule);
      assert.match(e.hint ?? "", /global \| ws:<id> \| pr:<id>/);
    });
  }

  test("256 bytes of UTF-8 is the largest id", () => {
    assert.equal(parseScope("ws:" + "a".repeat(256)).kind, "workspace");
    assert.equal(parseScope("pr:" + "é".repeat(128)).kind, "principal");
  });

  test("toScope checks hand-built scope objects by the same rules", async () => {
    assert.deepEqual(toScope({ kind: "workspace", id: "x" }), { kind: "workspace", id: "x" });
    await rejectsWith(() => toScope({ kind: "workspace", id: "a/b" }), "invalid_scope");
    await rejectsWith(() => toScope({ kind: "workspace", id: " padded " }), "invalid_scope", /white space/);
    await rejectsWith(() => toScope({ kind: "team", id: "x" } as unknown as VaultScope), "invalid_scope");
    await rejectsWith(() => toScope(42 as unknown as string), "invalid_scope");
  });
});

describe("key rules", () => {
  const bad: Array<[string, RegExp]> = [
    ["", /empty/],
    ["a".repeat(129), /129 characters/],
    ["Upper", /"U"/],
    ["with space", /" "/],
    ["slash/key", /"\/"/],
    ["émile", /"é"/],
    ["tab\t", /"\\t"/],
  ];
  for (const [input, rule] of bad) {
    test(`rejects key ${JSON.stringify(input).slice(0, 30)}`, async () => {
      const e = await rejectsWith(() => validateKey(input), "invalid_key", rule);
      assert.match(e.hint ?? "", /\[a-z0-9\._-\]/);
    });
  }
  test("accepts the edges of the grammar", () => {
    for (const k of ["a", "a".repeat(128), "openai_api_key", "x.y-z_9", "..", "-"]) assert.equal(validateKey(k), k);
  });
});

describe("reference rules", () => {
  test("parses plain and vault:// references", () => {
    assert.deepEqual(parseVaultRef("global/openai_api_key"), { scope: { kind: "global" }, key: "openai_api_key" });
    assert.deepEqual(parseVaultRef("vault://ws:acme/github_token"), {
      scope: { kind: "workspace", id: "acme" },
      key: "github_token",
    });
  });
  const bad: Array<[string, RegExp]> = [
    ["", /"\/"/],
    ["global", /"\/"/],
    ["global/", /key part.*empty/],
    ["/key", /scope part/],
    ["ws:a/b/key", /scope part/],
    ["global/Key", /key part/],
    ["vault://", /"\/"/],
    ["vault:/global/key", /scope part/],
    ["team:x/key", /scope part/],
  ];
  for (const [input, rule] of bad) {
    test(`rejects reference ${JSON.stringify(input)}`, async () => {
      const e = await rejectsWith(() => parseVaultRef(input), "invalid_ref", rule);
      assert.match(e.hint ?? "", /\[vault:\/\/\]<scope>\/<key>/);
    });
  }
});

describe("look-alike scopes (review of 3d5a40a)", () => {
  test("regression: scopes that look the same can never be two different scopes in a vault", async () => {
    const { Vault } = await import("../src/vault.ts");
    const { tempDir, testKek } = await import("./helpers.ts");
    const { join } = await import("node:path");
    const v = await Vault.open({ root: join(tempDir("unicode"), "vault"), kek: testKek(1) });
    await v.putSecret("ws:café".normalize("NFC"), "token", "value-A");
    await rejectsWith(() => v.putSecret("ws:café".normalize("NFD"), "token", "value-B"), "invalid_scope", /NFC/);
    await rejectsWith(() => v.putSecret("ws:acme\u200b", "token", "zero-width"), "invalid_scope", /U\+200B/);
    await rejectsWith(() => v.putSecret("ws:\u202eemca", "token", "bidi"), "invalid_scope", /U\+202E/);
    await rejectsWith(() => v.getSecret("ws:café".normalize("NFD"), "token"), "invalid_scope");
    assert.deepEqual((await v.listSecrets()).map((m) => m.scope), ["ws:café".normalize("NFC")]);
  });
});
