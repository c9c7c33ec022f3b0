/**
 * Whether the process may open a connection. Only Deno has network
 * permissions; a connection it denies inside the PostgreSQL client would end
 * the process with an uncaught error, so the store asks first.
 */

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
