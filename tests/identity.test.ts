/** The device identity (SPEC §4). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Vault } from "../src/vault.ts";
import { identityKek, loadOrCreateIdentity } from "../src/identity.ts";
import { nodeFileSystem } from "../src/platform/fs.ts";
import { deriveKek, kekId } from "../src/crypto/kdf.ts";
import { utf8 } from "../src/crypto/encoding.ts";
import { rejectsWith, runScript, RUNTIME_NAMES, tempDir } from "./helpers.ts";

const PEM =
  "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";

describe("device identity", () => {
  test("the first open creates a P-256 PKCS#8 identity, 0600, and later opens reuse it", async () => {
    const dir = tempDir("id");
    const idDir = join(dir, "identity");
    const first = await loadOrCreateIdentity(nodeFileSystem, idDir);
    assert.equal(first.created, true);
    const file = join(idDir, "state.v1.json");
    assert.equal(lstatSync(file).mode & 0o777, 0o600);
    const doc = JSON.parse(readFileSync(file, "utf8"));
    assert.equal(doc.version, 1);
    assert.match(
      doc.ca.private_key_pem,
      /^-----BEGIN PRIVATE KEY-----\n([A-Za-z0-9+/=]{1,64}\n)+-----END PRIVATE KEY-----\n$/,
    );
    assert.ok(Math.abs(doc.ca.created_at_unix_ms - Date.now()) < 60_000);
    // The PEM really is a P-256 key that WebCrypto can import.
    const der = Uint8Array.from(
      atob(doc.ca.private_key_pem.replace(/-----[^-]+-----|\n/g, "")),
      (c) => c.charCodeAt(0),
    );
    await crypto.subtle.importKey("pkcs8", der, { name: "ECDSA", namedCurve: "P-256" }, true, ["sign"]);
    const second = await loadOrCreateIdentity(nodeFileSystem, idDir);
    assert.equal(second.created, false);
    assert.equal(second.privateKeyPem, first.privateKeyPem);

    const root = join(dir, "vault");
    const v1 = await Vault.open({ root, identityRoot: idDir });
    await v1.putSecret("global", "k", "persisted");
    const v2 = await Vault.open({ root, identityRoot: idDir });
    using got = await v2.getSecret("global", "k");
    assert.equal(got.text(), "persisted");
  });

  test("the KEK is derived from the PEM exactly as stored", async () => {
    const idDir = tempDir("id");
    writeFileSync(join(idDir, "state.v1.json"), JSON.stringify({ version: 1, ca: { private_key_pem: PEM } }));
    const id = await loadOrCreateIdentity(nodeFileSystem, idDir);
    assert.equal(kekId(identityKek(id)), kekId(deriveKek(utf8(PEM))));
    assert.notEqual(kekId(identityKek(id)), kekId(deriveKek(utf8(PEM.replaceAll("\n", "\r\n")))));
  });

  test("ca/state.json is read when state.v1.json is absent", async () => {
    const idDir = tempDir("id");
    mkdirSync(join(idDir, "ca"));
    writeFileSync(join(idDir, "ca", "state.json"), JSON.stringify({ private_key_pem: PEM }));
    const id = await loadOrCreateIdentity(nodeFileSystem, idDir);
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
    await rejectsWith(() => loadOrCreateIdentity(nodeFileSystem, idDir), "permission", /symbolic link/);
  });

  test("racing creators in one process all get the winner's identity", async () => {
    const idDir = join(tempDir("id"), "identity");
    const ids = await Promise.all(Array.from({ length: 12 }, () => loadOrCreateIdentity(nodeFileSystem, idDir)));
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
