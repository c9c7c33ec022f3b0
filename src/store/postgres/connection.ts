/**
 * The connection to a PostgreSQL store (docs/FORMAT.md §10): a libpq
 * connection URL read as `psql` reads it, handed to the `postgres` client, and
 * the client's failures turned into `VaultError`s. The client ignores libpq's
 * `?host=/socket/folder`, so a socket folder is given to it as `path`.
 */
import { VaultError } from "../../errors.ts";

/** What a connection URL says, in the client's terms. */
export interface ConnectionSettings {
  /** TCP host; absent for a Unix socket. */
  host?: string;
  /** The URL named no host: `localhost`, unless a local server's socket is found first. */
  defaultHost?: boolean;
  port: number;
  /** The Unix socket file (`<folder>/.s.PGSQL.<port>`), when the host is a folder. */
  path?: string;
  database?: string;
  username?: string;
  password?: string;
  /** `false` for `sslmode=disable`; otherwise the mode the client takes. */
  ssl: false | "prefer" | "require" | "verify-full";
  applicationName: string;
  connectTimeoutS: number;
}

const SSL_MODES: Record<string, ConnectionSettings["ssl"]> = {
  disable: false,
  allow: "prefer",
  prefer: "prefer",
  require: "require",
  "verify-ca": "verify-full",
  "verify-full": "verify-full",
};

function badStore(why: string): VaultError {
  return new VaultError("invalid_config", `open PostgreSQL store failed: ${why}`, {
    hint: "give a libpq connection URL, e.g. postgres://user@db.example.com/vault?sslmode=verify-full " +
      "or postgres:///vault?host=/var/run/postgresql",
  });
}

/** `url` with its password replaced by `***`: what messages and `Vault.root` show. */
export function redactUrl(url: string): string {
  // Any scheme, and one slash or none: a mistyped URL is shown in an error message too.
  return url.replace(/^([a-z][a-z0-9+.-]*:\/*[^:@/?#]*):[^@/?#]*@/i, "$1:***@")
    .replace(/([?&]password=)[^&#]*/i, "$1***");
}

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw badStore(`its ${what} is not valid percent-encoding`);
  }
}

/** Where libpq looks for a server's socket when no host is given (Debian's folder, then upstream's). */
export const DEFAULT_SOCKET_DIRS = ["/var/run/postgresql", "/tmp"];

/**
 * Reads a libpq connection URL: `postgres[ql]://[user[:password]@][host][:port][/dbname][?param=value&…]`.
 * `host` (in the authority or as a parameter) may be a socket folder (it starts with `/`); `sslmode`,
 * `port`, `user`, `password`, `dbname`, `application_name` and `connect_timeout` are read as parameters too.
 * What the URL leaves out comes from libpq's variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
 * `PGDATABASE`, `PGSSLMODE`) through `env`. With no host at all, the settings are for `localhost`
 * and say `defaultHost`: the caller looks for a local server's socket first, as libpq does
 * (`useSocket`).
 */
export function parseConnectionUrl(
  url: string,
  env: (name: string) => string | undefined = () => undefined,
): ConnectionSettings {
  const m = /^postgres(?:ql)?:\/\/([^/?#]*)(\/[^?#]*)?(\?[^#]*)?(#.*)?$/i.exec(url);
  if (m === null) throw badStore(`${JSON.stringify(redactUrl(url))} is not a postgres:// URL`);
  const [, authority = "", pathPart = "", query = ""] = m;
  let userInfo = "";
  let hostPort = authority;
  const at = authority.lastIndexOf("@");
  if (at >= 0) {
    userInfo = authority.slice(0, at);
    hostPort = authority.slice(at + 1);
  }
  const params = new Map<string, string>();
  for (const pair of query.slice(1).split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const name = decode(eq < 0 ? pair : pair.slice(0, eq), "query");
    params.set(name, decode(eq < 0 ? "" : pair.slice(eq + 1).replaceAll("+", " "), "query"));
  }
  const known = ["host", "hostaddr", "port", "user", "password", "dbname", "sslmode", "application_name"];
  for (const name of params.keys()) {
    if (!known.includes(name) && name !== "connect_timeout") {
      throw badStore(
        `the parameter ${JSON.stringify(name)} is not supported (supported: ${known.join(", ")}, connect_timeout)`,
      );
    }
  }
  let host: string | undefined;
  let portText: string | undefined;
  const bracket = /^\[([^\]]*)\](?::(.*))?$/.exec(hostPort);
  if (bracket !== null) {
    host = bracket[1];
    portText = bracket[2];
  } else {
    const colon = hostPort.lastIndexOf(":");
    host = colon >= 0 ? hostPort.slice(0, colon) : hostPort;
    portText = colon >= 0 ? hostPort.slice(colon + 1) : undefined;
  }
  host = decode(host ?? "", "host");
  if (host.includes(",")) throw badStore("several hosts in one URL are not supported");
  host = params.get("host") ?? params.get("hostaddr") ?? (host === "" ? env("PGHOST") ?? "" : host);
  portText = params.get("port") ?? (portText === undefined || portText === "" ? env("PGPORT") : portText);
  const port = portText === undefined || portText === "" ? 5432 : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw badStore(`the port ${JSON.stringify(portText)} is not a number from 1 to 65535`);
  }
  const colon = userInfo.indexOf(":");
  // libpq's defaults: the OS user, and a database named after the user.
  const username = params.get("user") ??
    (userInfo === "" ? undefined : decode(colon < 0 ? userInfo : userInfo.slice(0, colon), "user")) ??
    env("PGUSER") ?? env("USER") ?? env("LOGNAME");
  const password = params.get("password") ?? (colon < 0 ? undefined : decode(userInfo.slice(colon + 1), "password")) ??
    env("PGPASSWORD");
  const database = params.get("dbname") ??
    (pathPart.length > 1 ? decode(pathPart.slice(1), "database name") : undefined) ?? env("PGDATABASE") ?? username;
  const sslmode = params.get("sslmode") ?? env("PGSSLMODE") ?? "prefer";
  const ssl = SSL_MODES[sslmode];
  if (ssl === undefined) {
    throw badStore(`sslmode ${JSON.stringify(sslmode)} is not one of ${Object.keys(SSL_MODES).join(", ")}`);
  }
  const timeout = Number(params.get("connect_timeout") ?? "10");
  if (!Number.isFinite(timeout) || timeout <= 0) throw badStore("connect_timeout must be a positive number of seconds");
  const out: ConnectionSettings = {
    port,
    ssl,
    applicationName: params.get("application_name") ?? "palyra-vault",
    connectTimeoutS: timeout,
  };
  if (host === "") {
    out.host = "localhost";
    out.defaultHost = true;
  } else if (host.startsWith("/")) {
    useSocket(out, host);
  } else {
    out.host = host;
  }
  if (database !== undefined) out.database = database;
  if (username !== undefined) out.username = username;
  if (password !== undefined) out.password = password;
  return out;
}

/** The socket file of the server on `settings.port` in folder `dir`. */
export function socketPath(dir: string, port: number): string {
  return `${dir.replace(/\/+$/, "")}/.s.PGSQL.${port}`;
}

/** Points `settings` at the socket in folder `dir` instead of a host. */
export function useSocket(settings: ConnectionSettings, dir: string): void {
  delete settings.host;
  settings.path = socketPath(dir, settings.port);
  // A socket needs no TLS; libpq does not use it there either.
  settings.ssl = false;
}

/** SQLSTATE classes and client codes that mean the connection, not the statement, failed. */
const CONNECTION_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ENOENT",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTFOUND",
  "57P01", // admin_shutdown: pg_terminate_backend, a server stop
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now: the server is starting
]);

/** The client's error code (`code` of a server or client error), if any. */
export function pgCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Whether `e` says the connection was lost or could not be made (not that a statement failed). */
export function isConnectionLoss(e: unknown): boolean {
  const code = pgCode(e);
  return code !== undefined && (CONNECTION_CODES.has(code) || code.startsWith("08"));
}

/** Whether a TLS handshake failed on the server's certificate (OpenSSL's codes on Node and Bun; rustls on Deno). */
function isCertificateError(code: string | undefined, text: string): boolean {
  return (code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(code)) ||
    /invalid ?certificate|certificate (verify|is not valid)|unknown ?issuer/i.test(text);
}

/** A failure of the client as a `VaultError` (a `VaultError` passes through). */
export function storeError(action: string, e: unknown): VaultError {
  if (e instanceof VaultError) return e;
  const code = pgCode(e);
  const text = e instanceof Error ? e.message : String(e);
  if (isConnectionLoss(e)) {
    return new VaultError("backend_unavailable", `${action} failed: the PostgreSQL connection was lost (${text})`, {
      hint: "check that the server is running and reachable, then try again",
      cause: e,
    });
  }
  if (isCertificateError(code, text)) {
    return new VaultError(
      "backend_unavailable",
      `${action} failed: the server's TLS certificate cannot be verified (${text})`,
      {
        hint: "give the server a certificate from a CA this runtime trusts, " +
          "or use sslmode=require to encrypt without verifying whom you talk to",
        cause: e,
      },
    );
  }
  if (code === "28P01" || code === "28000") {
    return new VaultError("permission", `${action} failed: the server refused the login (${text})`, {
      hint: "check the user and password of the connection URL, and the server's pg_hba.conf",
      cause: e,
    });
  }
  if (code === "42501") {
    return new VaultError("permission", `${action} failed: the database role lacks a privilege (${text})`, {
      hint: 'grant the role the privileges the README lists under "PostgreSQL store"',
      cause: e,
    });
  }
  return new VaultError("io", `${action} failed: ${text}${code === undefined ? "" : ` (${code})`}`, { cause: e });
}
