/**
 * Connection URLs read as libpq reads them (its documentation's examples, 34.1.1 "Connection Strings"),
 * and a real `psql` and the store agreeing on a socket URL.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConnectionUrl, redactUrl } from "../src/store/postgres/connection.ts";
import { VaultError } from "../src/errors.ts";
import { Vault } from "../src/vault.ts";
import { defaultFileSystem } from "../src/platform/fs.ts";
import { rejectsWith, run, tempDir } from "./helpers.ts";
import { databaseOf, postgresServer } from "./postgres_server.ts";

const none = () => undefined;

test("libpq's URL forms: host, port, user, password, database, parameters", () => {
  assert.deepEqual(
    parseConnectionUrl("postgresql://other@localhost/otherdb?connect_timeout=10&application_name=myapp", none),
    {
      host: "localhost",
      port: 5432,
      username: "other",
      database: "otherdb",
      ssl: "prefer",
      applicationName: "myapp",
      connectTimeoutS: 10,
    },
  );
  const full = parseConnectionUrl("postgres://us%40er:p%3Ass@db.example.com:6543/vault?sslmode=verify-full", none);
  assert.deepEqual([full.host, full.port, full.username, full.password, full.database, full.ssl], [
    "db.example.com",
    6543,
    "us@er",
    "p:ss",
    "vault",
    "verify-full",
  ]);
  const v6 = parseConnectionUrl("postgresql://[2001:db8::1234]:5433/database", none);
  assert.deepEqual([v6.host, v6.port], ["2001:db8::1234", 5433]);
  assert.equal(parseConnectionUrl("postgres://h/d?sslmode=disable", none).ssl, false);
  assert.equal(parseConnectionUrl("postgres://h/d?sslmode=require", none).ssl, "require");
});

test("a socket folder, as the host parameter or percent-encoded in the authority, is a socket path (no TLS)", () => {
  const byParam = parseConnectionUrl("postgresql:///dbname?host=/var/lib/postgresql&port=5433", none);
  assert.deepEqual([byParam.path, byParam.host, byParam.ssl, byParam.database], [
    "/var/lib/postgresql/.s.PGSQL.5433",
    undefined,
    false,
    "dbname",
  ]);
  const encoded = parseConnectionUrl("postgresql://%2Fvar%2Flib%2Fpostgresql/dbname", none);
  assert.equal(encoded.path, "/var/lib/postgresql/.s.PGSQL.5432");
});

test("what the URL leaves out comes from libpq's variables, then the OS user; no host at all is the default", () => {
  const env: Record<string, string> = { PGPORT: "6000", USER: "alice", PGPASSWORD: "from-env", PGSSLMODE: "require" };
  const s = parseConnectionUrl("postgres://", (n) => env[n]);
  assert.deepEqual([s.host, s.defaultHost, s.port, s.username, s.database, s.password, s.ssl], [
    "localhost",
    true,
    6000,
    "alice",
    "alice",
    "from-env",
    "require",
  ]);
  const withHost = parseConnectionUrl("postgres:///d", (n) => ({ PGHOST: "/run/pg" } as Record<string, string>)[n]);
  assert.equal(withHost.path, "/run/pg/.s.PGSQL.5432");
  // The URL wins over the variables.
  assert.equal(parseConnectionUrl("postgres://bob@h:7000/x", (n) => env[n]).port, 7000);
  assert.equal(parseConnectionUrl("postgres://bob@h:7000/x", (n) => env[n]).username, "bob");
});

test("a bad URL is invalid_config and its message never shows the password", () => {
  for (
    const bad of [
      "postgres://u:hunter2@h:99999/d",
      "postgres://u:hunter2@h/d?sslmode=sometimes",
      "postgres://u:hunter2@h/d?options=-c",
      "postgres://u:hunter2@h1,h2/d",
      "postgres://u:hunter2@h/d?connect_timeout=-1",
      "postgres://u:hunter2@h/%zz",
    ]
  ) {
    assert.throws(() => parseConnectionUrl(bad, none), (e: unknown) => {
      assert.ok(e instanceof VaultError && e.code === "invalid_config", String(e));
      assert.ok(!e.message.includes("hunter2"), e.message);
      return true;
    }, bad);
  }
  assert.equal(redactUrl("postgres://u:hunter2@h/d"), "postgres://u:***@h/d");
  assert.equal(redactUrl("postgres://h/d?user=u&password=hunter2"), "postgres://h/d?user=u&password=***");
});

test("Vault.open with a store that is not a postgres:// URL: invalid_config, no password shown, nothing created", async () => {
  const identityRoot = `${tempDir("pg-bad-url")}/identity`;
  for (const store of ["mysql://u:hunter2@h/d", "postgres:/u:hunter2@h/d", "POSTGRESQL://u:hunter2@h:0/d"]) {
    const e = await rejectsWith(() => Vault.open({ store, identityRoot }), "invalid_config");
    assert.ok(!e.message.includes("hunter2"), e.message);
  }
  assert.equal(await defaultFileSystem.lstat(identityRoot), undefined);
});

test("psql and the store read the same socket URL to the same server", async () => {
  const pg = await postgresServer();
  const url = pg.url();
  const r = await run(["psql", url, "-XAtc", "SELECT current_user || ' ' || current_database()"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(new TextDecoder().decode(r.stdout).trim(), "postgres postgres");
  const s = parseConnectionUrl(url, none);
  assert.deepEqual([s.path, s.username, s.database], [`${pg.socketDir}/.s.PGSQL.${pg.port}`, "postgres", "postgres"]);
});

test("over TCP on loopback: TLS as sslmode asks, and a certificate that cannot be verified is refused", async () => {
  const pg = await postgresServer();
  const url = await pg.database();
  const name = databaseOf(url);
  const identityRoot = `${tempDir("pg-tcp")}/identity`;
  // Whether the server sees TLS on the connections of one vault (told apart by their application name).
  const seen = (app: string) =>
    pg.psql(`SELECT string_agg(DISTINCT s.ssl::text, ',') FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
      WHERE a.datname = '${name}' AND a.application_name = '${app}'`);
  for (const [mode, tls] of [["disable", "false"], ["prefer", "true"], ["require", "true"]] as const) {
    const vault = await Vault.open({ store: `${pg.tcpUrl(name, mode)}&application_name=m_${mode}`, identityRoot });
    try {
      await vault.putSecret("global", `k_${mode}`, mode);
      using back = await vault.getSecret("global", `k_${mode}`);
      assert.equal(back.text(), mode);
      assert.equal(await seen(`m_${mode}`), tls, `sslmode=${mode}`);
    } finally {
      vault.close();
    }
  }
  // The server's certificate is self-signed: verify-full must refuse it, with a typed error, and write nothing.
  const e = await rejectsWith(
    () => Vault.open({ store: pg.tcpUrl(name, "verify-full"), identityRoot }),
    "backend_unavailable",
  );
  assert.match(e.message, /certificate/i);
});
