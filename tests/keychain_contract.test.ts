/**
 * Contract tests for the macOS Keychain and Windows DPAPI backends against
 * emulators of `security` and `powershell` (tests/fakes/) put first on PATH:
 * exact command lines, the stdin protocols, error mapping, and a canary that
 * never appears in any recorded argv or environment.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Vault } from "../src/vault.ts";
import { MACOS_MAX_PAYLOAD_BYTES, MacosKeychainBackend } from "../src/backends/macos_keychain.ts";
import { DPAPI_ARGS, WindowsDpapiBackend } from "../src/backends/windows_dpapi.ts";
import { objectId } from "../src/crypto/ids.ts";
import { toBase64 } from "../src/crypto/encoding.ts";
import { defaultFileSystem } from "../src/platform/fs.ts";
import { type CommandRunner, runnerWithEnv } from "../src/platform/subprocess.ts";
import { emulatorPath, hex, randomBytes, rejectsWith, tempDir, testKek } from "./helpers.ts";
import { vaultSuite } from "./backend_suite.ts";

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
  return { dir, log, calls, path: emulatorPath() };
}

function fakeMac(mode = "") {
  const { dir, log, calls, path } = emulator("fake-mac");
  const env = { PATH: path, FAKE_KEYCHAIN_DIR: dir, FAKE_KEYCHAIN_LOG: log, FAKE_KEYCHAIN_MODE: mode };
  return { backend: new MacosKeychainBackend({ run: runnerWithEnv(env) }), calls, dir };
}

/** The environment of the emulated powershell, and its call log. */
function winEnv(mode = "") {
  const { dir, log, calls, path } = emulator("fake-win");
  const env = { PATH: path, FAKE_DPAPI_LOG: log, FAKE_DPAPI_MODE: mode, FAKE_DPAPI_USER_KEY: "user-key-of-the-test" };
  return { dir, env, calls, run: runnerWithEnv(env) };
}

function fakeWin(mode = "") {
  const { dir, calls, run } = winEnv(mode);
  const root = join(dir, "vault");
  return { root, backend: new WindowsDpapiBackend(root, defaultFileSystem, { run }), calls };
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

/** The one script of 3d5a40a, which branched on a mode line: `if {…}; elseif {…}` never parses. */
const OLD_JOINED_SCRIPT = [
  "$ErrorActionPreference = 'Stop'",
  "Add-Type -AssemblyName System.Security",
  "$mode = [Console]::In.ReadLine()",
  "$entropy = [Text.Encoding]::UTF8.GetBytes([Console]::In.ReadLine())",
  "$data = [Convert]::FromBase64String([Console]::In.ReadLine())",
  "$scope = [Security.Cryptography.DataProtectionScope]::CurrentUser",
  "try {",
  "  if ($mode -eq 'protect') { $out = [Security.Cryptography.ProtectedData]::Protect($data, $entropy, $scope) }",
  "  elseif ($mode -eq 'unprotect') { $out = [Security.Cryptography.ProtectedData]::Unprotect($data, $entropy, $scope) }",
  "  else { [Console]::Error.WriteLine('palyra: unknown mode'); exit 2 }",
  "  [Console]::Out.Write([Convert]::ToBase64String($out))",
  "} catch [Security.Cryptography.CryptographicException] {",
  "  [Console]::Error.WriteLine('palyra: cryptographic error: ' + $_.Exception.Message); exit 3",
  "}",
].join("; ");

/** Opens a new vault with `auto` as if on Windows, with the given command runner. */
async function openAutoOnWindows(run: CommandRunner) {
  const root = join(tempDir("auto-win"), "vault");
  const vault = await Vault.open({ root, kek: testKek(36), backend: "auto", host: { platform: "win32", run } });
  return { root, vault };
}

describe("windows_dpapi contract", () => {
  test("on Windows the identity store key is kept DPAPI-protected; another user cannot unprotect it", async () => {
    const { dir, env, calls, run } = winEnv();
    const identityRoot = join(dir, "identity");
    const root = join(dir, "vault");
    const vault = await Vault.open({ root, identityRoot, backend: "encrypted_file", host: { platform: "win32", run } });
    await vault.putSecret("global", "k", "v");
    const stored = new Uint8Array(readFileSync(join(identityRoot, ".store-key.v1")));
    assert.notEqual(stored.length, 32, "the file holds a protected blob, not the raw key");
    const protects = calls().filter((c) => c.argv[3]!.includes("]::Protect("));
    assert.equal(protects.length, 1);
    assert.equal(protects[0]!.stdin.split("\n")[0], "", "no entropy, as the daemon protects it");
    const again = await Vault.open({ root, identityRoot, host: { platform: "win32", run } });
    assert.equal((await again.getSecret("global", "k")).text(), "v");
    const otherUser = runnerWithEnv({ ...env, FAKE_DPAPI_USER_KEY: "another-user" });
    await rejectsWith(
      () => Vault.open({ root, identityRoot, host: { platform: "win32", run: otherUser } }),
      "identity",
      /unprotecting the store key failed/,
    );
    assert.deepEqual(new Uint8Array(readFileSync(join(identityRoot, ".store-key.v1"))), stored, "never replaced");
  });

  test("the emulator refuses the old joined script like PowerShell's parser: a ; before elseif", async () => {
    const { run } = winEnv();
    const id = objectId("global", "k");
    const stdin = new TextEncoder().encode(`protect\n${id}\n${toBase64(randomBytes(30))}\n`);
    const r = await run("powershell", ["-NoProfile", "-NonInteractive", "-Command", OLD_JOINED_SCRIPT], { stdin });
    assert.equal(r.code, 1, `the old script ran: exit ${r.code}, ${r.stderr}`);
    assert.match(r.stderr, /Unexpected token 'elseif'/);
    assert.equal(r.stdout.length, 0);
  });

  test("the emulator refuses each separator PowerShell rejects, and a script that branches on a mode", async () => {
    const { run } = winEnv();
    const call = "$out = [Security.Cryptography.ProtectedData]::Protect($d, $e, $s)";
    const cases: [string, RegExp][] = [
      [`if ($a) { ${call} } ;\n  else { exit 2 }`, /Unexpected token 'else'/],
      [`if ($a) { ${call} }; ElseIf ($b) { exit 2 }`, /Unexpected token 'ElseIf'/],
      [`try { ${call} }; catch { exit 3 }`, /The Try statement is missing its Catch or Finally block/],
      [`try { ${call} } ;\n finally { exit 3 }`, /The Try statement is missing its Catch or Finally block/],
      [
        `if ($m) { ${call} }\nelse { $out = [Security.Cryptography.ProtectedData]::Unprotect($d, $e, $s) }`,
        /exactly one of Protect and Unprotect/,
      ],
    ];
    for (const [script, why] of cases) {
      const r = await run("powershell", ["-NoProfile", "-NonInteractive", "-Command", script], {
        stdin: new TextEncoder().encode("x\nAAAA\n"),
      });
      assert.notEqual(r.code, 0, `accepted: ${script}`);
      assert.match(r.stderr, why);
    }
  });

  test("one constant script per operation that parses; the payload only on stdin; blobs in objects_dpapi/", async () => {
    const { root, backend, calls } = fakeWin();
    const id = objectId("ws:acme", "token");
    const payload = randomBytes(300);
    await backend.put(id, payload);
    assert.deepEqual(await backend.get(id), payload);
    assert.ok(existsSync(join(root, "objects_dpapi", id)));
    const c = calls();
    assert.equal(c.length, 2);
    assert.deepEqual(c[0]!.argv, DPAPI_ARGS.protect);
    assert.deepEqual(c[1]!.argv, DPAPI_ARGS.unprotect);
    for (const args of [DPAPI_ARGS.protect, DPAPI_ARGS.unprotect]) {
      assert.deepEqual(args.slice(0, 3), ["-NoProfile", "-NonInteractive", "-Command"]);
      assert.equal(args.length, 4);
      const script = args[3]!;
      assert.ok(!/EncodedCommand/i.test(script));
      assert.ok(!script.includes('"'), "powershell.exe strips double quotes from its command line");
      assert.ok(!/;\s*(elseif|else|catch|finally)\b/i.test(script), "a ; ends an if or try in PowerShell");
      assert.ok(!/\$mode|\bif\s*\(/i.test(script), "no branching on a mode");
      assert.match(script, /DataProtectionScope\]::CurrentUser/);
    }
    assert.match(DPAPI_ARGS.protect[3]!, /ProtectedData\]::Protect\(/);
    assert.match(DPAPI_ARGS.unprotect[3]!, /ProtectedData\]::Unprotect\(/);
    // stdin: the entropy (the object id), then the padded base64 input.
    assert.equal(c[0]!.stdin, `${id}\n${toBase64(payload)}\n`);
    assert.equal(c[1]!.stdin.split("\n")[0], id);
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
    const e = await rejectsWith(() => backend.get(b), "crypto", /DPAPI could not unprotect/);
    assert.match(e.message, /CryptographicException: The data is invalid/);
    await rejectsWith(() => backend.get(objectId("global", "none")), "not_found");
    await rejectsWith(() => fakeWin("denied").backend.put(a, randomBytes(8)), "permission", /denied/);
    const broken = await rejectsWith(() => fakeWin("broken").backend.put(a, randomBytes(8)), "io", /exit 3/);
    assert.match(broken.hint ?? "", /encrypted_file/);
  });

  test("a protected blob over the size cap is refused unread, before powershell runs", async () => {
    const { dir, calls, run } = winEnv();
    const root = join(dir, "vault");
    const backend = new WindowsDpapiBackend(root, defaultFileSystem, { run, maxObjectBytes: 1000 });
    const id = objectId("global", "big");
    await backend.put(id, randomBytes(1000));
    assert.equal((await backend.get(id)).length, 1000);
    const before = calls().length;
    writeFileSync(join(root, "objects_dpapi", id), new Uint8Array(1000 + 4096 + 1));
    await rejectsWith(() => backend.get(id), "value_too_large", /at most 5096 are read/);
    assert.equal(calls().length, before);
  });

  test("objects_dpapi/ swapped for a link is never followed, before powershell runs", async () => {
    const { dir, calls, run } = winEnv();
    const root = join(dir, "vault");
    const backend = new WindowsDpapiBackend(root, defaultFileSystem, { run });
    const id = objectId("global", "k");
    await backend.put(id, randomBytes(100));
    const elsewhere = join(dir, "elsewhere");
    renameSync(join(root, "objects_dpapi"), elsewhere);
    symlinkSync(elsewhere, join(root, "objects_dpapi"), "dir");
    const before = calls().length;
    await rejectsWith(() => backend.get(id), "permission", /not a real folder/);
    await rejectsWith(() => backend.delete(id), "permission", /not a real folder/);
    assert.equal(calls().length, before);
    assert.equal(readdirSync(elsewhere).length, 1);
  });

  test("auto on Windows probes with a round trip through both scripts, then records windows_dpapi on the first put", async () => {
    const { run, calls } = winEnv();
    const { root, vault } = await openAutoOnWindows(run);
    assert.equal(vault.backendKind, "windows_dpapi");
    const probe = calls();
    assert.deepEqual(probe.map((x) => x.argv), [DPAPI_ARGS.protect, DPAPI_ARGS.unprotect]);
    assert.equal(probe[0]!.stdin.split("\n")[0], "palyra-probe");
    await vault.putSecret("global", "k", "v");
    assert.equal(readFileSync(join(root, "backend.kind"), "utf8"), "windows_dpapi");
    using got = await vault.getSecret("global", "k");
    assert.equal(got.text(), "v");
    assert.equal(readdirSync(join(root, "objects_dpapi")).length, 1);
  });

  for (
    const [label, mode] of [
      ["access is denied", "denied"],
      ["System.Security does not load", "broken"],
      ["protect returns its input", "echo"],
      ["unprotect returns other bytes", "garble"],
    ] as const
  ) {
    test(`auto on Windows with a failing PowerShell (${label}) chooses encrypted_file and records it`, async () => {
      const { run } = winEnv(mode);
      const { root, vault } = await openAutoOnWindows(run);
      await vault.putSecret("global", "k", "v");
      assert.equal(vault.backendKind, "encrypted_file");
      assert.equal(readFileSync(join(root, "backend.kind"), "utf8"), "encrypted_file");
      using got = await vault.getSecret("global", "k");
      assert.equal(got.text(), "v");
      assert.ok(!existsSync(join(root, "objects_dpapi")));
    });
  }

  test("auto on Windows without powershell chooses encrypted_file and records it", async () => {
    const { root, vault } = await openAutoOnWindows(runnerWithEnv({ PATH: "/nonexistent" }));
    await vault.putSecret("global", "k", "v");
    assert.equal(vault.backendKind, "encrypted_file");
    assert.equal(readFileSync(join(root, "backend.kind"), "utf8"), "encrypted_file");
  });

  test("the probe reports why: a PowerShell that does not answer in time is unavailable", async () => {
    const started = Date.now();
    const p = await WindowsDpapiBackend.probe(winEnv("hang").run, 500);
    assert.equal(p.available, false);
    assert.match(p.reason, /timed out after 500 ms/);
    assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
    const ok = await WindowsDpapiBackend.probe(winEnv().run);
    assert.deepEqual(ok, { available: true, reason: "a DPAPI round trip through powershell worked" });
    const denied = await WindowsDpapiBackend.probe(winEnv("denied").run);
    assert.equal(denied.available, false);
    assert.match(denied.reason, /probe DPAPI \(protect\) failed: access was denied/);
  });
});
