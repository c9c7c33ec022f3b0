/**
 * The one subprocess helper (src/platform/subprocess.ts) on each runtime: a
 * timeout settles on its timer even when a grandchild keeps the pipes open,
 * and kills the process group; normal results come through whole; a missing
 * command is `backend_unavailable`; no payload ever shows in an error.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { runCommand } from "../src/platform/subprocess.ts";
import { hex, randomBytes, rejectsWith, tempDir } from "./helpers.ts";
import { toBase64 } from "../src/crypto/encoding.ts";

/** Generous: the suite must pass while every core is busy. */
const BOUND_MS = 20_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True while `pid` runs (a zombie waiting for a reaper counts as gone). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc: kill -0 said it exists
  }
}

/** Whether this runtime may signal a whole process group (Deno: with all of --allow-run). */
function mayKillGroups(): boolean {
  const D = (globalThis as { Deno?: { permissions: { querySync(d: { name: string }): { state: string } } } }).Deno;
  if (D === undefined) return true;
  return D.permissions.querySync({ name: "run" }).state === "granted";
}

/** No needle in the error's message, hint, stack or cause. */
function assertNoneIn(e: unknown, needles: string[]): void {
  const err = e as { message?: string; hint?: string; stack?: string; cause?: unknown };
  const text = [err.message, err.hint, err.stack, String(err.cause), JSON.stringify(err)].join("\n");
  for (const n of needles) assert.ok(!text.includes(n), "the payload appears in the error");
}

describe("runCommand", () => {
  test("a timeout settles on its timer although a grandchild keeps the pipes open, and kills the process group", async () => {
    const pidFile = join(tempDir("subprocess"), "grandchild.pid");
    const started = Date.now();
    let grandchild: number | undefined;
    try {
      const e = await rejectsWith(
        () => runCommand("sh", ["-c", `sleep 60 & echo $! > '${pidFile}'; exec sleep 120`], { timeoutMs: 500 }),
        "io",
        /^run "sh" failed: timed out after 500 ms/,
      );
      const took = Date.now() - started;
      assert.ok(took < BOUND_MS, `the call took ${took} ms with timeoutMs 500`);
      assert.ok(e.hint !== undefined && e.hint.length > 0);
      if (existsSync(pidFile)) {
        const text = readFileSync(pidFile, "utf8").trim();
        if (text !== "") grandchild = Number(text);
      }
      if (grandchild !== undefined && mayKillGroups()) {
        const deadline = Date.now() + BOUND_MS;
        while (running(grandchild) && Date.now() < deadline) await sleep(50);
        assert.ok(!running(grandchild), `the grandchild ${grandchild} still runs: the process group was not killed`);
      }
    } finally {
      if (grandchild !== undefined && running(grandchild)) {
        try {
          process.kill(grandchild, "SIGKILL");
        } catch {
          // gone meanwhile
        }
      }
    }
  });

  test("stdout, stderr and the exit code come through whole (300 KB through cat while it is read)", async () => {
    const input = randomBytes(300_000);
    const r = await runCommand("sh", ["-c", "cat; printf 'to stderr' >&2; exit 7"], {
      stdin: input,
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 7);
    assert.equal(r.stdout.length, input.length);
    assert.deepEqual(r.stdout, input);
    assert.equal(r.stderr, "to stderr");
    const empty = await runCommand("sh", ["-c", "exit 0"], { timeoutMs: 60_000 });
    assert.deepEqual([empty.code, empty.stdout.length, empty.stderr], [0, 0, ""]);
  });

  test("a child killed by a signal exits 128 + the signal number", async () => {
    const r = await runCommand("sh", ["-c", "kill -TERM $$"], { timeoutMs: 60_000 });
    assert.equal(r.code, 128 + 15);
  });

  test("a missing command is backend_unavailable, and the payload on its stdin is in no error", async () => {
    const secret = randomBytes(32);
    const e = await rejectsWith(
      () => runCommand("palyra-no-such-command", ["x"], { stdin: secret, timeoutMs: 60_000 }),
      "backend_unavailable",
      /^run "palyra-no-such-command" failed: it is not installed or not on PATH/,
    );
    assertNoneIn(e, [hex(secret), toBase64(secret)]);
  });

  test("no payload given on stdin appears in a timeout error", async () => {
    const secret = new TextEncoder().encode(`sk-canary-${hex(randomBytes(16))}`);
    const e = await rejectsWith(
      () => runCommand("sh", ["-c", "cat >/dev/null; exec sleep 60"], { stdin: secret, timeoutMs: 500 }),
      "io",
      /timed out after 500 ms/,
    );
    assertNoneIn(e, [new TextDecoder().decode(secret), hex(secret), toBase64(secret)]);
  });
});
