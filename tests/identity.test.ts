/** The device identity and its store (docs/FORMAT.md §2). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { Vault } from "../src/vault.ts";
import { identityKek, loadIdentity, loadOrCreateIdentity } from "../src/store/identity_store.ts";
import { openStoreItem, sealStoreItem } from "../src/crypto/store_item.ts";
import { defaultFileSystem } from "../src/platform/fs.ts";
import { kekId } from "../src/crypto/kdf.ts";
import { deriveKek } from "../src/crypto/kdf_noble.ts";
import { utf8 } from "../src/crypto/encoding.ts";
import { rejectsWith, runScript, RUNTIME_NAMES, tempDir } from "./helpers.ts";

const PEM =
  "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";

describe("device identity", () => {
  test("the first write creates an identity store the daemon reads: store key, IDS1 items, a real CA", async () => {
    const dir = tempDir("id");
    const idDir = join(dir, "identity");
    const first = await loadOrCreateIdentity({ fs: defaultFileSystem }, idDir);
    assert.equal(first.created, true);
    const keyFile = join(idDir, ".store-key.v1");
    const storeKey = readFileSync(keyFile);
    assert.equal(storeKey.length, 32);
    const item = (name: string) => {
      const path = join(idDir, Buffer.from(name, "utf8").toString("hex"));
      assert.equal(lstatSync(path).mode & 0o777, 0o600, name);
      const bytes = new Uint8Array(readFileSync(path));
      assert.deepEqual(bytes.subarray(0, 4), utf8("IDS1"), name);
      return JSON.parse(new TextDecoder().decode(openStoreItem(new Uint8Array(storeKey), bytes)));
    };
    assert.equal(lstatSync(keyFile).mode & 0o777, 0o600);
    assert.equal(lstatSync(idDir).mode & 0o777, 0o700);
    const ca = item("identity/ca/state.json");
    assert.deepEqual(Object.keys(ca), ["certificate_pem", "private_key_pem", "sequence"]);
    assert.equal(ca.sequence, 0);
    assert.equal(ca.private_key_pem, first.privateKeyPem);
    assert.match(
      ca.private_key_pem,
      /^-----BEGIN PRIVATE KEY-----\n([A-Za-z0-9+/=]{1,64}\n)+-----END PRIVATE KEY-----\n$/,
    );
    assert.deepEqual(item("identity/state.v1.json"), {
      generation: 1,
      paired_devices: {},
      revoked_devices: {},
      revoked_certificate_fingerprints: [],
    });
    // Nothing of this project's 0.1 plaintext layout is created.
    assert.deepEqual(
      readdirSync(idDir).sort(),
      [
        ".store-key.v1",
        Buffer.from("identity/ca/state.json").toString("hex"),
        Buffer.from("identity/state.v1.json").toString("hex"),
      ].sort(),
    );
    // The key is a P-256 PKCS#8 key; the certificate is a self-signed CA for exactly that key,
    // checked with Node's own X.509 parser rather than the library that made it.
    const key = createPrivateKey(ca.private_key_pem);
    assert.equal(key.asymmetricKeyDetails?.namedCurve, "prime256v1");
    const cert = new X509Certificate(ca.certificate_pem);
    assert.equal(cert.subject, "CN=Palyra Gateway CA");
    assert.equal(cert.issuer, "CN=Palyra Gateway CA");
    assert.equal(cert.ca, true);
    assert.ok(cert.checkPrivateKey(key));
    assert.ok(cert.verify(cert.publicKey));
    const second = await loadOrCreateIdentity({ fs: defaultFileSystem }, idDir);
    assert.equal(second.created, false);
    assert.equal(second.privateKeyPem, first.privateKeyPem);

    const root = join(dir, "vault");
    const v1 = await Vault.open({ root, identityRoot: idDir });
    await v1.putSecret("global", "k", "persisted");
    const v2 = await Vault.open({ root, identityRoot: idDir });
    using got = await v2.getSecret("global", "k");
    assert.equal(got.text(), "persisted");
  });

  test("store items: legacy plaintext is read; an encrypted item without its key, or tampered, is an identity error", async () => {
    const idDir = tempDir("id");
    const caFile = join(idDir, Buffer.from("identity/ca/state.json").toString("hex"));
    writeFileSync(caFile, JSON.stringify({ certificate_pem: "", private_key_pem: PEM, sequence: 0 }));
    assert.equal((await loadIdentity({ fs: defaultFileSystem }, idDir))?.privateKeyPem, PEM);
    // The older state form embeds the CA; it wins over the CA item.
    const stateFile = join(idDir, Buffer.from("identity/state.v1.json").toString("hex"));
    const other = PEM.replace("MIGH", "MIGG");
    const storeKey = new Uint8Array(32).fill(9);
    writeFileSync(
      stateFile,
      sealStoreItem(storeKey, utf8(JSON.stringify({ generation: 3, ca: { private_key_pem: other } }))),
    );
    await rejectsWith(
      () => loadIdentity({ fs: defaultFileSystem }, idDir),
      "identity",
      /store key ".store-key.v1" is missing/,
    );
    writeFileSync(join(idDir, ".store-key.v1"), storeKey);
    assert.equal((await loadIdentity({ fs: defaultFileSystem }, idDir))?.privateKeyPem, other);
    const sealed = readFileSync(stateFile);
    sealed[sealed.length - 1]! ^= 1;
    writeFileSync(stateFile, sealed);
    await rejectsWith(() => loadOrCreateIdentity({ fs: defaultFileSystem }, idDir), "identity", /does not decrypt/);
    assert.deepEqual(readFileSync(stateFile), sealed, "never replaced");
    // A state without a CA and no CA item is an error, never a new identity.
    rmSync(caFile);
    writeFileSync(stateFile, JSON.stringify({ generation: 1, paired_devices: {} }));
    await rejectsWith(() => loadOrCreateIdentity({ fs: defaultFileSystem }, idDir), "identity", /no CA key/);
    assert.equal(existsSync(caFile), false);
  });

  test("the KEK is derived from the PEM exactly as stored", async () => {
    const idDir = tempDir("id");
    writeFileSync(join(idDir, "state.v1.json"), JSON.stringify({ version: 1, ca: { private_key_pem: PEM } }));
    const id = await loadOrCreateIdentity({ fs: defaultFileSystem }, idDir);
    for (const engine of ["noble", "webcrypto"] as const) {
      assert.equal(kekId(await identityKek(id, engine)), kekId(deriveKek(utf8(PEM))), engine);
      assert.notEqual(kekId(await identityKek(id, engine)), kekId(deriveKek(utf8(PEM.replaceAll("\n", "\r\n")))));
    }
  });

  test("ca/state.json is read when state.v1.json is absent", async () => {
    const idDir = tempDir("id");
    mkdirSync(join(idDir, "ca"));
    writeFileSync(join(idDir, "ca", "state.json"), JSON.stringify({ private_key_pem: PEM }));
    const id = await loadOrCreateIdentity({ fs: defaultFileSystem }, idDir);
    assert.equal(id.created, false);
    assert.equal(id.privateKeyPem, PEM);
  });

  const broken: Array<[string, string | null, RegExp]> = [
    ["not JSON", "{oops", /not valid UTF-8 JSON/],
    ["another version", JSON.stringify({ version: 2, ca: { private_key_pem: PEM } }), /unsupported version 2/],
    ["no key", JSON.stringify({ version: 1, ca: {} }), /missing/],
    ["an empty key", JSON.stringify({ version: 1, ca: { private_key_pem: "  \n" } }), /empty/],
    ["an empty file", "", /not valid/],
    ["a folder in its place", null, /cannot be read/],
  ];
  for (const [what, content, rule] of broken) {
    test(`an identity file with ${what} is an identity error and is never replaced`, async () => {
      const idDir = tempDir("id");
      const file = join(idDir, "state.v1.json");
      if (content === null) mkdirSync(file);
      else writeFileSync(file, content);
      const e = await rejectsWith(() => Vault.open({ root: join(idDir, "v"), identityRoot: idDir }), "identity", rule);
      assert.match(e.hint ?? "", /never replaced/);
      if (content !== null) assert.equal(readFileSync(file, "utf8"), content);
      else assert.ok(lstatSync(file).isDirectory());
    });
  }

  test("a symbolic link at the identity file is refused", async () => {
    const dir = tempDir("id");
    const idDir = join(dir, "identity");
    mkdirSync(idDir, { mode: 0o700 });
    writeFileSync(join(dir, "elsewhere.json"), JSON.stringify({ version: 1, ca: { private_key_pem: PEM } }));
    symlinkSync(join(dir, "elsewhere.json"), join(idDir, "state.v1.json"));
    await rejectsWith(() => loadOrCreateIdentity({ fs: defaultFileSystem }, idDir), "permission", /symbolic link/);
  });

  test("racing creators in one process all get the winner's identity", async () => {
    const idDir = join(tempDir("id"), "identity");
    const ids = await Promise.all(
      Array.from({ length: 12 }, () => loadOrCreateIdentity({ fs: defaultFileSystem }, idDir)),
    );
    assert.equal(new Set(ids.map((i) => i.privateKeyPem)).size, 1);
    assert.equal(ids.filter((i) => i.created).length, 1);
  });

  test("racing processes of all three runtimes all get the winner's identity", async () => {
    const idDir = join(tempDir("id-mp"), "identity");
    const startAt = String(Date.now() + 2_500);
    const results = await Promise.all(
      RUNTIME_NAMES.flatMap((rt) => [rt, rt]).map((rt) =>
        runScript(rt, "tests/workers/vault_worker.ts", ["identity", idDir, startAt])
      ),
    );
    const lines = results.map((r) => {
      assert.equal(r.code, 0, r.stderr);
      return new TextDecoder().decode(r.stdout).trim();
    });
    assert.equal(new Set(lines.map((l) => l.split(" ")[1])).size, 1, lines.join("\n"));
    assert.equal(lines.filter((l) => l.endsWith("created=true")).length, 1, lines.join("\n"));
  });
});
