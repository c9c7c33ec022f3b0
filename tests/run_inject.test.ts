/**
 * `run` and `inject` (README "Using secrets without plaintext files"): a secret reaches a child's
 * environment and never its arguments, signals and exit codes pass through, an unresolvable
 * reference starts nothing, `--mask` hides values in piped output even when a value is split
 * across two writes, and `inject` renders a template atomically with mode 0600 or writes nothing.
 * Each runs on the four CLI targets (Deno, Bun, Node, the compiled binary) as users run them.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { CLI_TARGETS, ownTargets } from "./cli_targets.ts";
import { cliEnv, DENO_DOCUMENTED, denoWith, ROOT, run, type RunResult, seedIdentity, tempDir } from "./helpers.ts";
import fc from "fast-check";
import { OutputMasker } from "../src/mask.ts";
import { concatBytes } from "../src/crypto/encoding.ts";

const TOKEN = "tok-7c1f-SECRET-a9b3";
const DB = "postgres://u:pw-48d2-SECRET@db/app";

async function sandbox() {
  const dir = tempDir("run");
  const env = cliEnv(dir);
  await seedIdentity(env.PALYRA_IDENTITY_DIR);
  return { dir, env };
}

/** A child that reports its environment and its own command line (from /proc) as JSON. */
function reporter(dir: string): string {
  const path = join(dir, "report.mjs");
  writeFileSync(
    path,
    `import { readFileSync } from "node:fs";
const cmdline = readFileSync("/proc/self/cmdline", "utf8");
const parent = readFileSync("/proc/" + process.ppid + "/cmdline", "utf8");
process.stdout.write(JSON.stringify({ token: process.env.API_TOKEN ?? null, db: process.env.DATABASE_URL ?? null,
  home: process.env.HOME ?? null, cmdline, parent }));
`,
  );
  return path;
}

for (const target of ownTargets()) {
  describe(`run and inject on ${target}`, () => {
    const cli = async (box: Awaited<ReturnType<typeof sandbox>>, args: string[], input?: string) =>
      await run([...(await CLI_TARGETS[target]()), ...args], {
        env: box.env,
        cwd: box.dir,
        ...(input === undefined ? {} : { input }),
      });
    const seed = async (box: Awaited<ReturnType<typeof sandbox>>) => {
      for (const [ref, value] of [["ws:acme/api_token", TOKEN], ["global/database_url", DB]] as const) {
        const [scope, key] = ref.split("/") as [string, string];
        const r = await cli(box, ["set", scope, key], value);
        assert.equal(r.code, 0, r.stderr);
      }
    };
    const text = (r: RunResult) => new TextDecoder().decode(r.stdout);

    test("run: the child gets the values in its environment, never in its arguments", async () => {
      const box = await sandbox();
      await seed(box);
      const envFile = join(box.dir, "app.env");
      writeFileSync(envFile, "# the app's secrets\n\nexport DATABASE_URL=global/database_url\n");
      const r = await cli(box, [
        "run",
        "--env",
        "API_TOKEN=ws:acme/api_token",
        "--env-file",
        envFile,
        "--",
        "node",
        reporter(box.dir),
      ]);
      assert.equal(r.code, 0, r.stderr);
      const seen = JSON.parse(text(r));
      assert.equal(seen.token, TOKEN);
      assert.equal(seen.db, DB);
      assert.equal(seen.home, box.env.HOME, "the rest of the environment is passed on");
      for (const line of [seen.cmdline, seen.parent]) {
        assert.ok(!line.includes(TOKEN) && !line.includes(DB), `no value in ${JSON.stringify(line)}`);
      }
      assert.match(seen.parent, /run/, "the parent is palyra-secrets run");
      assert.ok(!r.stderr.includes(TOKEN) && !r.stderr.includes(DB));
    });

    test("run: exit codes pass through, and a child killed by a signal gives 128 + its number", async () => {
      const box = await sandbox();
      for (const [script, code] of [["exit 0", 0], ["exit 3", 3], ["kill -TERM $$", 128 + 15]] as const) {
        const r = await cli(box, ["run", "--", "sh", "-c", script]);
        assert.equal(r.code, code, `${script}: ${r.stderr}`);
      }
      const missing = await cli(box, ["run", "--", "no-such-program-palyra"]);
      assert.equal(missing.code, 127, missing.stderr);
      assert.match(missing.stderr, /no-such-program-palyra/);
    });

    test("run: SIGTERM sent to palyra-secrets reaches the child", async () => {
      const box = await sandbox();
      const argv = [
        ...(await CLI_TARGETS[target]()),
        "run",
        "--",
        "sh",
        "-c",
        'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.05; done',
      ];
      const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...box.env }, cwd: box.dir });
      let out = "";
      const done = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
      // A grandchild left running must not keep this test waiting on its pipes.
      child.on("exit", () => setTimeout(() => child.stdout.destroy(), 5000).unref());
      const ready = new Promise<void>((resolve) => {
        child.stdout.on("data", (c: Uint8Array) => {
          out += new TextDecoder().decode(c);
          if (out.includes("ready")) resolve();
        });
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      await ready;
      // With the kill command, as a user or a service manager would (Deno's node:child_process signals otherwise).
      assert.equal((await run(["kill", "-TERM", String(child.pid)])).code, 0);
      const code = await done;
      clearTimeout(timer);
      assert.equal(code, 7, out);
      assert.match(out, /got-term/);
    });

    test("run: a reference that does not resolve stops everything before the child starts", async () => {
      const box = await sandbox();
      await seed(box);
      const marker = join(box.dir, "started");
      const r = await cli(box, [
        "run",
        "--env",
        "API_TOKEN=ws:acme/api_token",
        "--env",
        "OTHER=ws:acme/missing_key",
        "--",
        "sh",
        "-c",
        `touch ${marker}`,
      ]);
      assert.notEqual(r.code, 0);
      assert.equal(existsSync(marker), false, "the command was not started");
      assert.match(r.stderr, /ws:acme\/missing_key/);
      assert.match(r.stderr, /OTHER/);
      assert.ok(!r.stderr.includes(TOKEN));
      const bad = await cli(box, ["run", "--env", "lower-case=ws:acme/api_token", "--", "true"]);
      assert.equal(bad.code, 2, bad.stderr);
    });

    test("run --mask: values in piped output become <redacted>, even split across two writes", async () => {
      const box = await sandbox();
      await seed(box);
      const child = join(box.dir, "talk.mjs");
      writeFileSync(
        child,
        `const v = process.env.API_TOKEN;
process.stdout.write("whole: " + v + "\\n");
process.stderr.write("err: " + v + "\\n");
process.stdout.write("split: " + v.slice(0, 7));
setTimeout(() => process.stdout.write(v.slice(7) + " end\\n"), 150);
`,
      );
      const r = await cli(box, ["run", "--mask", "--env", "API_TOKEN=ws:acme/api_token", "--", "node", child]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(text(r), "whole: <redacted>\nsplit: <redacted> end\n");
      assert.match(r.stderr, /err: <redacted>/);
      assert.ok(!r.stderr.includes(TOKEN));
      const plain = await cli(box, ["run", "--env", "API_TOKEN=ws:acme/api_token", "--", "node", child]);
      assert.ok(text(plain).includes(TOKEN), "without --mask the output is the child's own");
    });

    test("run --mask ends when the program does, though a background process of it holds the pipe", async () => {
      const box = await sandbox();
      await seed(box);
      const hold = String(1200 + Object.keys(CLI_TARGETS).indexOf(target)); // a sleep this test alone starts
      const started = Date.now();
      try {
        const r = await cli(box, [
          "run",
          "--mask",
          "--env",
          "API_TOKEN=ws:acme/api_token",
          "--",
          "sh",
          "-c",
          `echo "t=$API_TOKEN"; sleep ${hold} & exit 5`,
        ]);
        assert.equal(r.code, 5, r.stderr);
        assert.equal(text(r), "t=<redacted>\n");
        // Before: run waited for the pipe to close, i.e. for the sleep to end (20 minutes).
        assert.ok(Date.now() - started < 120_000, "run returned while the background sleep still runs");
      } finally {
        await run(["pkill", "-f", `^sleep ${hold}$`]);
      }
    });

    test("inject: a template is rendered exactly, mode 0600; one missing reference writes nothing", async () => {
      const box = await sandbox();
      await seed(box);
      const template = join(box.dir, "config.tpl");
      writeFileSync(
        template,
        "token = {{ vault://ws:acme/api_token }}\ndb={{vault://global/database_url}}\nbraces {{ kept }}\n",
      );
      const out = join(box.dir, "config.out");
      const r = await cli(box, ["inject", "-i", template, "-o", out]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(readFileSync(out, "utf8"), `token = ${TOKEN}\ndb=${DB}\nbraces {{ kept }}\n`);
      assert.equal(statSync(out).mode & 0o777, 0o600);
      assert.ok(!r.stderr.includes(TOKEN) && !text(r).includes(TOKEN));
      const toStdout = await cli(box, ["inject", "-i", template]);
      assert.equal(text(toStdout), `token = ${TOKEN}\ndb=${DB}\nbraces {{ kept }}\n`);
      writeFileSync(template, "a={{ vault://ws:acme/api_token }}\nb={{ vault://ws:acme/nope }}\n");
      const other = join(box.dir, "other.out");
      const miss = await cli(box, ["inject", "-i", template, "-o", other]);
      assert.notEqual(miss.code, 0);
      assert.match(miss.stderr, /ws:acme\/nope/);
      assert.equal(existsSync(other), false, "nothing written");
      const again = await cli(box, ["inject", "-i", template, "-o", out]);
      assert.notEqual(again.code, 0);
      assert.equal(readFileSync(out, "utf8"), `token = ${TOKEN}\ndb=${DB}\nbraces {{ kept }}\n`, "the old file stays");
    });
  });
}

describe("run under the documented Deno permissions", () => {
  test("without --allow-run, run starts nothing and says which permission it needs; with it, the program runs", async () => {
    const box = await sandbox();
    const cli = (flags: readonly string[]) =>
      run([...denoWith(flags, join(ROOT, "cli.ts")), "run", "--", "sh", "-c", "echo started"], {
        env: box.env,
        cwd: box.dir,
      });
    const narrow = await cli(DENO_DOCUMENTED);
    assert.equal(narrow.code, 126, narrow.stderr);
    assert.match(narrow.stderr, /--allow-run/);
    assert.equal(new TextDecoder().decode(narrow.stdout), "");
    const wide = await cli([...DENO_DOCUMENTED.filter((f) => !f.startsWith("--allow-run")), "--allow-run"]);
    assert.equal(wide.code, 0, wide.stderr);
    assert.equal(new TextDecoder().decode(wide.stdout), "started\n");
  });
});

describe("references and masking, in the library", () => {
  test("get, set and delete take one reference as well as a scope and a key", async () => {
    const box = await sandbox();
    const cli = async (args: string[], input?: string) =>
      await run([...(await CLI_TARGETS.bun()), ...args], {
        env: box.env,
        cwd: box.dir,
        ...(input === undefined ? {} : { input }),
      });
    assert.equal((await cli(["set", "ws:acme/api_token"], TOKEN)).code, 0);
    const got = await cli(["get", "vault://ws:acme/api_token", "--reveal"]);
    assert.equal(new TextDecoder().decode(got.stdout), TOKEN);
    const both = await cli(["get", "ws:acme", "api_token", "--reveal"]);
    assert.equal(new TextDecoder().decode(both.stdout), TOKEN);
    const bad = await cli(["get", "ws:acme"]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(new TextDecoder().decode((await cli(["delete", "ws:acme/api_token"])).stdout), /deleted=true/);
  });

  test("a masker hides every value wherever the output is cut, and changes nothing else", () => {
    /** Masks a whole output at once: at each place the longest value that starts there, else one byte. */
    const reference = (values: Uint8Array[], output: Uint8Array): string => {
      const s = String.fromCharCode(...output);
      const vs = values.filter((v) => v.length > 0).map((v) => String.fromCharCode(...v))
        .sort((a, b) => b.length - a.length);
      let out = "";
      for (let i = 0; i < s.length;) {
        const v = vs.find((v) => s.startsWith(v, i));
        out += v === undefined ? s[i] : "<redacted>";
        i += v === undefined ? 1 : v.length;
      }
      return out;
    };
    fc.assert(
      fc.property(
        // A three-letter alphabet, so that values overlap and start one another often.
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 6, min: 97, max: 99 }), { minLength: 1, maxLength: 3 }),
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 8, min: 97, max: 99 }), fc.nat(2)), { maxLength: 8 }),
        fc.array(fc.nat(40), { maxLength: 6 }),
        (values, pieces, cuts) => {
          // Output: plain bytes and values (by index), in any order.
          const output = concatBytes(...pieces.map((p) => (typeof p === "number" ? values[p % values.length]! : p)));
          const masker = new OutputMasker(values);
          const out: Uint8Array[] = [];
          let at = 0;
          for (const c of [...cuts.map((c) => Math.min(c, output.length)).sort((a, b) => a - b), output.length]) {
            out.push(masker.push(output.subarray(at, c)));
            at = c;
          }
          out.push(masker.end());
          assert.equal(String.fromCharCode(...concatBytes(...out)), reference(values, output));
        },
      ),
      { numRuns: 2000 },
    );
    const m = new OutputMasker([new TextEncoder().encode("abcdef"), new TextEncoder().encode("abc")]);
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    assert.equal(text(m.push(new TextEncoder().encode("x abcd"))), "x ");
    assert.equal(text(m.push(new TextEncoder().encode("Y abcdef abc"))), "<redacted>dY <redacted> ");
    assert.equal(text(m.end()), "<redacted>");
  });
});
