/**
 * Network access: whether the process may open a connection, and opening
 * one. Only Deno has network permissions; a connection it denies inside the
 * PostgreSQL client would end the process with an uncaught error, so the
 * store asks first. Sockets are opened here, not by the client, so that a
 * closed vault can refuse every new one (see `SharedVault.open`).
 */
import { connect as netConnect, Socket } from "node:net";

/** A network target in Deno's spelling: `host:port`, or `unix:/path/to/socket`. */
export type NetTarget = string;

/** False when the runtime's permissions deny connecting to `target` (Deno without `--allow-net` for it). */
export function mayConnect(target: NetTarget): boolean {
  const deno = (globalThis as {
    Deno?: { permissions?: { querySync?(d: { name: "net"; host: string }): { state: string } } };
  }).Deno;
  const query = deno?.permissions?.querySync;
  if (query === undefined) return true;
  try {
    return query.call(deno!.permissions, { name: "net", host: target }).state === "granted";
  } catch {
    return true; // a spelling this Deno does not know: let the connection itself decide
  }
}

/** Where a stream socket connects: a Unix socket's path, or a host and TCP port. */
export type SocketTarget = { path: string } | { host: string; port: number };

/** A connection failure with a `code`, as `node:net` and the PostgreSQL client give theirs. */
export class SocketError extends Error {
  /** `CONNECT_TIMEOUT`, `CONNECTION_ENDED`, or the socket's own (`ECONNREFUSED`, `ENOENT`, …). */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "SocketError";
    this.code = code;
  }
}

/**
 * A connected `node:net` socket to `target` (the same module on Deno, Bun and
 * Node). Rejects with the socket's own error (its `code`: `ECONNREFUSED`,
 * `ENOENT`, …), or `CONNECT_TIMEOUT` after `timeoutMs`, leaving no socket open.
 */
export function connectSocket(target: SocketTarget, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = "path" in target ? netConnect({ path: target.path }) : netConnect(target.port, target.host);
    const timer = setTimeout(() => {
      socket.destroy();
      const where = "path" in target ? target.path : `${target.host}:${target.port}`;
      reject(new SocketError("CONNECT_TIMEOUT", `connect to ${where} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve(socket);
    });
    socket.once("error", (e) => {
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    });
  });
}

/**
 * A socket that fails with `error` (its `error`, then `close` event) on the
 * next turn of the event loop, once its owner has its listeners in place; what
 * is written to it meanwhile is dropped. For a client that expects a socket
 * from a factory and learns of failures only from those events.
 */
export function failedSocket(error: Error): Socket {
  const socket = new Socket();
  socket.write = () => true;
  setTimeout(() => socket.destroy(error), 0);
  return socket;
}
