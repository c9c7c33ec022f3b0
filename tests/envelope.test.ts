/** Envelope sealing and tamper resistance (docs/FORMAT.md §3). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { inspect } from "node:util";
import fc from "fast-check";
import { openEnvelope, sealEnvelope } from "../src/crypto/envelope.ts";
import {
  BASE64,
  base64Bytes,
  base64Length,
  fromBase64,
  fromBase64Fallback,
  fromBase64Into,
  fromBase64Portable,
  fromUtf8,
  toBase64,
  toBase64Fallback,
  toBase64PaddedBytes,
  toBase64Portable,
  utf8,
  writeBase64,
  writeBase64Bytes,
} from "../src/crypto/encoding.ts";
import { SensitiveBytes } from "../src/crypto/sensitive.ts";
import { VaultError } from "../src/errors.ts";
import { decodeEnvelope, encodeEnvelope, scanEnvelope, sealParts } from "../src/crypto/envelope_codec.ts";
import { fromNodeBuffer } from "../src/platform/base64.ts";
import { randomBytes, rejectsWith, testKek } from "./helpers.ts";

const KEK = testKek(1);
/** The envelope's base64 codecs: the crypto layer's, and `Buffer`'s (Node 20's, checked on every runtime). */
const CODECS = [["the crypto layer's", BASE64], ["Buffer's", fromNodeBuffer(Buffer)]] as const;

describe("envelope", () => {
  test("round trip of arbitrary values, both algorithms", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.constantFrom("aes_256_gcm", "chacha20_poly1305"), (v, alg) => {
        const env = sealEnvelope(KEK, "ws:acme", "token", v, alg as "aes_256_gcm");
        assert.deepEqual(openEnvelope(KEK, "ws:acme", "token", env), v);
      }),
      { numRuns: 200 },
    );
  });

  test("fields, order, unpadded base64 and lengths are as specified", () => {
    const env = JSON.parse(fromUtf8(sealEnvelope(KEK, "global", "k", utf8("hello"))));
    assert.deepEqual(Object.keys(env), [
      "version",
      "algorithm",
      "kek_id",
      "aad_b64",
      "secret_nonce_b64",
      "secret_ciphertext_b64",
      "secret_mac_b64",
      "dek_nonce_b64",
      "dek_ciphertext_b64",
      "dek_mac_b64",
    ]);
    assert.equal(env.version, 1);
    assert.equal(env.algorithm, "aes_256_gcm");
    assert.match(env.kek_id, /^[0-9a-f]{16}$/);
    assert.equal(fromUtf8(fromBase64(env.aad_b64)!), "palyra.vault.v1|global|k");
    for (
      const [f, n] of [
        ["secret_nonce_b64", 12],
        ["dek_nonce_b64", 12],
        ["secret_mac_b64", 16],
        [
          "dek_mac_b64",
          16,
        ],
        ["dek_ciphertext_b64", 32],
        ["secret_ciphertext_b64", 5],
      ] as const
    ) {
      assert.doesNotMatch(env[f], /=/);
      assert.equal(fromBase64(env[f])!.length, n, f);
    }
  });

  test("the envelope's bytes are JSON.stringify of its fields in order, for any parts, its sealed outputs joined or apart", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 90 }),
        fc.uint8Array({ minLength: 16, maxLength: 300 }),
        fc.option(fc.stringMatching(/^[0-9a-f]{16}$/), { nil: null }),
        fc.constantFrom("aes_256_gcm" as const, "chacha20_poly1305" as const),
        (aad, secret, id, algorithm) => {
          const parts = { aad, dek: randomBytes(32), secretNonce: randomBytes(12), dekNonce: randomBytes(12) };
          const wrapped = randomBytes(48);
          const b64 = (b: Uint8Array) => toBase64Portable(b);
          const expected = JSON.stringify({
            version: 1,
            algorithm,
            ...(id === null ? {} : { kek_id: id }),
            aad_b64: b64(aad),
            secret_nonce_b64: b64(parts.secretNonce),
            secret_ciphertext_b64: b64(secret.subarray(0, secret.length - 16)),
            secret_mac_b64: b64(secret.subarray(secret.length - 16)),
            dek_nonce_b64: b64(parts.dekNonce),
            dek_ciphertext_b64: b64(wrapped.subarray(0, 32)),
            dek_mac_b64: b64(wrapped.subarray(32)),
          });
          // Each sealed output joined (ciphertext then tag, as noble and WebCrypto give it) or apart (as the
          // runtime's own AES-GCM gives it).
          const apart = (b: Uint8Array) => [b.slice(0, b.length - 16), b.slice(b.length - 16)] as const;
          for (const [name, codec] of CODECS) {
            assert.equal(fromUtf8(encodeEnvelope(algorithm, id, parts, secret, wrapped, codec)), expected, name);
            const split = encodeEnvelope(algorithm, id, parts, apart(secret), apart(wrapped), codec);
            assert.equal(fromUtf8(split), expected, `${name}, apart`);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test("property: the envelope scan accepts only text that JSON.parse reads to the same fields, or that base64 refuses", () => {
    // Characters that matter to JSON or to the scan, and some that matter to neither.
    const noise = fc.constantFrom(...'\\"{}[],: \t\n\u0000\u2028é0aA+/=', "\\u0041", '\\"', '"x":"y",');
    const mutation = fc.oneof(
      fc.constant({ kind: "none" as const, at: 0, text: "" }),
      fc.record({
        kind: fc.constantFrom("replace" as const, "insert" as const, "delete" as const),
        at: fc.nat(),
        text: noise,
      }),
    );
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }),
        fc.constantFrom("aes_256_gcm" as const, "chacha20_poly1305" as const),
        fc.boolean(),
        mutation,
        (value, algorithm, withId, m) => {
          let text = fromUtf8(sealEnvelope(KEK, "ws:acme", "k", value, algorithm, withId ? undefined : null));
          const at = m.at % (text.length + 1);
          if (m.kind === "replace") text = text.slice(0, at) + m.text + text.slice(at + 1);
          if (m.kind === "insert") text = text.slice(0, at) + m.text + text.slice(at);
          if (m.kind === "delete") text = text.slice(0, at) + text.slice(at + 1);
          const scanned = scanEnvelope(text);
          if (m.kind === "none") assert.notEqual(scanned, undefined, "an envelope as written is scanned");
          if (scanned !== undefined) {
            let parsed: unknown;
            try {
              parsed = JSON.parse(text);
            } catch {
              // JSON refuses a raw control character inside a string; the scan leaves that to base64 decoding,
              // which refuses it too (the envelope is then read again through JSON.parse, and refused).
              const bad = Object.entries(scanned).filter(([k, v]) =>
                k.endsWith("_b64") && fromBase64(v as string) === undefined
              );
              assert.notDeepEqual(bad, [], `JSON refuses ${JSON.stringify(text)}, and so does base64`);
              return;
            }
            assert.deepEqual(scanned, parsed);
          }
          // Opening gives the same outcome either way: the value, or the same crypto error.
          let viaOpen: unknown;
          try {
            viaOpen = openEnvelope(KEK, "ws:acme", "k", utf8(text));
          } catch (e) {
            viaOpen = (e as { code?: string }).code;
          }
          if (m.kind === "none") assert.deepEqual(viaOpen, value);
          else if (!(viaOpen instanceof Uint8Array)) assert.equal(viaOpen, "crypto");
        },
      ),
      { numRuns: 500 },
    );
  });

  test("property: malformed UTF-8 anywhere in an envelope is the malformed-JSON crypto error", () => {
    // The scan reads the envelope leniently (a malformed byte becomes U+FFFD); only the strict reading may judge it.
    const bad = fc.constantFrom([0x80], [0xc3], [0xff], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(), bad, fc.boolean(), (value, at, b, swap) => {
        const clean = sealEnvelope(KEK, "ws:acme", "k", value);
        const i = at % clean.length;
        const bytes = new Uint8Array([...clean.subarray(0, i), ...b, ...clean.subarray(swap ? i + 1 : i)]);
        assert.throws(
          () => openEnvelope(KEK, "ws:acme", "k", bytes),
          (e) => VaultError.is(e, "crypto") && /malformed JSON/.test(e.message),
        );
      }),
      { numRuns: 1000 },
    );
  });

  test("every seal uses a fresh data key and nonces", () => {
    const a = JSON.parse(fromUtf8(sealEnvelope(KEK, "global", "k", utf8("same"))));
    const b = JSON.parse(fromUtf8(sealEnvelope(KEK, "global", "k", utf8("same"))));
    for (const f of ["secret_nonce_b64", "dek_nonce_b64", "dek_ciphertext_b64", "secret_ciphertext_b64"]) {
      assert.notEqual(a[f], b[f], f);
    }
    // The three are drawn together: none is a copy or a part of another.
    const parts = sealParts("global", "k");
    const hex = (x: Uint8Array) => [...x].map((v) => v.toString(16).padStart(2, "0")).join("");
    const [dek, n1, n2] = [parts.dek, parts.secretNonce, parts.dekNonce].map(hex);
    assert.deepEqual([dek!.length, n1!.length, n2!.length], [64, 24, 24]);
    assert.ok(n1 !== n2 && !dek!.includes(n1!) && !dek!.includes(n2!));
  });

  test("every single-bit flip anywhere in the envelope is rejected or changes nothing the reader gets", () => {
    const value = randomBytes(40);
    const env = sealEnvelope(KEK, "ws:acme", "github_token", value);
    const text = fromUtf8(env);
    // kek_id is an unauthenticated hint (docs/FORMAT.md §2: readers must not require it).
    const kekStart = text.indexOf('"kek_id"');
    const kekEnd = text.indexOf(",", kekStart);
    let rejected = 0;
    let tolerated = 0;
    for (let i = 0; i < env.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = env.slice();
        copy[i]! ^= 1 << bit;
        let out: Uint8Array | undefined;
        try {
          out = openEnvelope(KEK, "ws:acme", "github_token", copy);
        } catch (e) {
          assert.equal((e as { code?: string }).code, "crypto", `byte ${i} bit ${bit}: ${(e as Error).message}`);
          rejected++;
          continue;
        }
        assert.ok(i >= kekStart && i < kekEnd, `byte ${i} bit ${bit} (${text[i]}) was accepted outside kek_id`);
        assert.deepEqual(out, value);
        tolerated++;
      }
    }
    assert.equal(rejected + tolerated, env.length * 8);
    assert.ok(tolerated <= (kekEnd - kekStart) * 8);
    assert.ok(rejected > env.length * 7);
  });

  test("property: in a large envelope, Buffer's base64 refuses what the crypto layer's refuses", () => {
    // Node's own decoder skips stray characters, reads the URL-safe alphabet and ignores unused bits; the codec
    // on it must still refuse each of those, as the one crypto error, wherever they are in the value's base64.
    const env = sealEnvelope(KEK, "ws:acme", "k", randomBytes(4099));
    const text = fromUtf8(env);
    const field = '"secret_ciphertext_b64":"';
    const start = text.indexOf(field) + field.length;
    const end = text.indexOf('"', start);
    fc.assert(
      fc.property(fc.integer({ min: start, max: end - 1 }), fc.constantFrom(..."-_= .\u00e9"), (i, c) => {
        const bytes = utf8(text.slice(0, i) + c + text.slice(i + 1));
        for (const [name, codec] of CODECS) {
          assert.throws(() => decodeEnvelope("ws:acme", "k", bytes, codec), (e) => VaultError.is(e, "crypto"), name);
        }
      }),
      { numRuns: 500 },
    );
    // 4099 + 16 bytes leave two unused bits in the last character: setting either is another string, refused.
    for (const last of ["B", "C", "D"]) {
      const bytes = utf8(text.slice(0, end - 1) + last + text.slice(end));
      for (const [name, codec] of CODECS) {
        assert.throws(() => decodeEnvelope("ws:acme", "k", bytes, codec), (e) => VaultError.is(e, "crypto"), name);
      }
    }
    for (const [, codec] of CODECS) assert.equal(decodeEnvelope("ws:acme", "k", env, codec).secretSealed.length, 4115);
  });

  test("truncation at every length and appended bytes are rejected", async () => {
    const env = sealEnvelope(KEK, "global", "k", utf8("secret-value"));
    for (let n = 0; n < env.length; n++) {
      await rejectsWith(() => openEnvelope(KEK, "global", "k", env.subarray(0, n)), "crypto");
    }
    for (const tail of ["x", "}", "\u0000", ",", "{}"]) {
      const longer = new Uint8Array([...env, ...utf8(tail)]);
      await rejectsWith(() => openEnvelope(KEK, "global", "k", longer), "crypto");
    }
  });

  test("a ciphertext cut short or extended inside its field is rejected", async () => {
    const env = JSON.parse(fromUtf8(sealEnvelope(KEK, "global", "k", utf8("0123456789abcdef"))));
    const ct = fromBase64(env.secret_ciphertext_b64)!;
    for (const changed of [ct.subarray(0, ct.length - 1), new Uint8Array([...ct, 0]), new Uint8Array(0)]) {
      const e2 = { ...env, secret_ciphertext_b64: toBase64(changed) };
      await rejectsWith(() => openEnvelope(KEK, "global", "k", utf8(JSON.stringify(e2))), "crypto");
    }
  });

  test("an envelope opened for another key or scope is rejected (AAD)", async () => {
    const env = sealEnvelope(KEK, "ws:acme", "token", utf8("v"));
    await rejectsWith(() => openEnvelope(KEK, "ws:acme", "token2", env), "crypto", /another scope or key/);
    await rejectsWith(() => openEnvelope(KEK, "ws:other", "token", env), "crypto", /another scope or key/);
    await rejectsWith(() => openEnvelope(KEK, "global", "token", env), "crypto");
  });

  test("an AAD rewritten to the new place still fails the tag", async () => {
    const env = JSON.parse(fromUtf8(sealEnvelope(KEK, "ws:acme", "token", utf8("v"))));
    env.aad_b64 = toBase64(utf8("palyra.vault.v1|ws:other|token"));
    await rejectsWith(() => openEnvelope(KEK, "ws:other", "token", utf8(JSON.stringify(env))), "crypto");
  });

  test("another KEK is rejected, and the message names both kek ids", async () => {
    const env = sealEnvelope(KEK, "global", "k", utf8("v"));
    await rejectsWith(
      () => openEnvelope(testKek(2), "global", "k", env),
      "crypto",
      /kek_id "[0-9a-f]{16}".*"[0-9a-f]{16}"/,
    );
  });

  test("a missing or different kek_id is tolerated when the key is right", () => {
    const env = JSON.parse(fromUtf8(sealEnvelope(KEK, "global", "k", utf8("v"))));
    delete env.kek_id;
    assert.equal(fromUtf8(openEnvelope(KEK, "global", "k", utf8(JSON.stringify(env)))), "v");
    env.kek_id = "0000000000000000";
    assert.equal(fromUtf8(openEnvelope(KEK, "global", "k", utf8(JSON.stringify(env)))), "v");
  });

  test("unknown versions, algorithms, padded base64 and non-objects are rejected", async () => {
    const env = JSON.parse(fromUtf8(sealEnvelope(KEK, "global", "k", utf8("v"))));
    const variants = [
      { ...env, version: 2 },
      { ...env, version: "1" },
      { ...env, algorithm: "aes_128_gcm" },
      { ...env, algorithm: undefined },
      { ...env, secret_mac_b64: env.secret_mac_b64 + "==" },
      { ...env, dek_nonce_b64: 12 },
      [],
      null,
      "x",
    ];
    for (const v of variants) {
      await rejectsWith(() => openEnvelope(KEK, "global", "k", utf8(JSON.stringify(v))), "crypto");
    }
    await rejectsWith(() => openEnvelope(KEK, "global", "k", new Uint8Array([0xff, 0xfe])), "crypto");
  });

  test("a swapped algorithm field is rejected", async () => {
    const env = JSON.parse(fromUtf8(sealEnvelope(KEK, "global", "k", utf8("v"))));
    env.algorithm = "chacha20_poly1305";
    await rejectsWith(() => openEnvelope(KEK, "global", "k", utf8(JSON.stringify(env))), "crypto");
  });

  test("a KEK of the wrong length is refused", async () => {
    await rejectsWith(() => sealEnvelope(new Uint8Array(16), "global", "k", utf8("v")), "crypto", /32 bytes/);
  });
});

describe("strict base64", () => {
  test("round trip and canonical-only decoding", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
        const s = toBase64(b);
        assert.doesNotMatch(s, /=/);
        assert.deepEqual(fromBase64(s), b);
        // Every other string of the same length that decodes must decode to other bytes.
        if (s.length > 0) {
          const last = s.at(-1)!;
          for (const c of "AQgw") {
            if (c === last) continue;
            const d = fromBase64(s.slice(0, -1) + c);
            if (d !== undefined) assert.notDeepEqual(d, b);
          }
        }
      }),
    );
    for (const bad of ["A", "AB=", "AB==", "A B", "AB-_", "ABC\n", "AR"]) assert.equal(fromBase64(bad), undefined, bad);
  });

  test("the runtime's built-in base64, the fallback and the portable code give the same answers", () => {
    // Deno and Bun use Uint8Array.prototype.toBase64 / Uint8Array.fromBase64; Node 20 the fallback (a table
    // and atob, or writing bytes in place); the portable loop is the reference.
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        const s = toBase64Portable(b);
        assert.equal(toBase64(b), s);
        assert.equal(toBase64Fallback(b), s);
        // Written in place, behind other bytes and before a guard byte that must stay.
        assert.equal(base64Length(b.length), s.length);
        for (const write of [writeBase64, writeBase64Bytes, ...CODECS.map(([, c]) => c.write)]) {
          const out = new Uint8Array(s.length + 4).fill(0xee);
          assert.equal(write(b, out, 3), 3 + s.length);
          assert.equal(fromUtf8(out.subarray(3, 3 + s.length)), s);
          assert.deepEqual([...out.subarray(0, 3), out[3 + s.length]], [0xee, 0xee, 0xee, 0xee]);
        }
        const padded = s + "=".repeat((4 - (s.length % 4)) % 4);
        assert.equal(fromUtf8(toBase64PaddedBytes(b)), padded);
        assert.deepEqual(fromBase64(s), fromBase64Portable(s));
        assert.deepEqual(fromBase64Fallback(s), fromBase64Portable(s));
      }),
      { numRuns: 500 },
    );
    // Strings that are not canonical, from every character class, decode the same way on both paths.
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(..."AQgwZz09+/=-_ \n\t."), maxLength: 12 }), (t) => {
        assert.deepEqual(fromBase64(t), fromBase64Portable(t), JSON.stringify(t));
        assert.deepEqual(fromBase64Fallback(t), fromBase64Portable(t), JSON.stringify(t));
        const expected = fromBase64Portable(t);
        for (const into of [fromBase64Into, ...CODECS.map(([, c]) => c.decodeInto)]) {
          const out = new Uint8Array(base64Bytes(t.length) ?? 0);
          assert.equal(into(t, out), expected !== undefined, JSON.stringify(t));
          if (expected !== undefined) assert.deepEqual(out, expected);
        }
      }),
      { numRuns: 3000 },
    );
  });

  test("decoding into a buffer: the exact length only, and nothing written outside it", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: -2, max: 2 }), (b, slack) => {
        const s = toBase64Portable(b);
        for (const into of [fromBase64Into, ...CODECS.map(([, c]) => c.decodeInto)]) {
          const whole = new Uint8Array(b.length + 6).fill(0xee);
          const out = whole.subarray(3, 3 + Math.max(0, b.length + slack));
          assert.equal(into(s, out), slack === 0 || (b.length === 0 && slack < 0));
          if (slack === 0) assert.deepEqual(out, b);
          assert.deepEqual([...whole.subarray(0, 3), ...whole.subarray(3 + out.length)].filter((x) => x !== 0xee), []);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("SensitiveBytes", () => {
  test("never prints its bytes", () => {
    const s = new SensitiveBytes(utf8("hunter2-secret"));
    for (
      const shown of [String(s), `${s}`, JSON.stringify({ s }), inspect(s), inspect({ nested: s }), s.toString()]
    ) {
      assert.doesNotMatch(shown, /hunter2/);
      assert.match(shown, /redacted/);
    }
    assert.equal(s.text(), "hunter2-secret");
  });

  test("dispose zero-fills, also through `using`", () => {
    const bytes = utf8("top-secret");
    {
      using s = new SensitiveBytes(bytes);
      assert.equal(s.length, 10);
    }
    assert.ok(bytes.every((b) => b === 0));
    const s2 = new SensitiveBytes(utf8("x"));
    s2.dispose();
    assert.equal(s2.disposed, true);
    assert.throws(() => s2.text(), TypeError);
  });
});
