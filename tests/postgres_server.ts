/**
 * A real PostgreSQL server for tests: `initdb` in a temporary folder, started
 * with `postgres` on a Unix socket in that folder and on a loopback TCP port
 * (TLS on, with a self-signed certificate for `localhost`), and stopped
 * when the test process exits. `.ci/run` installs Debian's `postgresql`,
 * whose programs live in /usr/lib/postgresql/<version>/bin. As root, the
 * server runs as the `postgres` user: PostgreSQL refuses to run as root.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { ROOT, run, tempDir } from "./helpers.ts";

/** A running server. */
export interface PgServer {
  /** The folder of its socket. */
  socketDir: string;
  port: number;
  /** A libpq URL for database `name` on it, over the socket (`?host=` as `psql` takes it). */
  url(name?: string): string;
  /** A libpq URL for database `name` over TCP to 127.0.0.1, with `sslmode`. */
  tcpUrl(name: string, sslmode: string): string;
  /** Runs SQL through `psql` as the superuser; its output, unaligned, tuples only. */
  psql(sql: string, database?: string): Promise<string>;
  /** A new empty database; its URL. */
  database(): Promise<string>;
  /** `pg_dump` of a database, as SQL text. */
  dump(database: string): Promise<string>;
  /** Stops the server at once (SIGQUIT: an immediate shutdown), as a crash would. */
  stop(): Promise<void>;
  /** Starts it again on the same folder, socket and port. */
  start(): Promise<void>;
}

function binDir(): string {
  // Through links: the folder must hold the server's other programs too (postgres, pg_isready).
  const onPath = spawnSync("sh", ["-c", "command -v initdb"], { encoding: "utf8" }).stdout.trim();
  if (onPath !== "") return dirname(realpathSync(onPath));
  const base = "/usr/lib/postgresql";
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(base, v, "bin/initdb"))) return join(base, v, "bin");
  assert.fail("PostgreSQL is not installed: .ci/run installs Debian's postgresql");
}

const asRoot = process.getuid?.() === 0;

/** argv that runs `argv` as the postgres user when this process is root. */
function asServerUser(argv: string[]): string[] {
  return asRoot ? ["runuser", "-u", "postgres", "--", ...argv] : argv;
}

/** The database name in a URL that `database()` or `url()` gave (a bare name is returned as it is). */
export function databaseOf(url: string): string {
  return /\/([^/?]+)\?/.exec(url)?.[1] ?? url;
}

let server: Promise<PgServer> | undefined;
let databases = 0;

/** The server of this test process, started on first use. */
export function postgresServer(): Promise<PgServer> {
  server ??= startServer();
  return server;
}

async function startServer(): Promise<PgServer> {
  const bin = binDir();
  const top = tempDir("pg");
  chmodSync(top, 0o755);
  const data = join(top, "data");
  const socketDir = join(top, "sock");
  mkdirSync(data, { mode: 0o700 });
  mkdirSync(socketDir, { mode: 0o700 });
  if (asRoot) {
    const pw = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
    const uid = Number(pw.stdout.trim());
    const gid = Number(spawnSync("id", ["-g", "postgres"], { encoding: "utf8" }).stdout.trim());
    chownSync(data, uid, gid);
    chownSync(socketDir, uid, gid);
    // The tests connect as root through the socket: the folder must let them in.
    chmodSync(socketDir, 0o777);
  }
  const init = await run(
    asServerUser([join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8"]),
    {
      timeoutMs: 120_000,
    },
  );
  assert.equal(init.code, 0, `initdb failed: ${init.stderr}`);
  // Where the server looks for its certificate and key by default (ssl=on); a P-256 key is made at once.
  const cert = await run(asServerUser([
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    join(data, "server.key"),
    "-out",
    join(data, "server.crt"),
    "-days",
    "2",
    "-subj",
    "/CN=localhost",
  ]));
  assert.equal(cert.code, 0, `openssl req failed: ${cert.stderr}`);
  const port = 20_000 + Math.floor(Math.random() * 40_000);
  // A supervisor holds the server: it stops it when this process's end closes its stdin, even when
  // exit handlers do not run (a test process killed, or a runtime that skips them).
  const session = spawn("sh", [join(ROOT, "tests/workers/postgres_session.sh"), bin, data, socketDir, String(port)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  let out = "";
  let waiting: { word: string; resolve: () => void; reject: (e: Error) => void } | undefined;
  session.stdout.on("data", (c: Uint8Array) => {
    out += new TextDecoder().decode(c);
    if (waiting !== undefined && out.includes(`${waiting.word}\n`)) {
      out = out.slice(out.indexOf(`${waiting.word}\n`) + waiting.word.length + 1);
      const w = waiting;
      waiting = undefined;
      w.resolve();
    }
  });
  session.on("exit", (code) => waiting?.reject(new Error(`the test PostgreSQL server exited (${code})`)));
  // Neither the supervisor nor its pipes may keep this process alive; while it is being waited for, a timer does.
  for (const h of [session, session.stdin, session.stdout] as unknown as { unref?: () => void }[]) h.unref?.();
  const answer = async (word: string) => {
    const keep = setInterval(() => {}, 1000);
    try {
      await new Promise<void>((resolve, reject) => (waiting = { word, resolve, reject }));
    } finally {
      clearInterval(keep);
    }
  };
  await answer("ready");
  const start = async () => {
    session.stdin.write("start\n");
    await answer("ready");
  };
  const stop = async () => {
    session.stdin.write("stop\n");
    await answer("stopped");
  };
  const psql = async (sql: string, database = "postgres") => {
    const r = await run([
      "psql",
      "-h",
      socketDir,
      "-p",
      String(port),
      "-U",
      "postgres",
      "-d",
      database,
      "-XAtq",
      "-v",
      "ON_ERROR_STOP=1",
      "-c",
      sql,
    ]);
    assert.equal(r.code, 0, `psql failed: ${r.stderr}`);
    return new TextDecoder().decode(r.stdout).trim();
  };
  const url = (name = "postgres") => `postgres://postgres@/${name}?host=${encodeURIComponent(socketDir)}&port=${port}`;
  return {
    socketDir,
    port,
    url,
    tcpUrl: (name, sslmode) => `postgres://postgres@127.0.0.1:${port}/${name}?sslmode=${sslmode}`,
    psql,
    async database() {
      const name = `vault_${process.pid}_${++databases}`;
      await psql(`CREATE DATABASE ${name}`);
      return url(name);
    },
    async dump(database) {
      const name = databaseOf(database);
      const r = await run(["pg_dump", "-h", socketDir, "-p", String(port), "-U", "postgres", "-d", name]);
      assert.equal(r.code, 0, `pg_dump failed: ${r.stderr}`);
      return new TextDecoder().decode(r.stdout);
    },
    stop,
    start,
  };
}
