/**
 * Known-answer tests (docs/FORMAT.md §1–§3): the TypeScript crypto against vectors
 * computed by an independent implementation (Python `cryptography`, see
 * tests/vectors/README.md), and the noble primitives it wraps against
 * Project Wycheproof.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { gcm } from "@noble/ciphers/aes.js";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { deriveKekWebCrypto, kekId } from "../src/crypto/kdf.ts";
import { deriveKek } from "../src/crypto/kdf_noble.ts";
import { envelopeAad, objectId, scopeDirName } from "../src/crypto/ids.ts";
import { openEnvelope, sealEnvelope } from "../src/crypto/envelope.ts";
import { type CipherEngine, EnvelopeCipher, LARGE_VALUE_BYTES } from "../src/crypto/envelope_async.ts";
import { fromBase64, toBase64, toHex, utf8 } from "../src/crypto/encoding.ts";
import { VaultError } from "../src/errors.ts";
import { fromNodeCrypto } from "../src/platform/aes_gcm.ts";
import { fromNodeBuffer } from "../src/platform/base64.ts";
import { type NativeCrypto, nativeCrypto } from "../src/platform/native_crypto.ts";
import { runtimeName } from "../src/platform/runtime.ts";
import { sha256 as runtimeSha256 } from "../src/platform/sha256.ts";

// ---------------------------------------------------------------------------------------------
// Loading

function readJson(name: string): unknown {
  return JSON.parse(readFileSync(fileURLToPath(new URL(`./vectors/${name}`, import.meta.url)), "utf8"));
}

function fromHex(hex: string): Uint8Array {
  assert.match(hex, /^(?:[0-9a-f]{2})*$/i, `not hex: ${hex.slice(0, 40)}`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function b64(text: string, what: string): Uint8Array {
  const bytes = fromBase64(text);
  assert.ok(bytes !== undefined, `${what} is not canonical unpadded base64: ${JSON.stringify(text)}`);
  return bytes;
}

type Algorithm = "aes_256_gcm" | "chacha20_poly1305";

interface PalyraVectors {
  hkdf_rfc5869_a1: { ikm_hex: string; salt_hex: string; info_hex: string; length: number; okm_hex: string };
  kek: { pem: string; kek_hex: string; kek_id: string }[];
  names: { scope: string; key: string; aad_hex: string; object_id: string; scope_dir: string }[];
  envelopes: {
    kek_hex: string;
    scope: string;
    key: string;
    algorithm: Algorithm;
    value_hex: string;
    envelope: string;
  }[];
}

interface WycheproofFile<T> {
  algorithm: string;
  numberOfTests: number;
  testGroups: (Record<string, unknown> & { tests: T[] })[];
}

interface AeadCase {
  tcId: number;
  comment: string;
  flags: string[];
  key: string;
  iv: string;
  aad: string;
  msg: string;
  ct: string;
  tag: string;
  result: "valid" | "invalid" | "acceptable";
}

interface HkdfCase {
  tcId: number;
  comment: string;
  flags: string[];
  ikm: string;
  salt: string;
  info: string;
  size: number;
  okm: string;
  result: "valid" | "invalid" | "acceptable";
}

const V = readJson("palyra_vectors.json") as PalyraVectors;

/** The two engines the vault's cipher runs small values and data keys on. */
const ENGINES: readonly CipherEngine[] = ["webcrypto", "noble"];

const ENVELOPE_FIELDS = [
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
] as const;

type Aead = (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array) => {
  encrypt(plaintext: Uint8Array): Uint8Array;
  decrypt(ciphertext: Uint8Array): Uint8Array;
};

const AEADS: Record<Algorithm, Aead> = {
  aes_256_gcm: (k, n, a) => gcm(k, n, a),
  chacha20_poly1305: (k, n, a) => chacha20poly1305(k, n, a),
};

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function isCryptoError(e: unknown): boolean {
  return e instanceof VaultError && e.code === "crypto";
}

/** A scope, key or KEK that is not the one an envelope was sealed for. */
function otherScope(scope: string): string {
  return scope === "global" ? "ws:acme" : "global";
}
function otherKey(key: string): string {
  return key === "openai_api_key" ? "github_token" : "openai_api_key";
}

// ---------------------------------------------------------------------------------------------
// Vectors from Python `cryptography`

describe("known-answer vectors from Python cryptography", () => {
  test("the vector file has every section", () => {
    assert.ok(V.kek.length >= 3, "kek");
    assert.ok(V.names.length >= 6, "names");
    assert.ok(V.envelopes.length >= 6, "envelopes");
    assert.ok(V.envelopes.some((e) => e.algorithm === "chacha20_poly1305"), "a chacha20_poly1305 envelope");
  });

  test("HKDF-SHA256, RFC 5869 test case A.1", () => {
    const a1 = V.hkdf_rfc5869_a1;
    const okm = hkdf(sha256, fromHex(a1.ikm_hex), fromHex(a1.salt_hex), fromHex(a1.info_hex), a1.length);
    assert.equal(toHex(okm), a1.okm_hex);
    assert.equal(
      a1.okm_hex,
      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    );
  });

  test("device KEK by WebCrypto (the webcrypto engine's derivation) from the exact PEM bytes", async () => {
    for (const v of V.kek) assert.equal(toHex(await deriveKekWebCrypto(utf8(v.pem))), v.kek_hex);
    // Any seed, not only a PEM: the two derivations agree byte for byte.
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), async (seed) => {
        assert.equal(toHex(await deriveKekWebCrypto(seed)), toHex(deriveKek(seed)));
      }),
      { numRuns: 200 },
    );
  });

  test("device KEK and kek_id from the exact PEM bytes", () => {
    let checked = 0;
    for (const v of V.kek) {
      const kek = deriveKek(utf8(v.pem));
      assert.equal(kek.length, 32);
      assert.equal(toHex(kek), v.kek_hex, `KEK of PEM #${checked}`);
      assert.equal(kekId(kek), v.kek_id, `kek_id of PEM #${checked}`);
      assert.equal(kekId(fromHex(v.kek_hex)), v.kek_id);
      checked++;
    }
    assert.ok(checked >= 3);
    // One PEM differs from another only in its line endings: a different seed, so a different KEK.
    const crlf = V.kek.find((v) => v.pem.includes("\r\n"));
    assert.ok(crlf, "a PEM with CRLF line endings");
    const lf = V.kek.find((v) => v.pem === crlf.pem.replaceAll("\r\n", "\n"));
    assert.ok(lf, "the same PEM with LF line endings");
    assert.notEqual(lf.kek_hex, crlf.kek_hex);
  });

  test("AAD, object id and scope folder for every scope and key", () => {
    let checked = 0;
    for (const v of V.names) {
      const what = `${v.scope}/${v.key}`;
      assert.equal(toHex(envelopeAad(v.scope, v.key)), v.aad_hex, `AAD of ${what}`);
      assert.equal(objectId(v.scope, v.key), v.object_id, `object id of ${what}`);
      assert.equal(scopeDirName(v.scope), v.scope_dir, `scope folder of ${what}`);
      assert.match(v.object_id, /^obj_[0-9a-f]{64}$/);
      assert.match(v.scope_dir, /^s_[0-9a-f]{32}$/);
      checked++;
    }
    assert.ok(checked >= 6);
    assert.ok(V.names.some((v) => utf8(v.scope).length !== v.scope.length), "a non-ASCII scope");
  });

  for (const [i, v] of V.envelopes.entries()) {
    const value = fromHex(v.value_hex);
    const label = `envelope #${i}: ${v.algorithm} ${v.scope}/${v.key}, ${value.length} bytes`;

    test(`${label} opens to its value, and only for its scope, key and KEK`, () => {
      const kek = fromHex(v.kek_hex);
      const bytes = utf8(v.envelope);
      assert.deepEqual(openEnvelope(kek, v.scope, v.key, bytes), value);
      assert.throws(() => openEnvelope(kek, otherScope(v.scope), v.key, bytes), isCryptoError, "other scope");
      assert.throws(() => openEnvelope(kek, v.scope, otherKey(v.key), bytes), isCryptoError, "other key");
      const wrongKek = kek.slice();
      wrongKek[0]! ^= 1;
      assert.throws(() => openEnvelope(wrongKek, v.scope, v.key, bytes), isCryptoError, "other KEK");
    });

    test(`${label} opens to its value through the vault's cipher too (WebCrypto and noble), and only for its scope, key and KEK`, async () => {
      const kek = fromHex(v.kek_hex);
      const bytes = utf8(v.envelope);
      const wrongKek = kek.slice();
      wrongKek[0]! ^= 1;
      for (const engine of ENGINES) {
        const cipher = new EnvelopeCipher(kek, engine);
        assert.deepEqual(await cipher.open(v.scope, v.key, bytes), value, engine);
        const refuses = (p: Promise<unknown>, what: string) => assert.rejects(p, isCryptoError, `${engine}: ${what}`);
        await refuses(cipher.open(otherScope(v.scope), v.key, bytes), "other scope");
        await refuses(cipher.open(v.scope, otherKey(v.key), bytes), "other key");
        await refuses(new EnvelopeCipher(wrongKek, engine).open(v.scope, v.key, bytes), "other KEK");
      }
    });

    test(`${label} has the exact encoding the TypeScript side would write`, () => {
      const kek = fromHex(v.kek_hex);
      const env = JSON.parse(v.envelope) as Record<string, unknown>;
      assert.deepEqual(Object.keys(env), [...ENVELOPE_FIELDS]);
      assert.equal(env.version, 1);
      assert.equal(env.algorithm, v.algorithm);
      assert.equal(env.kek_id, kekId(kek));
      const field = (name: (typeof ENVELOPE_FIELDS)[number]): Uint8Array => {
        const text = env[name];
        assert.equal(typeof text, "string", name);
        const bytes = b64(text as string, name);
        assert.equal(toBase64(bytes), text, `${name} re-encodes identically`);
        return bytes;
      };
      const aad = field("aad_b64");
      assert.deepEqual(aad, envelopeAad(v.scope, v.key));
      const secretNonce = field("secret_nonce_b64");
      const dekNonce = field("dek_nonce_b64");
      assert.equal(secretNonce.length, 12);
      assert.equal(dekNonce.length, 12);
      assert.equal(field("secret_mac_b64").length, 16);
      assert.equal(field("dek_mac_b64").length, 16);
      assert.equal(field("dek_ciphertext_b64").length, 32);
      assert.equal(field("secret_ciphertext_b64").length, value.length);
      // Unwrap the DEK with the bare primitive, re-seal with the same DEK and nonces, and
      // rebuild the JSON with the library's encoders: it must be the Python string exactly.
      const aead = AEADS[v.algorithm];
      const dek = aead(kek, dekNonce, aad).decrypt(concat(field("dek_ciphertext_b64"), field("dek_mac_b64")));
      const secret = aead(dek, secretNonce, aad).encrypt(value);
      const wrapped = aead(kek, dekNonce, aad).encrypt(dek);
      const rebuilt = JSON.stringify({
        version: 1,
        algorithm: v.algorithm,
        kek_id: kekId(kek),
        aad_b64: toBase64(aad),
        secret_nonce_b64: toBase64(secretNonce),
        secret_ciphertext_b64: toBase64(secret.subarray(0, secret.length - 16)),
        secret_mac_b64: toBase64(secret.subarray(secret.length - 16)),
        dek_nonce_b64: toBase64(dekNonce),
        dek_ciphertext_b64: toBase64(wrapped.subarray(0, wrapped.length - 16)),
        dek_mac_b64: toBase64(wrapped.subarray(wrapped.length - 16)),
      });
      assert.equal(rebuilt, v.envelope);
    });
  }

  test("an envelope whose kek_id is missing or different still opens (docs/FORMAT.md §2)", () => {
    const v = V.envelopes[0]!;
    const kek = fromHex(v.kek_hex);
    const env = JSON.parse(v.envelope) as Record<string, unknown>;
    const value = fromHex(v.value_hex);
    env.kek_id = "0000000000000000";
    assert.deepEqual(openEnvelope(kek, v.scope, v.key, utf8(JSON.stringify(env))), value);
    delete env.kek_id;
    assert.deepEqual(openEnvelope(kek, v.scope, v.key, utf8(JSON.stringify(env))), value);
  });

  for (const algorithm of ["aes_256_gcm", "chacha20_poly1305"] as const) {
    test(`sealEnvelope → openEnvelope round trip, fields decoded by hand (${algorithm})`, () => {
      const kek = fromHex(V.kek[0]!.kek_hex);
      const scope = "ws:日本語-プロジェクト";
      const key = "x.y-z_9";
      const value = utf8("round trip ✓ \u0000 end");
      const bytes = sealEnvelope(kek, scope, key, value, algorithm);
      assert.deepEqual(openEnvelope(kek, scope, key, bytes), value);

      const env = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, string | number>;
      assert.deepEqual(Object.keys(env), [...ENVELOPE_FIELDS]);
      assert.equal(env.version, 1);
      assert.equal(env.algorithm, algorithm);
      assert.equal(env.kek_id, V.kek[0]!.kek_id);
      const f = (name: string): Uint8Array => {
        const text = env[name];
        assert.equal(typeof text, "string", name);
        assert.doesNotMatch(text as string, /=/, `${name} has no padding`);
        return b64(text as string, name);
      };
      const aad = f("aad_b64");
      assert.deepEqual(aad, utf8(`palyra.vault.v1|${scope}|${key}`));
      assert.equal(f("secret_nonce_b64").length, 12);
      assert.equal(f("dek_nonce_b64").length, 12);
      assert.equal(f("secret_mac_b64").length, 16);
      assert.equal(f("dek_mac_b64").length, 16);
      assert.equal(f("dek_ciphertext_b64").length, 32);
      assert.equal(f("secret_ciphertext_b64").length, value.length);
      const aead = AEADS[algorithm];
      const dek = aead(kek, f("dek_nonce_b64"), aad).decrypt(concat(f("dek_ciphertext_b64"), f("dek_mac_b64")));
      assert.equal(dek.length, 32);
      const plain = aead(dek, f("secret_nonce_b64"), aad).decrypt(
        concat(f("secret_ciphertext_b64"), f("secret_mac_b64")),
      );
      assert.deepEqual(plain, value);
    });
  }
});

describe("both cipher paths write and read the same envelopes", () => {
  // The vault's cipher hands AES-GCM values of LARGE_VALUE_BYTES or more to the runtime (its own AES-GCM where it
  // has one, node:crypto on Node and Bun, else WebCrypto: both are checked), and small values and the data key to
  // its engine, WebCrypto or noble; the sync path runs @noble/ciphers for every size. Each must open what the other
  // wrote, on both sides of that threshold (empty, under one block, block edges, 4 KiB, 64 KiB), for both
  // algorithms, and with either engine for small values.
  const SIZES = [0, 1, 15, 16, 17, 255, 4096, 65536];
  for (const algorithm of ["aes_256_gcm", "chacha20_poly1305"] as const) {
    for (const [engine, native] of ENGINES.flatMap((e) => [[e, undefined], [e, nativeCrypto]] as const)) {
      const large = native === undefined ? "WebCrypto" : "the runtime's AES-GCM";
      test(`sync → async and async → sync (${algorithm}, small values on ${engine}, large on ${large})`, async () => {
        const kek = fromHex(V.kek[0]!.kek_hex);
        const cipher = new EnvelopeCipher(kek, engine, undefined, native);
        assert.ok(SIZES.some((n) => n < LARGE_VALUE_BYTES) && SIZES.some((n) => n >= LARGE_VALUE_BYTES));
        for (const size of SIZES) {
          const value = globalThis.crypto.getRandomValues(new Uint8Array(size));
          const fromNoble = sealEnvelope(kek, "ws:acme", "k", value, algorithm);
          assert.deepEqual(await cipher.open("ws:acme", "k", fromNoble), value, `${size} bytes, sync → async`);
          const fromWeb = await cipher.seal("ws:acme", "k", value, algorithm);
          assert.deepEqual(openEnvelope(kek, "ws:acme", "k", fromWeb), value, `${size} bytes, async → sync`);
          const env = JSON.parse(new TextDecoder().decode(fromWeb)) as Record<string, unknown>;
          assert.deepEqual(Object.keys(env), [...ENVELOPE_FIELDS], "same fields in the same order");
          assert.equal(env.algorithm, algorithm);
          assert.equal(env.kek_id, V.kek[0]!.kek_id);
          // A flipped bit anywhere in the sealed value is the same crypto error on both paths.
          if (size > 0) {
            const tampered = JSON.parse(new TextDecoder().decode(fromWeb)) as Record<string, string>;
            const ct = b64(tampered.secret_ciphertext_b64!, "ct");
            ct[size >> 1]! ^= 0x80;
            tampered.secret_ciphertext_b64 = toBase64(ct);
            const bad = utf8(JSON.stringify(tampered));
            assert.throws(() => openEnvelope(kek, "ws:acme", "k", bad), isCryptoError);
            await assert.rejects(cipher.open("ws:acme", "k", bad), isCryptoError);
          }
        }
        // Palyra's daemon writes no kek_id: a null id leaves it out on both sides of the threshold.
        for (const size of [1, LARGE_VALUE_BYTES]) {
          const sealed = await cipher.seal("global", "k", new Uint8Array(size), algorithm, null);
          assert.equal("kek_id" in JSON.parse(new TextDecoder().decode(sealed)), false);
        }
      });
    }
  }
});

test("a large value goes to the runtime's own AES-GCM and base64 when it has them (its data key too on the webcrypto engine), a small value never to its AES-GCM", async () => {
  const native = await nativeCrypto();
  // Deno has none by design (its WebCrypto is the faster there); Node and Bun have node:crypto's, and Node's Buffer
  // base64 where Uint8Array has none (Node 20 and 22).
  assert.equal(native === undefined, runtimeName() === "deno");
  const builtIn = typeof (Uint8Array.prototype as { toBase64?: unknown }).toBase64 === "function";
  if (native !== undefined) assert.equal(native.base64 === undefined, builtIn);
  // Counted on every runtime, over node:crypto and Buffer (Deno's Node layer has both).
  const calls = { seal: 0, open: 0, write: 0, decodeInto: 0 };
  const aes = fromNodeCrypto(await import("node:crypto"));
  const codec = fromNodeBuffer(Buffer);
  const counting: NativeCrypto = {
    aesGcm: {
      seal: (...a) => (calls.seal++, aes.seal(...a)),
      open: (...a) => (calls.open++, aes.open(...a)),
    },
    base64: {
      write: (...a) => (calls.write++, codec.write(...a)),
      decodeInto: (...a) => (calls.decodeInto++, codec.decodeInto(...a)),
    },
  };
  const kek = fromHex(V.kek[0]!.kek_hex);
  for (const engine of ENGINES) {
    const cipher = new EnvelopeCipher(kek, engine, undefined, () => Promise.resolve(counting));
    const big = globalThis.crypto.getRandomValues(new Uint8Array(LARGE_VALUE_BYTES));
    const sealed = await cipher.seal("global", "k", big);
    assert.deepEqual(await cipher.open("global", "k", sealed), big);
    assert.deepEqual(openEnvelope(kek, "global", "k", sealed), big, "the reference opens it");
    await cipher.open("global", "k", await cipher.seal("global", "k", new Uint8Array(LARGE_VALUE_BYTES - 1)));
  }
  // A large value: one AES-GCM call to seal and one to open, its seven base64 fields written; on the webcrypto
  // engine, one more each for its data key under the KEK, which a WebCrypto call would leave waiting on a thread
  // pool. Opening chooses by the envelope's length, before reading it: the 4095-byte value's envelope is read
  // through the codec too.
  const n = ENGINES.length;
  assert.deepEqual([...ENGINES].sort(), ["noble", "webcrypto"]);
  assert.deepEqual(calls, { seal: n + 1, open: n + 1, write: 7 * n, decodeInto: 2 * 7 * n });
});

// ---------------------------------------------------------------------------------------------
// Project Wycheproof against the noble primitives the library uses

function checkAead(
  file: string,
  wanted: (group: Record<string, unknown>) => boolean,
  make: Aead,
): { valid: number; invalid: number } {
  const doc = readJson(`wycheproof/${file}`) as WycheproofFile<AeadCase>;
  let valid = 0;
  let invalid = 0;
  for (const group of doc.testGroups) {
    if (!wanted(group)) continue;
    for (const t of group.tests) {
      const what = `${file} tcId ${t.tcId} (${t.comment || t.flags.join(",")})`;
      const key = fromHex(t.key);
      const iv = fromHex(t.iv);
      const aad = fromHex(t.aad);
      const msg = fromHex(t.msg);
      const sealed = concat(fromHex(t.ct), fromHex(t.tag));
      if (t.result === "valid") {
        assert.equal(toHex(make(key, iv, aad).encrypt(msg)), toHex(sealed), `${what}: encrypt`);
        assert.equal(toHex(make(key, iv, aad).decrypt(sealed)), t.msg, `${what}: decrypt`);
        valid++;
      } else if (t.result === "invalid") {
        assert.throws(() => make(key, iv, aad).decrypt(sealed), `${what}: must not decrypt`);
        invalid++;
      }
    }
  }
  return { valid, invalid };
}

describe("SHA-256 on this runtime (Bun's own, else @noble/hashes), which names every object and KEK", () => {
  test("the examples of FIPS 180-2, appendix B", () => {
    const cases: [Uint8Array, string][] = [
      [utf8("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
      [
        utf8("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
      ],
      [new Uint8Array(1_000_000).fill(0x61), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"],
      [new Uint8Array(0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    ];
    for (const [input, digest] of cases) {
      const out = runtimeSha256(input);
      assert.ok(out instanceof Uint8Array && out.length === 32);
      assert.equal(toHex(out), digest, `${input.length} bytes`);
    }
  });

  test("the same digest as @noble/hashes for any bytes, a view into a larger buffer or a Node Buffer", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(16), fc.nat(16), (bytes, before, after) => {
        const expected = toHex(sha256(bytes));
        const backing = new Uint8Array(before + bytes.length + after).fill(0xa5);
        backing.set(bytes, before);
        assert.equal(toHex(runtimeSha256(backing.subarray(before, before + bytes.length))), expected);
        assert.equal(toHex(runtimeSha256(Buffer.from(bytes))), expected);
        assert.equal(toHex(runtimeSha256(bytes)), expected);
      }),
      { numRuns: 300 },
    );
  });
});

describe("Wycheproof vectors through the AEAD primitives the library uses", () => {
  test("AES-256-GCM, 96-bit nonces (@noble/ciphers gcm)", () => {
    const n = checkAead(
      "aes_gcm_test.json",
      (g) => g.keySize === 256 && g.ivSize === 96 && g.tagSize === 128,
      (k, iv, a) => gcm(k, iv, a),
    );
    assert.ok(n.valid > 0, "valid AES-GCM cases checked");
    assert.ok(n.invalid > 0, "invalid AES-GCM cases checked");
  });

  test("AES-256-GCM, 96-bit nonces (WebCrypto, the vault's own path)", async () => {
    const doc = readJson("wycheproof/aes_gcm_test.json") as WycheproofFile<AeadCase>;
    let valid = 0;
    let invalid = 0;
    for (const group of doc.testGroups) {
      if (!(group.keySize === 256 && group.ivSize === 96 && group.tagSize === 128)) continue;
      for (const t of group.tests) {
        const what = `aes_gcm_test.json tcId ${t.tcId} (${t.comment || t.flags.join(",")})`;
        // WebCrypto takes ArrayBuffer-backed views only.
        const buf = (b: Uint8Array) => b as Uint8Array<ArrayBuffer>;
        const key = await crypto.subtle.importKey("raw", buf(fromHex(t.key)), "AES-GCM", false, [
          "encrypt",
          "decrypt",
        ]);
        const params = { name: "AES-GCM", iv: buf(fromHex(t.iv)), additionalData: buf(fromHex(t.aad)), tagLength: 128 };
        const sealed = buf(concat(fromHex(t.ct), fromHex(t.tag)));
        if (t.result === "valid") {
          assert.equal(
            toHex(new Uint8Array(await crypto.subtle.encrypt(params, key, buf(fromHex(t.msg))))),
            toHex(sealed),
            what,
          );
          assert.equal(toHex(new Uint8Array(await crypto.subtle.decrypt(params, key, sealed))), t.msg, what);
          valid++;
        } else if (t.result === "invalid") {
          await assert.rejects(crypto.subtle.decrypt(params, key, sealed), `${what}: must not decrypt`);
          invalid++;
        }
      }
    }
    assert.ok(valid > 0 && invalid > 0, "valid and invalid AES-GCM cases checked");
  });

  test("AES-256-GCM, 96-bit nonces (the runtime's own: node:crypto on Node and Bun; none on Deno)", async () => {
    const native = (await nativeCrypto())?.aesGcm;
    if (runtimeName() === "deno") return assert.equal(native, undefined);
    assert.ok(native !== undefined);
    const n = checkAead(
      "aes_gcm_test.json",
      (g) => g.keySize === 256 && g.ivSize === 96 && g.tagSize === 128,
      (k, iv, a) => ({ encrypt: (m) => concat(...native.seal(k, iv, a, m)), decrypt: (c) => native.open(k, iv, a, c) }),
    );
    assert.ok(n.valid > 0 && n.invalid > 0, "valid and invalid AES-GCM cases checked");
  });

  test("the runtime's own AES-GCM agrees with WebCrypto at every size, and opens into memory that holds nothing else", async () => {
    const native = (await nativeCrypto())?.aesGcm;
    if (runtimeName() === "deno") return assert.equal(native, undefined);
    assert.ok(native !== undefined);
    const key = globalThis.crypto.getRandomValues(new Uint8Array(32));
    const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
    const aad = new Uint8Array(utf8("palyra.vault.v1|global|k"));
    const web = await globalThis.crypto.subtle.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
    for (const size of [0, 1, 16, 32, 4095, 4096, 65536]) {
      const plain = globalThis.crypto.getRandomValues(new Uint8Array(size));
      const sealed = concat(...native.seal(key, iv, aad, plain));
      const expected = await globalThis.crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, web, plain);
      assert.equal(toHex(sealed), toHex(new Uint8Array(expected)), `${size} bytes sealed`);
      const opened = native.open(key, iv, aad, sealed);
      // A plain Uint8Array (a Buffer would compare unequal, and may be a slice of a shared pool that its owner cannot
      // wipe): whatever else its memory holds is zero, so wiping it leaves no plaintext behind.
      assert.equal(Object.getPrototypeOf(opened), Uint8Array.prototype, `${size} bytes opened`);
      assert.deepEqual(opened, plain, `${size} bytes opened`);
      const all = new Uint8Array(opened.buffer);
      const outside = [...all.subarray(0, opened.byteOffset), ...all.subarray(opened.byteOffset + opened.length)];
      assert.ok(outside.every((b) => b === 0), `${size} bytes opened: the rest of its memory is zero`);
    }
  });

  test("ChaCha20-Poly1305, 96-bit nonces (@noble/ciphers chacha20poly1305)", () => {
    const n = checkAead(
      "chacha20_poly1305_test.json",
      (g) => g.ivSize === 96 && g.keySize === 256 && g.tagSize === 128,
      (k, iv, a) => chacha20poly1305(k, iv, a),
    );
    assert.ok(n.valid > 0, "valid ChaCha20-Poly1305 cases checked");
    assert.ok(n.invalid > 0, "invalid ChaCha20-Poly1305 cases checked");
  });

  test("HKDF-SHA256 (@noble/hashes hkdf)", () => {
    const doc = readJson("wycheproof/hkdf_sha256_test.json") as WycheproofFile<HkdfCase>;
    assert.equal(doc.algorithm, "HKDF-SHA-256");
    let valid = 0;
    let invalid = 0;
    for (const group of doc.testGroups) {
      for (const t of group.tests) {
        const what = `hkdf_sha256_test.json tcId ${t.tcId} (${t.comment || t.flags.join(",")})`;
        const ikm = fromHex(t.ikm);
        const salt = fromHex(t.salt);
        const info = fromHex(t.info);
        if (t.result === "valid") {
          assert.equal(toHex(hkdf(sha256, ikm, salt, info, t.size)), t.okm, what);
          valid++;
        } else if (t.result === "invalid") {
          // The only invalid HKDF cases are sizes above 255 × 32 bytes: noble must refuse them.
          assert.ok(t.size > 255 * 32 || t.flags.includes("SizeTooLarge"), `${what}: unexpected kind of invalid case`);
          assert.throws(() => hkdf(sha256, ikm, salt, info, t.size), what);
          invalid++;
        }
      }
    }
    assert.ok(valid > 0, "valid HKDF cases checked");
    assert.ok(invalid > 0, "invalid HKDF cases checked");
  });
});
