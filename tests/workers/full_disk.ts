/**
 * Runs the real CLI on a file system that is really full: started by
 * tests/file_systems.test.ts inside its own mount namespace, with a small tmpfs
 * mounted at <dir>, so every write the kernel refuses fails with the kernel's
 * own ENOSPC, at whatever step of a command it falls.
 *
 *   full_disk.ts <dir> <home> <cli argv as JSON>
 *
 * <home> is a folder on another file system, for the CLI's home and config
 * folders: a runtime's caches there must not take the full disk's space.
 *
 * For each scenario it makes a vault once, then for free = 0, 1, 2, … pages:
 * lays a fresh copy of that vault, fills the disk but for `free` pages, runs
 * the command, frees the disk, runs the scenario's finishing command (the
 * same command again, as a user would), and reads back every value through
 * the library. It stops at the first free count at which the command
 * succeeds. One JSON line per attempt on stdout; the test judges them.
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  fstatSync,
  ftruncateSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Vault } from "../../src/vault.ts";
import { cliEnv } from "../helpers.ts";

const [dir, home, cliJson] = process.argv.slice(2) as [string, string, string];
const cli = JSON.parse(cliJson) as string[];
const say = (line: string) => writeSync(1, line + "\n");
const PAGE = 4096;
const MAX_FREE = 40;

const tpl = join(dir, "tpl");
const work = join(dir, "work");
const filler = join(dir, "filler");
const kek2 = join(dir, "kek2");
const KEK2 = new Uint8Array(32).fill(0x5a);

function env(root: string): Record<string, string> {
  return { ...process.env as Record<string, string>, ...cliEnv(root, home) };
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(root: string, args: string[], input = ""): Ran {
  const r = spawnSync(cli[0]!, [...cli.slice(1), ...args], {
    env: env(root),
    input,
    encoding: "utf8",
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + (r.error ? String(r.error) : "") };
}

/** Copies a tree with its modes: the vault refuses files others could read. */
function copyTree(from: string, to: string): void {
  const info = lstatSync(from);
  if (info.isDirectory()) {
    mkdirSync(to);
    for (const name of readdirSync(from)) copyTree(join(from, name), join(to, name));
  } else {
    copyFileSync(from, to);
  }
  chmodSync(to, info.mode & 0o777);
}

/** Every name under `root` that a write left behind: temporary files and folders. */
function leftovers(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (/\.tmp$|\.tmp\.|^\.[^/]*\.[0-9a-f]{16}\.tmp/.test(name)) out.push(p.slice(root.length + 1));
      if (lstatSync(p).isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

/** Fills the disk but for `free` pages. */
function fill(free: number): void {
  const fd = openSync(filler, "w");
  for (const chunk of [new Uint8Array(1 << 16), new Uint8Array(PAGE), new Uint8Array(1)]) {
    for (;;) {
      try {
        if (writeSync(fd, chunk) < chunk.length) break;
      } catch (e) {
        if ((e as { code?: string }).code !== "ENOSPC") throw e;
        break;
      }
    }
  }
  // The size the file reached, not the sum of what writeSync returned: a runtime may write part of a chunk and
  // still throw ENOSPC (Deno does), and truncating to the sum would free those pages again.
  ftruncateSync(fd, Math.max(0, fstatSync(fd).size - free * PAGE));
  closeSync(fd);
}

/** Each value as the library reads it: the bytes as text, or the error's code. */
async function values(root: string, keys: Array<[string, string]>, kek?: Uint8Array): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let vault: Vault;
  try {
    vault = await Vault.open({
      root: join(root, "vault"),
      ...(kek === undefined ? { identityRoot: join(root, "identity") } : { kek }),
      backend: "encrypted_file",
    });
  } catch (e) {
    for (const [s, k] of keys) out[`${s}/${k}`] = `error ${(e as { code?: string }).code}`;
    return out;
  }
  for (const [s, k] of keys) {
    try {
      using v = await vault.getSecret(s, k);
      out[`${s}/${k}`] = new TextDecoder().decode(v.bytes);
    } catch (e) {
      out[`${s}/${k}`] = `error ${(e as { code?: string }).code}`;
    }
  }
  await vault.close();
  return out;
}

interface Scenario {
  name: string;
  /** The vault to start from: secrets set in this layout, or none at all. */
  seed: { layout: "scoped" | "palyra"; secrets: number } | undefined;
  command: (free: number) => { args: string[]; input?: string };
  /** Run after the disk is freed, as a user would run the command again. */
  finish?: (free: number) => { args: string[]; input?: string };
  /** The keys read back, and the key they are read with. */
  read: (free: number) => Array<[string, string]>;
  kek?: Uint8Array;
  fsckArgs?: string[];
}

const seeded = (n: number): Array<[string, string]> => Array.from({ length: n }, (_, i) => ["global", `k${i + 1}`]);

const scenarios: Scenario[] = [
  {
    name: "set_replace",
    seed: { layout: "scoped", secrets: 3 },
    command: (f) => ({ args: ["set", "global", "k1", "--force"], input: `new-${f}` }),
    read: () => seeded(3),
  },
  {
    name: "set_new_key",
    seed: { layout: "scoped", secrets: 3 },
    command: (f) => ({ args: ["set", "global", `n${f}`], input: `new-${f}` }),
    read: (f) => [...seeded(3), ["global", `n${f}`]],
  },
  {
    name: "first_set",
    seed: undefined,
    command: () => ({ args: ["set", "global", "k1"], input: "value-1" }),
    finish: () => ({ args: ["set", "global", "k1"], input: "value-1" }),
    read: () => seeded(1),
  },
  {
    name: "rekey",
    seed: { layout: "scoped", secrets: 6 },
    command: () => ({ args: ["rekey", "--to-kek-file", kek2] }),
    finish: () => ({ args: ["rekey", "--to-kek-file", kek2] }),
    read: () => seeded(6),
    kek: KEK2,
    fsckArgs: ["--kek-file", kek2],
  },
  {
    name: "migrate_to_palyra",
    seed: { layout: "scoped", secrets: 6 },
    command: () => ({ args: ["migrate", "--to", "palyra"] }),
    finish: () => ({ args: ["migrate", "--to", "palyra"] }),
    read: () => seeded(6),
  },
  {
    name: "migrate_to_scoped",
    seed: { layout: "palyra", secrets: 6 },
    command: () => ({ args: ["migrate", "--to", "scoped"] }),
    finish: () => ({ args: ["migrate", "--to", "scoped"] }),
    read: () => seeded(6),
  },
  {
    name: "palyra_set_replace",
    seed: { layout: "palyra", secrets: 3 },
    command: (f) => ({ args: ["set", "global", "k1", "--force"], input: `new-${f}` }),
    read: () => seeded(3),
  },
];

writeFileSync(kek2, KEK2, { mode: 0o600 });
const only = process.env.FULL_DISK_ONLY;
for (const s of scenarios) {
  if (only !== undefined && only !== s.name) continue;
  rmSync(tpl, { recursive: true, force: true });
  mkdirSync(tpl, { mode: 0o700 });
  if (s.seed !== undefined) {
    for (let i = 1; i <= s.seed.secrets; i++) {
      const r = runCli(tpl, ["set", "global", `k${i}`, "--layout", s.seed.layout], `value-${i}`);
      if (r.code !== 0) throw new Error(`seed ${s.name} failed: ${r.stderr}`);
    }
  }
  for (let free = 0; free <= MAX_FREE; free++) {
    rmSync(work, { recursive: true, force: true });
    copyTree(tpl, work);
    fill(free);
    const c = s.command(free);
    const ran = runCli(work, c.args, c.input);
    rmSync(filler);
    // What a command that stopped midway left: the key the vault records, and what doctor says of it.
    const recordPath = join(work, "vault", "kek.id");
    const record = existsSync(recordPath) ? readFileSync(recordPath, "utf8") : null;
    const migrating = existsSync(join(work, "vault", ".migrating"));
    const rekeyFailed = ran.code !== 0 && s.name === "rekey";
    const doctor = rekeyFailed ? runCli(work, ["doctor", "--json"]) : undefined;
    // As a user of the new key (a KEK file, which doctor is not given) sees it: no identity of the vault's.
    const doctorNoIdentity = rekeyFailed
      ? runCli(work, ["doctor", "--json", "--identity-dir", join(work, "no-identity")])
      : undefined;
    const f = s.finish?.(free);
    const finished = f === undefined ? undefined : runCli(work, f.args, f.input);
    const fsck = runCli(work, ["fsck", ...(s.fsckArgs ?? [])]);
    say(JSON.stringify({
      scenario: s.name,
      free,
      ran,
      record,
      migrating,
      doctor,
      doctorNoIdentity,
      finished,
      fsck,
      values: await values(work, s.read(free), s.kek),
      leftovers: leftovers(work),
    }));
    if (ran.code === 0) break;
  }
}
say("done");
