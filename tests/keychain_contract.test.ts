/**
 * Contract tests for the macOS Keychain and Windows DPAPI backends against
 * emulators of `security` and `powershell` (tests/fakes/) put first on PATH:
 * exact command lines, the stdin protocols, error mapping, and a canary that
 * never appears in any recorded argv or environment.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Vault } from "../src/vault.ts";
import { MACOS_MAX_PAYLOAD_BYTES, MacosKeychainBackend } from "../src/backends/macos_keychain.ts";
import { DPAPI_ARGS, WindowsDpapiBackend } from "../src/backends/windows_dpapi.ts";
import { objectId } from "../src/crypto/ids.ts";
import { toBase64 } from "../src/crypto/encoding.ts";
import { nodeFileSystem } from "../src/platform/fs.ts";
import { runnerWithEnv } from "../src/platform/subprocess.ts";
import { hex, randomBytes, rejectsWith, ROOT, tempDir, testKek } from "./helpers.ts";
import { vaultSuite } from "./backend_suite.ts";

const FAKES = join(ROOT, "tests", "fakes");
interface Call {
  argv: string[];
  env: Record<string, string>;
  stdin: string;
}

/** A folder for an emulator, its call log, and the PATH that puts the emulators first. */
function emulator(label: string) {
  const dir = tempDir(label);
  const log = join(dir, "log.jsonl");
  writeFileSync(log, "");
  const calls = (): Call[] => readFileSync(log, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
  return { dir, log, calls, path: `${FAKES}:${process.env.PATH ?? ""}` };
}

function fakeMac(mode = "") {
  const { dir, log, calls, path } = emulator("fake-mac");
  const env = { PATH: path, FAKE_KEYCHAIN_DIR: dir, FAKE_KEYCHAIN_LOG: log, FAKE_KEYCHAIN_MODE: mode };
  return { backend: new MacosKeychainBackend({ run: runnerWithEnv(env) }), calls, dir };
}

function fakeWin(mode = "") {
  const { dir, log, calls, path } = emulator("fake-win");
  const env = { PATH: path, FAKE_DPAPI_LOG: log, FAKE_DPAPI_MODE: mode, FAKE_DPAPI_USER_KEY: "user-key-of-the-test" };
  const root = join(dir, "vault");
  return { root, backend: new WindowsDpapiBackend(root, nodeFileSystem, { run: runnerWithEnv(env) }), calls };
}

/** No needle in any recorded argv or environment. */
function assertNotInArgvOrEnv(calls: Call[], needles: string[]): void {
  for (const c of calls) {
    const exposed = JSON.stringify([c.argv, c.env]);
    for (const n of needles) assert.ok(!exposed.includes(n), `leaked into argv/env: ${c.argv.join(" ").slice(0, 80)}`);
  }
}

vaultSuite("windows_dpapi (emulated powershell)", async () => {
  const { root, backend } = fakeWin();
  // Each operation starts an emulator process, so writers queue for longer than the default.
  const vault = await Vault.open({ root, kek: testKek(31), backend, lockTimeoutMs: 120_000 });
  return { vault, backend, openWithOtherKey: () => Vault.open({ root, kek: testKek(32), backend }) };
});

describe("macos_keychain contract", () => {
  test("exact command lines; the payload only on stdin; every store read back", async () => {
    const { backend, calls } = fakeMac();
    const id = objectId("global", "openai_api_key");
    const payload = randomBytes(500);
    await backend.put(id, payload);
    assert.deepEqual(await backend.get(id), payload);
    await backend.delete(id);
    await backend.delete(id); // idempotent
    await rejectsWith(() => backend.get(id), "not_found");
    const b64 = toBase64(payload);
    const c = calls();
    assert.deepEqual(c.map((x) => x.argv), [
      ["-i"],
      ["find-generic-password", "-s", "palyra.vault.v1", "-a", id, "-w"],
      ["find-generic-password", "-s", "palyra.vault.v1", "-a", id, "-w"],
      ["delete-generic-password", "-s", "palyra.vault.v1", "-a", id],
      ["delete-generic-password", "-s", "palyra.vault.v1", "-a", id],
      ["find-generic-password", "-s", "palyra.vault.v1", "-a", id, "-w"],
    ]);
    assert.equal(
      c[0]!.stdin,
      `add-generic-password -U -s palyra.vault.v1 -a ${id} -l "Palyra Vault Secret" -w ${b64}\n`,
    );
    assertNotInArgvOrEnv(c, [b64]);
  });

  test("a random 32-byte canary never appears in argv or environment", async () => {
    const { backend, calls } = fakeMac();
    const vault = await Vault.open({ root: join(tempDir("mac"), "vault"), kek: testKek(33), backend });
    const canary = randomBytes(32);
    for (let i = 0; i < 5; i++) {
      await vault.putSecret("ws:acme", `k${i}`, canary);
      using got = await vault.getSecret("ws:acme", `k${i}`);
      assert.deepEqual(got.bytes, canary);
    }
    const c = calls();
    assert.ok(c.some((x) => x.stdin.includes("add-generic-password")), "stores went through stdin");
    assertNotInArgvOrEnv(c, [hex(canary), toBase64(canary), Buffer.from(canary).toString("latin1")]);
    for (const x of c) {
      assert.ok(!Object.keys(x.env).some((k) => k.startsWith("PALYRA")), "no PALYRA_* variable reaches the child");
    }
  });

  test("errors: not found, locked or no UI, access denied, user cancelled, truncation", async () => {
    const id = objectId("global", "k");
    await rejectsWith(() => fakeMac().backend.get(id), "not_found");
    const locked = await rejectsWith(
      () => fakeMac("locked").backend.put(id, new Uint8Array(8)),
      "permission",
      /locked, or this session has no user interface/,
    );
    assert.match(locked.hint ?? "", /unlock-keychain/);
    await rejectsWith(() => fakeMac("denied").backend.get(id), "permission", /denied/);
    await rejectsWith(() => fakeMac("cancel").backend.get(id), "permission", /cancelled/);
    await rejectsWith(() => fakeMac("truncate").backend.put(id, randomBytes(600)), "io", /truncated/);
  });

  test("the vault refuses a value over the payload limit before running anything", async () => {
    const { backend, calls } = fakeMac();
    const vault = await Vault.open({ root: join(tempDir("mac"), "vault"), kek: testKek(34), backend });
    await vault.putSecret("global", "small", randomBytes(1000));
    const before = calls().length;
    const e = await rejectsWith(
      () => vault.putSecret("global", "big", randomBytes(MACOS_MAX_PAYLOAD_BYTES)),
      "value_too_large",
    );
    assert.match(e.message, new RegExp(`at most ${MACOS_MAX_PAYLOAD_BYTES}`));
    assert.match(e.hint ?? "", /encrypted_file/);
    assert.equal(calls().length, before);
    assert.deepEqual((await vault.listSecrets()).map((m) => m.key), ["small"]);
  });
});

describe("windows_dpapi contract", () => {
  test("a constant script, the payload only on stdin, blobs in objects_dpapi/", async () => {
    const { root, backend, calls } = fakeWin();
    const id = objectId("ws:acme", "token");
    const payload = randomBytes(300);
    await backend.put(id, payload);
    assert.deepEqual(await backend.get(id), payload);
    assert.ok(existsSync(join(root, "objects_dpapi", id)));
    const c = calls();
    for (const x of c) assert.deepEqual(x.argv, DPAPI_ARGS);
    assert.ok(!DPAPI_ARGS.some((a) => /EncodedCommand/i.test(a)));
    const [mode, entropy] = c[0]!.stdin.split("\n");
    assert.deepEqual([mode, entropy], ["protect", id]);
    assert.equal(c[1]!.stdin.split("\n")[0], "unprotect");
    const canary = randomBytes(32);
    const vault = await Vault.open({ root, kek: testKek(35), backend });
    await vault.putSecret("global", "canary", canary);
    using got = await vault.getSecret("global", "canary");
    assert.deepEqual(got.bytes, canary);
    assertNotInArgvOrEnv(calls(), [hex(canary), toBase64(canary), toBase64(payload)]);
    await backend.delete(id);
    assert.ok(!existsSync(join(root, "objects_dpapi", id)));
  });

  test("errors: a blob moved to another id fails like DPAPI (crypto); access denied is permission", async () => {
    const { root, backend } = fakeWin();
    const a = objectId("global", "a");
    const b = objectId("global", "b");
    await backend.put(a, randomBytes(64));
    await backend.put(b, randomBytes(64));
    writeFileSync(join(root, "objects_dpapi", b), readFileSync(join(root, "objects_dpapi", a)));
    await rejectsWith(() => backend.get(b), "crypto", /DPAPI could not unprotect/);
    await rejectsWith(() => backend.get(objectId("global", "none")), "not_found");
    await rejectsWith(() => fakeWin("denied").backend.put(a, randomBytes(8)), "permission", /denied/);
  });
});
