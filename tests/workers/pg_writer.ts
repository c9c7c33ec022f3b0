/**
 * One writer of the multi-process PostgreSQL test: `count` puts into shared
 * scopes, as device `identityRoot`; prints each acknowledged put as a JSON
 * line (scope, key, version, value). Usage: pg_writer.ts URL IDENTITY INDEX COUNT
 */
import process from "node:process";
import { Vault } from "../../src/vault.ts";

const [url, identityRoot, index, count] = process.argv.slice(2) as [string, string, string, string];
const vault = await Vault.open({ store: url, identityRoot, keepVersions: 100_000 });
const lines: string[] = [];
try {
  for (let j = 0; j < Number(count); j++) {
    // Half to keys of its own, half to five keys every writer shares.
    const scope = j % 4 === 0 ? "global" : "ws:fleet";
    const key = j % 2 === 0 ? `p${index}.k${j}` : `shared.${j % 5}`;
    const value = `p${index}-${j}-${crypto.randomUUID()}`;
    const r = await vault.putSecret(scope, key, value);
    lines.push(JSON.stringify({ scope, key, version: r.version, value }));
  }
} finally {
  vault.close();
}
console.log(lines.join("\n"));
