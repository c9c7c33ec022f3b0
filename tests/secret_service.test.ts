/**
 * The Linux Secret Service backend against a real gnome-keyring on a private
 * D-Bus session (docs/FORMAT.md §8; README, "Backends"): the shared vault suite, several processes of all
 * three runtimes, error mapping, `auto` on a desktop-like and a headless
 * machine, and a sampler that watches every process's argv and environment.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Vault } from "../src/vault.ts";
import { LinuxSecretServiceBackend } from "../src/backends/linux_secret_service.ts";
import { objectId } from "../src/crypto/ids.ts";
import { runnerWithEnv } from "../src/platform/subprocess.ts";
import { vaultSuite } from "./backend_suite.ts";
import {
  hex,
  randomBytes,
  rejectsWith,
  ROOT,
  run,
  runScript,
  RUNTIME_NAMES,
  RUNTIMES,
  tempDir,
  testKek,
} from "./helpers.ts";
import { secretService, withProcSampler } from "./secret_service_env.ts";

const unique = () => crypto.randomUUID().slice(0, 8);

vaultSuite("linux_secret_service (real gnome-keyring)", async () => {
  const ss = await secretService();
  const backend = new LinuxSecretServiceBackend({
    run: runnerWithEnv(ss.env),
    service: `palyra.vault.v1.test.${unique()}`,
  });
  const root = join(tempDir("ss-suite"), "vault");
  return {
    vault: await Vault.open({ root, kek: testKek(21), backend }),
    backend,
    openWithOtherKey: () => Vault.open({ root, kek: testKek(22), backend }),
  };
});

describe("linux_secret_service", () => {
  test("the envelope never reaches argv or environment of any process (sampled from /proc)", async () => {
    const ss = await secretService();
    const backend = new LinuxSecretServiceBackend({
      run: runnerWithEnv(ss.env),
      service: `palyra.vault.v1.test.${unique()}`,
    });
    const vault = await Vault.open({ root: join(tempDir("ss-canary"), "vault"), kek: testKek(23), backend });
    const canary = randomBytes(32);
    const canaryHex = new TextEncoder().encode(hex(canary));
    const sampled = await withProcSampler([canary, canaryHex], ["secret-tool"], async () => {
      const payloads: Uint8Array[] = [];
      for (let i = 0; i < 30; i++) {
        await vault.putSecret("ws:canary", `k${i % 3}`, canary);
        using got = await vault.getSecret("ws:canary", `k${i % 3}`);
        assert.deepEqual(got.bytes, canary);
        payloads.push(await backend.get(objectId("ws:canary", `k${i % 3}`)));
      }
      return payloads;
    });
    assert.deepEqual(sampled.hits, []);
    assert.ok(sampled.samples > 10, `only ${sampled.samples} samples`);
    assert.ok((sampled.seen["secret-tool"] ?? 0) > 0, "the sampler saw secret-tool processes");
  });

  test("several processes of all three runtimes put into shared scopes through the keyring", async () => {
    const ss = await secretService();
    const root = join(tempDir("ss-mp"), "vault");
    const kek = testKek(24);
    const scopes = [`ws:ss-${unique()}`, `pr:ss-${unique()}`];
    const startAt = String(Date.now() + 3_000);
    const workers = RUNTIME_NAMES.flatMap((rt) => [rt, rt]);
    const results = await Promise.all(
      workers.map((rt, i) =>
        runScript(rt, "tests/workers/vault_worker.ts", [
          "put",
          root,
          String(i),
          "15",
          scopes.join(","),
          startAt,
          "linux_secret_service",
        ], {
          input: hex(kek),
          env: ss.env,
        })
      ),
    );
    const acked = new Map<string, string>();
    for (const r of results) {
      assert.equal(r.code, 0, r.stderr);
      for (const line of new TextDecoder().decode(r.stdout).split("\n")) {
        const m = /^ok (\S+) (\S+) ([0-9a-f]+)$/.exec(line);
        if (m) acked.set(`${m[1]}/${m[2]}`, m[3]!);
      }
    }
    assert.equal(acked.size, workers.length * 15);
    assert.equal(readFileSync(join(root, "backend.kind"), "utf8"), "linux_secret_service");
    const vault = await Vault.open({ root, kek, host: { run: runnerWithEnv(ss.env) } });
    assert.equal(vault.backendKind, "linux_secret_service");
    for (const [ref, value] of acked) {
      using got = await vault.resolve(ref);
      assert.equal(hex(got.bytes), value, ref);
    }
    assert.equal((await vault.listSecrets()).length, acked.size);
  });

  test("not found, no D-Bus session and no secret-tool each get their own error and hint", async () => {
    const ss = await secretService();
    const ok = new LinuxSecretServiceBackend({
      run: runnerWithEnv(ss.env),
      service: `palyra.vault.v1.test.${unique()}`,
    });
    const id = objectId("global", "absent");
    await rejectsWith(() => ok.get(id), "not_found");
    await ok.delete(id); // idempotent
    const noBus = new LinuxSecretServiceBackend({
      run: runnerWithEnv({ DBUS_SESSION_BUS_ADDRESS: "unix:path=/nonexistent/bus" }),
    });
    const e1 = await rejectsWith(() => noBus.get(id), "backend_unavailable", /no D-Bus session/);
    assert.match(e1.hint ?? "", /encrypted_file/);
    await rejectsWith(() => noBus.put(id, new Uint8Array([1])), "backend_unavailable", /no D-Bus session/);
    const noTool = new LinuxSecretServiceBackend({ run: runnerWithEnv({ PATH: "/nonexistent" }) });
    await rejectsWith(() => noTool.get(id), "backend_unavailable", /"secret-tool" failed: it is not installed/);
  });

  test("auto picks the Secret Service on a desktop-like machine and the file backend on a headless one", async () => {
    const ss = await secretService();
    const desktop = join(tempDir("auto"), "vault");
    const v1 = await Vault.open({
      root: desktop,
      kek: testKek(25),
      backend: "auto",
      host: {
        run: runnerWithEnv(ss.env),
      },
    });
    assert.equal(v1.backendKind, "linux_secret_service");
    await v1.putSecret(`ws:auto-${unique()}`, "k", "v"); // the first write records the choice
    assert.equal(readFileSync(join(desktop, "backend.kind"), "utf8"), "linux_secret_service");

    const headless = join(tempDir("auto"), "vault");
    const noBus = runnerWithEnv({ DBUS_SESSION_BUS_ADDRESS: "unix:path=/nonexistent/bus" });
    const v2 = await Vault.open({ root: headless, kek: testKek(25), backend: "auto", host: { run: noBus } });
    assert.equal(v2.backendKind, "encrypted_file");
    const noTool = await Vault.open({
      root: join(tempDir("auto"), "vault"),
      kek: testKek(25),
      host: {
        run: runnerWithEnv({ PATH: "/nonexistent" }),
      },
    });
    assert.equal(noTool.backendKind, "encrypted_file");

    // The marker wins: the desktop vault opened headless is unavailable, and says why.
    const e = await rejectsWith(
      () => Vault.open({ root: desktop, kek: testKek(25), host: { run: noBus } }),
      "backend_unavailable",
      /created with the "linux_secret_service" backend .*no D-Bus session/,
    );
    assert.match(e.hint ?? "", /--vault-dir/);
    // Asking for it explicitly on a headless machine is unavailable too, and writes no marker.
    await rejectsWith(
      () =>
        Vault.open({
          root: join(tempDir("auto"), "vault"),
          kek: testKek(25),
          backend: "linux_secret_service",
          host: {
            run: noBus,
          },
        }),
      "backend_unavailable",
    );
  });

  test("the CLI selects it with --backend and PALYRA_VAULT_BACKEND; doctor reports it", async () => {
    const ss = await secretService();
    const dir = tempDir("ss-cli");
    const env = { ...ss.env, PALYRA_VAULT_DIR: join(dir, "v1"), PALYRA_IDENTITY_DIR: join(dir, "id") };
    const cli = RUNTIMES.bun(join(ROOT, "cli.ts"));
    const scope = `ws:cli-${unique()}`;
    const set = await run([...cli, "--backend", "linux_secret_service", "set", scope, "token"], {
      env,
      input: "from-cli",
    });
    assert.equal(set.code, 0, set.stderr);
    assert.equal(readFileSync(join(dir, "v1", "backend.kind"), "utf8"), "linux_secret_service");
    const got = await run([...cli, "get", scope, "token", "--reveal"], { env });
    assert.equal(new TextDecoder().decode(got.stdout), "from-cli");
    const viaEnv = await run([...cli, "set", scope, "token"], {
      env: { ...env, PALYRA_VAULT_DIR: join(dir, "v2"), PALYRA_VAULT_BACKEND: "linux_secret_service" },
      input: "from-env",
    });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.equal(readFileSync(join(dir, "v2", "backend.kind"), "utf8"), "linux_secret_service");
    const doctor = JSON.parse(new TextDecoder().decode((await run([...cli, "doctor", "--json"], { env })).stdout));
    assert.equal(doctor.backendInUse, "linux_secret_service");
    assert.equal(doctor.autoChoice.kind, "linux_secret_service");
    assert.deepEqual(doctor.backends.map((b: { kind: string; available: boolean }) => [b.kind, b.available]), [
      ["encrypted_file", true],
      ["macos_keychain", false],
      ["windows_dpapi", false],
      ["linux_secret_service", true],
    ]);
    assert.equal(doctor.vault.mode, "700");
  });

  test("regression: the test's D-Bus and gnome-keyring end with the process that started them, however it ends", async () => {
    for (const rt of RUNTIME_NAMES) {
      for (const how of ["exit", "kill"]) {
        const r = await runScript(rt, "tests/workers/keyring_child.ts", [how], { timeoutMs: 180_000 });
        const m = /^pids=(\d+) (\d+)$/m.exec(new TextDecoder().decode(r.stdout));
        assert.ok(m, `${rt} ${how}: ${r.stderr}`);
        const pids = [Number(m[1]), Number(m[2])];
        const alive = () => pids.filter((p) => existsSync(`/proc/${p}`) && !/\) Z /.test(readStat(p)));
        const deadline = Date.now() + 60_000;
        while (alive().length > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
        assert.deepEqual(alive(), [], `${rt} ${how}: daemons left running`);
      }
    }
  });
});

function readStat(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return ") Z ";
  }
}
