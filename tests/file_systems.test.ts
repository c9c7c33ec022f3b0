/**
 * The CLI on file systems as the kernel gives them, each in a mount
 * namespace of the test's own (`unshare`, as root or through a user
 * namespace).
 *
 * A disk that is really full: a tmpfs of 2 MiB, which
 * tests/workers/full_disk.ts fills but for 0, 1, 2, … pages before each
 * command, so each step of a set, a first set, a rekey and a migration meets
 * the kernel's own ENOSPC in turn. What is checked: the error is typed and
 * says the disk is full; nothing is lost or reported lost; no temporary file
 * is left behind; once space is freed, running the command again finishes it.
 *
 * A vault built into a container image: the lower layer of an overlay, where
 * a folder cannot be renamed in place (EXDEV). A vault mounted read-only (a
 * container's view of a folder another process writes). A vault on a USB
 * stick: exFAT through exfat-fuse, whose rename removes the file it replaces
 * before it moves the new one in, so a reader can find no file for a moment.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { CLI } from "./cli_targets.ts";
import { kekId } from "../src/crypto/kdf.ts";
import { objectId } from "../src/crypto/ids.ts";
import {
  cliEnv,
  DENO_TASK_FLAGS,
  denoWith,
  ROOT,
  run,
  runScript,
  type RuntimeName,
  RUNTIMES,
  tempDir,
} from "./helpers.ts";
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, truncateSync, writeFileSync } from "node:fs";

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Attempt {
  scenario: string;
  free: number;
  ran: Ran;
  /** The vault's key record after the command, before anything else ran. */
  record: string | null;
  /** Whether the vault was left mid-migration (`.migrating`) after the command. */
  migrating: boolean;
  /** `doctor --json` after a rekey that failed, with the old identity and with none. */
  doctor: Ran | undefined;
  doctorNoIdentity: Ran | undefined;
  finished: Ran | undefined;
  fsck: Ran;
  values: Record<string, string>;
  leftovers: string[];
}

/** How this machine lets a test mount a tmpfs of its own: as root, or as root of a new user namespace. */
function unshareArgs(): string[] {
  const asRoot = process.getuid?.() === 0;
  const args = asRoot ? ["--mount"] : ["--user", "--map-root-user", "--mount"];
  const probe = spawnSync("unshare", [...args, "--propagation", "private", "true"], { encoding: "utf8" });
  assert.equal(
    probe.status,
    0,
    `this test mounts a small tmpfs in a mount namespace of its own: it needs util-linux's unshare, and root or ` +
      `unprivileged user namespaces (${probe.error ?? probe.stderr})`,
  );
  return ["unshare", ...args, "--propagation", "private"];
}

/** The runtime this file runs on: the worker runs on it too. */
const OWN: RuntimeName = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

/** The CLI as this runtime's users run it: Deno with the README's permissions, Node through npx's bin script. */
function ownCli(): string[] {
  if (OWN === "deno") return denoWith(DENO_TASK_FLAGS, CLI);
  if (OWN === "node") return ["node", join(ROOT, "bin", "palyra-secrets.mjs")];
  return RUNTIMES.bun(CLI);
}

/**
 * Runs the CLI with `args` in a mount namespace of its own, after `mount` (a shell command, `$0` being `base`) made
 * the file system it runs on; the vault and identity are under `base/<under>`, home and config under `base/home`.
 */
function cliMounted(base: string, mount: string, under: string, args: string[], input = "") {
  return run(
    [...unshareArgs(), "sh", "-c", `${mount} && exec "$@"`, base, ...ownCli(), ...args],
    { input, env: cliEnv(join(base, under), join(base, "home")) },
  );
}

const FULL = /^error: io: .+: the file system is full \(ENOSPC\); hint: free space on the file system that holds it/m;

test("a full disk: each step of set, first set, rekey and migrate fails typed, loses nothing, leaves nothing behind, and finishes once space is freed", async () => {
  const mnt = tempDir("full");
  const worker = join(ROOT, "tests", "workers", "full_disk.ts");
  const r = await run(
    [
      ...unshareArgs(),
      "sh",
      "-c",
      'mount -t tmpfs -o size=2m,mode=0700 tmpfs "$0" && exec "$@"',
      mnt,
      ...RUNTIMES[OWN](worker),
      mnt,
      tempDir("full-home"),
      JSON.stringify(ownCli()),
    ],
    { timeoutMs: 600_000 },
  );
  const out = new TextDecoder().decode(r.stdout);
  assert.equal(r.code, 0, `the worker failed: ${r.stderr}\n${out.slice(-2000)}`);
  const lines = out.trim().split("\n");
  assert.equal(lines.pop(), "done");
  const attempts = lines.map((l) => JSON.parse(l) as Attempt);
  const by = new Map<string, Attempt[]>();
  for (const a of attempts) by.set(a.scenario, [...(by.get(a.scenario) ?? []), a]);
  const all = [
    "set_replace",
    "set_new_key",
    "first_set",
    "rekey",
    "migrate_to_palyra",
    "migrate_to_scoped",
    "palyra_set_replace",
  ];
  // FULL_DISK_ONLY=<scenario> runs one of them, while working on it.
  const only = process.env.FULL_DISK_ONLY;
  assert.deepEqual([...by.keys()], only === undefined ? all : [only]);
  const problems: string[] = [];
  const check = (a: Attempt, ok: boolean, what: string) => {
    if (!ok) problems.push(`${a.scenario} with ${a.free} free pages: ${what}`);
  };
  for (const [name, list] of by) {
    const last = list.at(-1)!;
    // The disk full but for a page or two stops every command; with room enough it goes through.
    assert.ok(list.length >= 2, `${name}: the command did not fail on a full disk: ${JSON.stringify(list[0])}`);
    assert.equal(last.ran.code, 0, `${name}: the command never went through: ${last.ran.stderr}`);
    for (const a of list) {
      const failed = a.ran.code !== 0;
      if (failed) {
        check(a, a.ran.code === 1, `exit ${a.ran.code}, not 1`);
        check(a, FULL.test(a.ran.stderr), `the error does not say the disk is full: ${a.ran.stderr.trim()}`);
      }
      check(
        a,
        !/putting the previous value back failed/.test(a.ran.stderr),
        `reports the previous value lost while it is intact: ${a.ran.stderr.trim()}`,
      );
      check(a, a.leftovers.length === 0, `left temporary files: ${a.leftovers.join(", ")}`);
      if (name.startsWith("migrate") && failed) {
        // Nothing fails after the commit on a full disk (it only removes): a failed migration is undone, and the
        // vault stays writable in its old layout.
        check(a, !a.migrating, "a failed migration left the vault mid-migration (.migrating): writes are refused");
      }
      if (name === "rekey" && failed && a.record === kekId(new Uint8Array(32).fill(0x5a))) {
        // The record names the new key, so the re-key had begun: the secrets may be split between the two keys.
        check(
          a,
          /stopped midway/.test(a.ran.stderr) && /run the same rekey again/.test(a.ran.stderr),
          `a re-key that stopped midway does not say so, nor how to finish it: ${a.ran.stderr.trim()}`,
        );
        const problems = (JSON.parse(a.doctor!.stdout) as { problems: Array<{ code: string; message: string }> })
          .problems.filter((p) => p.code === "identity_key_mismatch");
        check(
          a,
          problems.length === 1 && /split between/.test(problems[0]!.message),
          `doctor does not say the re-key stopped midway: ${JSON.stringify(problems)}`,
        );
        // Without the old identity, the secrets it did not move are what doctor sees.
        const other = (JSON.parse(a.doctorNoIdentity!.stdout) as { problems: Array<{ code: string; message: string }> })
          .problems.filter((p) => p.code === "secrets_under_other_key");
        check(
          a,
          other.length === 1 && /stopped midway/.test(other[0]!.message),
          `doctor without the old identity does not report the secrets left under it: ${JSON.stringify(other)}`,
        );
      }
      if (a.finished !== undefined) {
        check(a, a.finished.code === 0, `running it again once space was freed failed: ${a.finished.stderr.trim()}`);
      }
      check(a, a.fsck.code === 0, `fsck afterwards: exit ${a.fsck.code}: ${a.fsck.stdout.trim()} ${a.fsck.stderr}`);
      const expected: Record<string, string> = {};
      for (const key of Object.keys(a.values)) expected[key] = `value-${key.slice("global/k".length)}`;
      if (name === "set_replace" || name === "palyra_set_replace") {
        if (!failed) expected["global/k1"] = `new-${a.free}`;
      }
      if (name === "set_new_key") expected[`global/n${a.free}`] = failed ? "error not_found" : `new-${a.free}`;
      check(
        a,
        JSON.stringify(a.values) === JSON.stringify(expected),
        `values ${JSON.stringify(a.values)}, expected ${JSON.stringify(expected)}`,
      );
    }
  }
  assert.deepEqual(problems, []);
});

test("a vault in the lower layer of an overlay (built into a container image): migrate cannot rename its folder, says why, and leaves the vault as it was", async () => {
  const base = tempDir("overlay");
  for (const d of ["lower", "upper", "work", "merged", "home"]) mkdirSync(join(base, d), { mode: 0o700 });
  // Made in what becomes the lower layer, as an image build makes it.
  for (let i = 1; i <= 3; i++) {
    const r = await run([...ownCli(), "set", "global", `k${i}`], {
      input: `value-${i}`,
      env: cliEnv(join(base, "lower"), join(base, "home")),
    });
    assert.equal(r.code, 0, r.stderr);
  }
  const overlay = 'mount -t overlay overlay -o "lowerdir=$0/lower,upperdir=$0/upper,workdir=$0/work" "$0/merged"';
  const inOverlay = (args: string[], input = "") => cliMounted(base, overlay, "merged", args, input);
  const m = await inOverlay(["migrate", "--to", "palyra"]);
  assert.equal(m.code, 1, m.stderr);
  assert.match(
    m.stderr,
    /^error: io: .+: the file system cannot rename it in place \(an overlay file system's lower layer, as in a container image\) \(EXDEV\); hint: copy the vault folder to a plain file system/m,
  );
  // Undone: the vault reads and writes in its old layout.
  const set = await inOverlay(["set", "global", "k4"], "value-4");
  assert.equal(set.code, 0, set.stderr);
  const listed = await inOverlay(["list", "--json"]);
  assert.equal(listed.code, 0, listed.stderr);
  const keys = (JSON.parse(new TextDecoder().decode(listed.stdout)) as { secrets: Array<{ key: string }> }).secrets
    .map((e) => e.key);
  assert.deepEqual(keys.sort(), ["k1", "k2", "k3", "k4"]);
});

test("a vault mounted read-only, in either layout: every read works (Palyra's layout without its lock, which cannot be made there), and a write says the file system is read-only", async () => {
  const base = tempDir("read-only");
  for (const d of ["src", "ro", "home"]) mkdirSync(join(base, d), { mode: 0o700 });
  const bindReadOnly = 'mount --bind "$0/src" "$0/ro" && mount -o remount,bind,ro "$0/ro"';
  const readOnly = (args: string[], input = "") => cliMounted(base, bindReadOnly, "ro", args, input);
  for (const layout of ["scoped", "palyra"]) {
    rmSync(join(base, "src", "vault"), { recursive: true, force: true });
    for (let i = 1; i <= 2; i++) {
      const r = await run([...ownCli(), "set", "global", `k${i}`, "--layout", layout], {
        input: `value-${i}`,
        env: cliEnv(join(base, "src"), join(base, "home")),
      });
      assert.equal(r.code, 0, r.stderr);
    }
    const got = await readOnly(["get", "global", "k2", "--reveal"]);
    assert.equal(got.code, 0, `${layout}: ${got.stderr}`);
    assert.equal(new TextDecoder().decode(got.stdout), "value-2");
    const listed = await readOnly(["list", "--json"]);
    assert.equal(listed.code, 0, `${layout}: ${listed.stderr}`);
    assert.equal((JSON.parse(new TextDecoder().decode(listed.stdout)) as { secrets: unknown[] }).secrets.length, 2);
    const checked = await readOnly(["fsck"]);
    assert.equal(checked.code, 0, `${layout}: ${checked.stderr}`);
    const set = await readOnly(["set", "global", "k1", "--force"], "new");
    assert.equal(set.code, 1, `${layout}: ${set.stderr}`);
    assert.match(
      set.stderr,
      /^error: io: .+: the file system is read-only \(EROFS\); hint: mount it read-write/m,
      layout,
    );
  }
});

/**
 * An exFAT file system (a USB stick, a card) on a loop device of its own, mounted through exfat-fuse as a system
 * without the kernel's exFAT driver mounts it, at `base/mnt`. Returns how to unmount it and free the device.
 */
function mountExfat(base: string): () => void {
  assert.equal(process.getuid?.(), 0, "this test mounts an exFAT image on a loop device: it runs as root");
  const img = join(base, "stick.img");
  writeFileSync(img, "");
  truncateSync(img, 64 * 1024 * 1024);
  const step = (argv: string[]) => {
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" });
    assert.equal(
      r.status,
      0,
      `${argv.join(" ")}: ${r.error ?? r.stderr} (Debian: apt-get install exfatprogs exfat-fuse)`,
    );
    return r.stdout.trim();
  };
  step(["mkfs.exfat", img]);
  const loop = step(["losetup", "--find", "--show", img]);
  mkdirSync(join(base, "mnt"));
  try {
    step(["mount.exfat-fuse", loop, join(base, "mnt")]);
  } catch (e) {
    spawnSync("losetup", ["--detach", loop]);
    throw e;
  }
  return () => {
    // The file system's daemon may still be finishing a request of a process that just ended.
    for (let i = 0; i < 50 && spawnSync("umount", [join(base, "mnt")]).status !== 0; i++) spawnSync("sleep", ["0.1"]);
    spawnSync("losetup", ["--detach", loop]);
  };
}

test("a vault on exFAT (a USB stick, through FUSE), where a rename that replaces a file removes it first: a service reading a secret another process replaces never sees it as not set, and the CLI works there", async () => {
  const base = tempDir("exfat");
  const unmount = mountExfat(base);
  try {
    // The vault on the stick; the identity and home stay on this machine, as they should.
    const env = { ...cliEnv(join(base, "local")), PALYRA_VAULT_DIR: join(base, "mnt", "vault") };
    const cli = (args: string[], input = "") => run([...ownCli(), ...args], { input, env });
    for (let i = 0; i < 3; i++) {
      const r = await cli(["set", "global", `k${i}`], `value-${i}`);
      assert.equal(r.code, 0, r.stderr);
    }
    // A writer replaces the three secrets in turn while a reader reads them, each in a process of its own.
    const startAt = Date.now() + 3000;
    const args = (
      mode: string,
    ) => [mode, env.PALYRA_VAULT_DIR, env.PALYRA_IDENTITY_DIR, "3", `${startAt}`, `${startAt + 5000}`];
    const [writer, reader] = await Promise.all(
      ["rotate", "reread"].map((mode) =>
        runScript(OWN, "tests/workers/vault_worker.ts", args(mode), { timeoutMs: 60_000 })
      ),
    );
    assert.equal(writer!.code, 0, writer!.stderr);
    assert.equal(reader!.code, 0, reader!.stderr);
    const puts = Number(/^rotated (\d+)$/m.exec(new TextDecoder().decode(writer!.stdout))?.[1]);
    const read = /^reread (\d+) (\d+)(.*)$/m.exec(new TextDecoder().decode(reader!.stdout));
    assert.ok(puts >= 20 && Number(read?.[1]) >= 20, `too few replacements (${puts}) or reads (${read?.[1]}) to tell`);
    assert.equal(
      Number(read?.[2]),
      0,
      `${read?.[2]} of ${read?.[1]} reads during ${puts} replacements were wrong:${read?.[3]}`,
    );
    const got = await cli(["get", "global", "k1", "--reveal"]);
    assert.equal(got.code, 0, got.stderr);
    assert.match(new TextDecoder().decode(got.stdout), /^value-\d+$/);
    const checked = await cli(["fsck"]);
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(new TextDecoder().decode(checked.stdout), /secrets=3 objects=3 findings=0/);
  } finally {
    unmount();
  }
});

test("a crash at each write exfat-fuse makes during a set --force (its daemon killed at its K-th pwrite, by strace): after fsck.exfat and fsck --repair the secret holds its old or its new value wherever the file system kept either", async () => {
  const base = tempDir("exfat-crash");
  const unmount = mountExfat(base);
  const env = { ...cliEnv(join(base, "local")), PALYRA_VAULT_DIR: join(base, "mnt", "vault") };
  const cli = (args: string[], input = "") => run([...ownCli(), ...args], { input, env, timeoutMs: 120_000 });
  try {
    for (const [key, value] of [["k1", "old-value"], ["k2", "other"]]) {
      const r = await cli(["set", "global", key!], value);
      assert.equal(r.code, 0, r.stderr);
    }
  } finally {
    unmount();
  }
  const image = join(base, "stick.img");
  const pristine = join(base, "pristine.img");
  copyFileSync(image, pristine);
  const id = objectId("global", "k1");
  const outcomes: string[] = [];
  let restored = 0;
  for (let k = 1; k <= 120; k++) {
    copyFileSync(pristine, image);
    const loop = spawnSync("losetup", ["--find", "--show", image], { encoding: "utf8" }).stdout.trim();
    const mnt = join(base, "mnt");
    try {
      assert.equal(spawnSync("mount.exfat-fuse", [loop, mnt]).status, 0, `mount ${loop}`);
      const daemon = spawnSync("pgrep", ["-f", `mount.exfat-fuse ${loop} `], { encoding: "utf8" }).stdout.trim();
      assert.match(daemon, /^\d+$/, `the daemon of ${loop}: ${JSON.stringify(daemon)}`);
      const tracer = spawn("strace", [
        "-p",
        daemon,
        "-e",
        "trace=pwrite64",
        "-e",
        `inject=pwrite64:signal=KILL:when=${k}`,
        "-o",
        "/dev/null",
      ], {
        stdio: ["ignore", "ignore", "pipe"],
      });
      // strace ends by itself once it has killed the daemon: listen from the start.
      const traced = new Promise((resolve) => tracer.once("exit", resolve));
      await new Promise<void>((resolve, reject) => {
        let said = "";
        tracer.stderr.on("data", (c: Uint8Array) => {
          said += new TextDecoder().decode(c);
          if (said.includes("attached")) resolve();
        });
        tracer.on("exit", () => reject(new Error(`strace ended before it attached: ${said}`)));
      });
      const set = await cli(["set", "global", "k1", "--force"], "new-value");
      tracer.kill();
      await traced;
      if (set.code === 0) {
        outcomes.push(`${k}: done`);
        break; // every write of the set came before the K-th
      }
      // The daemon is dead: check the volume, as a system does with a stick that was not unmounted cleanly (a crash
      // can leave a cluster marked free under a file, which exfat-fuse may not survive), and mount it again.
      spawnSync("umount", ["-l", mnt]);
      spawnSync("pkill", ["-9", "-f", `mount.exfat-fuse ${loop} `]);
      for (let i = 0; i < 100 && spawnSync("pgrep", ["-f", `mount.exfat-fuse ${loop} `]).status === 0; i++) {
        spawnSync("sleep", ["0.05"]);
      }
      const repaired = spawnSync("fsck.exfat", ["-y", loop], { encoding: "utf8" });
      assert.ok(
        repaired.status === 0 || repaired.status === 1,
        `K=${k}: fsck.exfat: ${repaired.stdout}${repaired.stderr}`,
      );
      assert.equal(spawnSync("mount.exfat-fuse", [loop, mnt]).status, 0, `mount ${loop} again`);
      const objects = join(mnt, "vault", "objects");
      let files: string[];
      try {
        files = existsSync(objects) ? readdirSync(objects).filter((n) => n.includes(id)) : [];
      } catch (e) {
        throw new Error(`K=${k}: the image mounted again does not answer (${e}); fsck.exfat said: ${repaired.stdout}`);
      }
      const checked = await cli(["fsck", "--repair", "--json"]);
      assert.ok(checked.code === 0 || checked.code === 3, checked.stderr);
      const findings = (JSON.parse(new TextDecoder().decode(checked.stdout)) as {
        findings: Array<{ code: string; key: string | null; repair: string }>;
      }).findings;
      const got = await cli(["get", "global", "k1", "--reveal"]);
      const value = new TextDecoder().decode(got.stdout);
      const other = await cli(["get", "global", "k2", "--reveal"]);
      assert.equal(new TextDecoder().decode(other.stdout), "other", `K=${k}: ${other.stderr}`);
      if (files.length === 0) {
        // exfat-fuse removes the name a file is renamed from before it writes the new one: a crash between the two
        // loses the file. With neither the object nor its copy left, fsck says so and drops the entry.
        assert.ok(findings.some((f) => f.code === "missing_object" && f.key === "k1" && f.repair === "entry_removed"));
        assert.equal(got.code, 1, `K=${k}: ${got.stderr}`);
        outcomes.push(`${k}: lost by the file system`);
        continue;
      }
      assert.equal(got.code, 0, `K=${k}, files ${files.join(" ")}: ${got.stderr} ${JSON.stringify(findings)}`);
      assert.ok(value === "old-value" || value === "new-value", `K=${k}: ${value}`);
      if (findings.some((f) => f.repair === "object_restored" && f.code === "missing_object")) restored++;
      outcomes.push(`${k}: ${value}`);
    } finally {
      spawnSync("umount", ["-l", mnt]);
      spawnSync("pkill", ["-9", "-f", `mount.exfat-fuse ${loop} `]);
      spawnSync("losetup", ["--detach", loop]);
    }
  }
  assert.match(outcomes.at(-1) ?? "", /: done$/, `the set never finished: ${outcomes.join(", ")}`);
  // The crash between the removal of the replaced object and the rename of its copy happened, and was repaired.
  assert.ok(restored >= 1, `no crash left the copy without its object: ${outcomes.join(", ")}`);
});
