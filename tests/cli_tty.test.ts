/**
 * The hidden prompt of `palyra-secrets set`, driven through a real
 * pseudo-terminal (tmux): nothing typed is echoed, the stored value is what
 * was typed (after backspace), and Ctrl-C stores nothing.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { existsSync, readFileSync } from "node:fs";
import { Buffer } from "node:buffer";
import { run, tempDir } from "./helpers.ts";
import { CLI_TARGETS, ownTargets } from "./cli_targets.ts";

const sh = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `argv` in a detached tmux session and returns helpers to drive it. */
async function terminal(argv: string[], env: Record<string, string>) {
  const socket = `palyra-test-${crypto.randomUUID().slice(0, 8)}`;
  const envs = Object.entries(env).map(([k, v]) => `${k}=${sh(v)}`).join(" ");
  const command = `env ${envs} ${argv.map(sh).join(" ")}; echo "EXIT=$?"; sleep 60`;
  const tmux = (...args: string[]) => run(["tmux", "-L", socket, ...args]);
  const started = await tmux("new-session", "-d", "-x", "200", "-y", "30", command);
  assert.equal(started.code, 0, started.stderr);
  const screen = async () => new TextDecoder().decode((await tmux("capture-pane", "-p")).stdout);
  const waitFor = async (pattern: RegExp) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const s = await screen();
      if (pattern.test(s)) return s;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; screen:\n${s}`);
      await sleep(100);
    }
  };
  return {
    waitFor,
    type: (text: string) => tmux("send-keys", "-l", text),
    key: (name: string) => tmux("send-keys", name),
    /** Pastes `text` as a terminal would (line breaks sent as CR), bracketed when `bracketed`. */
    paste: async (text: string, bracketed: boolean) => {
      assert.equal((await tmux("set-buffer", "-b", "p", "--", text)).code, 0);
      return tmux("paste-buffer", "-b", "p", ...(bracketed ? ["-p"] : []));
    },
    close: () => tmux("kill-server"),
  };
}

for (const target of ownTargets()) {
  const argv = CLI_TARGETS[target];
  describe(`hidden prompt on ${target}`, () => {
    test("typed characters are not echoed and are stored exactly; Ctrl-C stores nothing", async () => {
      const dir = tempDir("tty");
      const env = { PALYRA_VAULT_DIR: join(dir, "vault"), PALYRA_IDENTITY_DIR: join(dir, "identity") };
      const cli = await argv();

      const t = await terminal([...cli, "set", "global", "typed_key"], env);
      try {
        await t.waitFor(/Value for global\/typed_key \(input hidden\):/);
        await t.type("hunter2-typeX");
        await t.key("BSpace");
        await t.type("d");
        await sleep(200);
        assert.doesNotMatch(await t.waitFor(/input hidden/), /hunter2/);
        await t.key("Enter");
        const screen = await t.waitFor(/EXIT=\d+/);
        assert.match(screen, /EXIT=0/);
        assert.match(screen, /secrets\.set scope=global key=typed_key stored=true/);
        assert.doesNotMatch(screen, /hunter2|typeX/);
      } finally {
        await t.close();
      }
      const got = await run([...cli, "get", "global", "typed_key", "--reveal"], { env });
      assert.equal(new TextDecoder().decode(got.stdout), "hunter2-typed");

      const c = await terminal([...cli, "set", "global", "cancelled_key"], env);
      try {
        await c.waitFor(/input hidden/);
        await c.type("do-not-store");
        await c.key("C-c");
        const screen = await c.waitFor(/EXIT=\d+/);
        assert.match(screen, /EXIT=130/, "Ctrl-C exits 130, like an interrupted program");
        assert.match(screen, /error: cancelled: cancelled; nothing was stored/);
        assert.doesNotMatch(screen, /do-not-store/);
      } finally {
        await c.close();
      }
      const list = await run([...cli, "list"], { env });
      assert.doesNotMatch(new TextDecoder().decode(list.stdout), /cancelled_key/);
    });

    test("regression: a pasted multi-line value is kept whole with bracketed paste, and refused without", async () => {
      const dir = tempDir("tty-paste");
      const env = { PALYRA_VAULT_DIR: join(dir, "vault"), PALYRA_IDENTITY_DIR: join(dir, "identity") };
      const cli = await argv();
      const pem =
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";

      const b = await terminal([...cli, "set", "global", "pem_key"], env);
      try {
        await b.waitFor(/input hidden/);
        await b.paste(pem, true);
        await sleep(300);
        await b.key("Enter");
        const screen = await b.waitFor(/EXIT=\d+/);
        assert.match(screen, /EXIT=0/);
        assert.doesNotMatch(screen, /MIGH/);
      } finally {
        await b.close();
      }
      const got = await run([...cli, "get", "global", "pem_key", "--reveal"], { env });
      assert.equal(new TextDecoder().decode(got.stdout), pem);

      const u = await terminal([...cli, "set", "global", "cut_key"], env);
      try {
        await u.waitFor(/input hidden/);
        await u.paste(pem, false);
        const screen = await u.waitFor(/EXIT=\d+/);
        assert.match(screen, /EXIT=2/);
        assert.match(screen, /went on after the end of the line.*nothing was stored/s);
        assert.doesNotMatch(screen, /MIGH/);
      } finally {
        await u.close();
      }
      const none = await run([...cli, "get", "global", "cut_key"], { env });
      assert.equal(none.code, 1, "nothing was stored, not even the first line");
    });
  });
}

for (const target of ownTargets()) {
  const argv = CLI_TARGETS[target];
  describe(`passphrase prompt on ${target}`, () => {
    test("export --passphrase asks twice at a hidden prompt; the real `age -d` and import open the file", async () => {
      const dir = tempDir("tty-export");
      const env = { PALYRA_VAULT_DIR: join(dir, "vault"), PALYRA_IDENTITY_DIR: join(dir, "identity") };
      const cli = await argv();
      assert.equal((await run([...cli, "set", "ws:acme/token"], { env, input: "tok-tty-export" })).code, 0);
      const file = join(dir, "backup.age");
      const typeTwice = async (t: Awaited<ReturnType<typeof terminal>>, first: string, second: string) => {
        await t.waitFor(/Passphrase for the export \(input hidden\):/);
        await t.type(first);
        await t.key("Enter");
        await t.waitFor(/The same passphrase again:/);
        await t.type(second);
        await t.key("Enter");
        return await t.waitFor(/EXIT=\d+/);
      };
      const differ = await terminal([...cli, "export", "--to", file, "--passphrase"], env);
      try {
        const screen = await typeTwice(differ, "pass-one-tty", "pass-two-tty");
        assert.match(screen, /EXIT=2/);
        assert.match(screen, /the two passphrases differ; nothing was written/);
        assert.doesNotMatch(screen, /pass-one|pass-two/);
      } finally {
        await differ.close();
      }
      assert.equal(existsSync(file), false);
      const same = await terminal([...cli, "export", "--to", file, "--passphrase"], env);
      try {
        const screen = await typeTwice(same, "correct-tty-pass", "correct-tty-pass");
        assert.match(screen, /EXIT=0/);
        assert.match(screen, /secrets\.export to=\S+ secrets=1 scopes=ws:acme/);
        assert.doesNotMatch(screen, /correct-tty/);
      } finally {
        await same.close();
      }
      // The age tool reads a passphrase only from a terminal: it gets one here.
      const plain = join(dir, "doc.json");
      const age = await terminal(["age", "-d", "-o", plain, file], {});
      try {
        await age.waitFor(/passphrase/i);
        await age.type("correct-tty-pass");
        await age.key("Enter");
        assert.match(await age.waitFor(/EXIT=\d+/), /EXIT=0/);
      } finally {
        await age.close();
      }
      const doc = JSON.parse(readFileSync(plain, "utf8"));
      assert.equal(doc.format, "palyra.vault.export.v1");
      assert.equal(Buffer.from(doc.secrets[0].value_b64, "base64").toString(), "tok-tty-export");
      const other = { ...env, PALYRA_VAULT_DIR: join(dir, "vault2") };
      const imp = await terminal([...cli, "import", "--from", file], other);
      try {
        await imp.waitFor(/Passphrase for "[^"]+" \(input hidden\):/);
        await imp.type("correct-tty-pass");
        await imp.key("Enter");
        const screen = await imp.waitFor(/EXIT=\d+/);
        assert.match(screen, /EXIT=0/);
        assert.match(screen, /imported=1/);
      } finally {
        await imp.close();
      }
      const got = await run([...cli, "get", "ws:acme/token", "--reveal"], { env: other });
      assert.equal(new TextDecoder().decode(got.stdout), "tok-tty-export");
    });
  });
}
