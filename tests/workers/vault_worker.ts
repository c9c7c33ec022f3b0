/**
 * A child process for multi-process tests, run under Deno, Bun or Node.
 *
 *   put <root> <worker> <count> <scope,scope,…> <startAtMs> [backend] [layout] [reopen]   KEK hex on stdin
 *     with "reopen", a refused put prints "err <code> <message>" and the next one goes through a new handle,
 *     and after each acknowledged put the one before it is read back through the same handle ("read ok", or
 *     "read <code> <message>", or "read wrong <scope> <key>")
 *   lock <lockPath> <holdMs> <rounds> <logPath> <startAtMs>
 *   take <lockPath> <staleAfterMs> <timeoutMs>        prints "taken <ms>" or "<error code> <message>"
 *   open <root> <identityDir>                          opens and puts; prints "ok" or "<error> <code> | <hint>"
 *   identity <dir> <startAtMs>
 *   migrate <root> <identityDir> <scoped|palyra>       prints "ready", then "done <secrets>"
 *   rotate <root> <identityDir> <keys> <startAtMs> <untilMs>
 *     replaces global/k0 … k<keys-1> in turn with "value-<n>" until the time; prints "rotated <puts>"
 *   reread <root> <identityDir> <keys> <startAtMs> <untilMs>
 *     reads them in turn meanwhile; prints "reread <reads> <wrong>" and the first wrong answer
 *
 * Each acknowledged step is written to stdout synchronously, so a line that
 * was printed survives a SIGKILL right after it.
 */
import { appendFileSync, readFileSync, writeSync } from "node:fs";
import process from "node:process";
import { sha256 } from "@noble/hashes/sha2.js";
import { migrateVault, Vault } from "../../src/vault.ts";
import { acquireLock } from "../../src/store/scope_lock.ts";
import { defaultFileSystem } from "../../src/platform/fs.ts";
import { loadOrCreateIdentity } from "../../src/store/identity_store.ts";
import { toHex, utf8 } from "../../src/crypto/encoding.ts";

const [mode, ...args] = process.argv.slice(2);
const say = (line: string) => writeSync(1, line + "\n");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const waitUntil = async (at: number) => {
  const d = at - Date.now();
  if (d > 0) await sleep(d);
};

if (mode === "put") {
  const [root, worker, count, scopes, startAt, backend, layout, onError] = args as [
    string,
    string,
    string,
    string,
    string,
    string?,
    string?,
    string?,
  ];
  const kek = new Uint8Array(32);
  const hexKek = readFileSync(0, "utf8").trim();
  for (let i = 0; i < 32; i++) kek[i] = parseInt(hexKek.slice(2 * i, 2 * i + 2), 16);
  const open = () =>
    Vault.open({
      root,
      kek,
      backend: (backend ?? "encrypted_file") as "encrypted_file",
      lockTimeoutMs: 60_000,
      ...(layout === "palyra" ? { layout: "palyra" as const } : {}),
    });
  let vault = await open();
  const scopeList = scopes.split(",");
  const line = (e: unknown) => `${(e as { code?: string }).code ?? "-"} ${String(e).replace(/\s+/g, " ")}`;
  let last: [string, string, string] | undefined;
  say(`ready ${process.pid}`);
  await waitUntil(Number(startAt));
  for (let i = 0; i < Number(count); i++) {
    const scope = scopeList[i % scopeList.length]!;
    const key = `w${worker}.k${i}`;
    const value = utf8(`v-${worker}-${i}-${toHex(crypto.getRandomValues(new Uint8Array(6)))}`);
    try {
      await vault.putSecret(scope, key, value);
    } catch (e) {
      if (onError !== "reopen") throw e;
      say(`err ${line(e)}`);
      vault.close();
      vault = await open();
      continue;
    }
    say(`ok ${scope} ${key} ${toHex(value)}`);
    if (onError === "reopen" && last !== undefined) {
      try {
        using got = await vault.getSecret(last[0], last[1]);
        say(toHex(got.bytes) === last[2] ? "read ok" : `read wrong ${last[0]} ${last[1]}`);
      } catch (e) {
        say(`read ${line(e)}`);
      }
    }
    last = [scope, key, toHex(value)];
  }
  say("done");
} else if (mode === "lock") {
  const [path, holdMs, rounds, log, startAt] = args as [string, string, string, string, string];
  await waitUntil(Number(startAt));
  for (let r = 0; r < Number(rounds); r++) {
    const lock = await acquireLock(defaultFileSystem, path, { timeoutMs: 60_000, staleAfterMs: 30_000, what: "test" });
    const me = `${process.pid}.${r}`;
    appendFileSync(log, `enter ${me}\n`);
    await sleep(Number(holdMs));
    appendFileSync(log, `exit ${me}\n`);
    await lock.release();
  }
  say("done");
} else if (mode === "take") {
  const [path, staleAfterMs, timeoutMs] = args as [string, string, string];
  const t0 = Date.now();
  try {
    const lock = await acquireLock(defaultFileSystem, path, {
      timeoutMs: Number(timeoutMs),
      staleAfterMs: Number(staleAfterMs),
      what: "test",
    });
    say(`taken ${Date.now() - t0}`);
    await lock.release();
  } catch (e) {
    say(`${(e as { code?: string }).code ?? "error"} ${(e as Error).message}`);
  }
} else if (mode === "open") {
  const [root, identityRoot] = args as [string, string];
  try {
    const vault = await Vault.open({ root, identityRoot, backend: "encrypted_file" });
    await vault.putSecret("global", "k", "v");
    say("ok");
  } catch (e) {
    say(`${(e as Error).name} ${(e as { code?: string }).code ?? "-"} | ${(e as { hint?: string }).hint ?? ""}`);
  }
} else if (mode === "migrate") {
  const [root, identityRoot, to] = args as [string, string, "scoped" | "palyra"];
  say("ready");
  // A lock left by a migration killed a moment ago is reclaimed at once (its holder is dead).
  const r = await migrateVault({ root, identityRoot, to, staleAfterMs: 0 });
  say(`done ${r.secrets} ${r.resumed}`);
} else if (mode === "rotate" || mode === "reread") {
  const [root, identityRoot, keys, startAt, until] = args as [string, string, string, string, string];
  const vault = await Vault.open({ root, identityRoot });
  await waitUntil(Number(startAt));
  let n = 0;
  let wrong = 0;
  let first = "";
  while (Date.now() < Number(until)) {
    const key = `k${n % Number(keys)}`;
    n++;
    if (mode === "rotate") {
      await vault.putSecret("global", key, `value-${n}`);
      continue;
    }
    // Not `using`: tsx (esbuild 0.28) lowers a `using` in a loop's `try` so that one failure is thrown again by
    // every later iteration, which would count reads that succeeded as wrong.
    try {
      const value = await vault.getSecret("global", key);
      const text = value.text();
      value[Symbol.dispose]();
      if (!/^value-\d+$/.test(text)) throw new Error(`${key} holds a value no writer wrote`);
    } catch (e) {
      wrong++;
      first ||= `${(e as { code?: string }).code ?? "-"} ${String(e).replace(/\s+/g, " ")}`;
    }
  }
  say(mode === "rotate" ? `rotated ${n}` : `reread ${n} ${wrong}${first ? ` ${first}` : ""}`);
} else if (mode === "identity") {
  const [dir, startAt] = args as [string, string];
  await waitUntil(Number(startAt));
  const id = await loadOrCreateIdentity({ fs: defaultFileSystem }, dir);
  say(`identity ${toHex(sha256(utf8(id.privateKeyPem)))} created=${id.created}`);
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
