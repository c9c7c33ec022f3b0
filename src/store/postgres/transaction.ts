/**
 * Transactions that survive a killed connection. postgres@3.4.9 crashes the
 * whole process, with a TypeError thrown from a `setImmediate` that no caller
 * can catch, when a query is written to a connection after it closed
 * (porsager/postgres#1154 and #1208, open). `sql.begin` does exactly that: it
 * sends `ROLLBACK` when its function throws, and a function that goes on
 * after the loss sends its next query. So the function gets a `tx` whose
 * queries, once the connection is lost, never settle and write nothing;
 * `begin` itself rejects with the loss, because it races the connection's
 * close, and the abandoned function is collected.
 */
import type postgres from "postgres";
import { isConnectionLoss } from "./connection.ts";

/** The queries a transaction's function may send. */
export interface Tx {
  <T extends readonly object[] = postgres.Row[]>(
    strings: TemplateStringsArray,
    ...args: postgres.ParameterOrFragment<never>[]
  ): Promise<postgres.RowList<T>>;
  unsafe(query: string): Promise<postgres.RowList<postgres.Row[]>>;
}

const never = new Promise<never>(() => {});

/** Runs `fn` in one transaction on `sql` (see the module comment for why not `sql.begin` directly). */
export async function transaction<T>(sql: postgres.Sql, fn: (tx: Tx) => Promise<T>): Promise<T> {
  let lost = false;
  const hold = <R>(send: () => Promise<R>): Promise<R> => {
    if (lost) return never;
    return send().catch((e: unknown) => {
      if (!isConnectionLoss(e)) throw e;
      lost = true;
      return never;
    });
  };
  const run = sql.begin((raw) => {
    const tx = ((strings: TemplateStringsArray, ...args: postgres.ParameterOrFragment<never>[]) =>
      hold(() =>
        raw(strings, ...args)
      )) as Tx;
    tx.unsafe = (query: string) => hold(() => raw.unsafe(query));
    return fn(tx);
  });
  run.catch(() => {
    lost = true;
  });
  return await run as T;
}
