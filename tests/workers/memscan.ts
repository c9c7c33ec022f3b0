/**
 * Counts copies of key material left in this process's memory (Linux, Node with
 * --expose-gc): `kek <puts>` opens a vault with a random KEK (`webcrypto <puts>`:
 * the same with `kekEngine: "webcrypto"`), `identity <puts>`
 * with a device identity (also counting its HKDF pseudo-random key); both do
 * that many puts and close the vault, then scan every writable mapping.
 * Prints one JSON line: {"kek": n, "prk": n}, not counting the reference copies.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { sha256 } from "@noble/hashes/sha2.js";
import { extract } from "@noble/hashes/hkdf.js";
import { Vault } from "../../src/vault.ts";
import { deriveKek } from "../../src/crypto/kdf_noble.ts";

function scan(patterns: Uint8Array[]): number[] {
  const fd = openSync("/proc/self/mem", "r");
  const hits = patterns.map(() => 0);
  const buf = new Uint8Array(1 << 20);
  for (const line of readFileSync("/proc/self/maps", "utf8").trim().split("\n")) {
    const [range, perms, , , , path] = line.split(/\s+/);
    if (!perms!.startsWith("rw") || (path && !path.startsWith("["))) continue;
    const [a, b] = range!.split("-").map((h) => BigInt("0x" + h)) as [bigint, bigint];
    for (let p = a; p < b; p += BigInt(buf.length - 32)) {
      let n = 0;
      try {
        n = readSync(fd, buf, 0, Number(b - p < BigInt(buf.length) ? b - p : BigInt(buf.length)), p);
      } catch {
        break;
      }
      const view = Buffer.from(buf.buffer, 0, n);
      patterns.forEach((pat, k) => {
        let i = -1;
        while ((i = view.indexOf(pat, i + 1)) !== -1 && i + 32 <= n) hits[k]!++;
      });
    }
  }
  closeSync(fd);
  return hits;
}

const [mode, count] = process.argv.slice(2) as [string, string];
const dir = mkdtempSync(join(tmpdir(), "palyra-memscan-"));
let kekPattern: Uint8Array;
let prkPattern: Uint8Array;
{
  let vault: Vault;
  if (mode === "kek" || mode === "webcrypto") {
    kekPattern = crypto.getRandomValues(new Uint8Array(32));
    prkPattern = crypto.getRandomValues(new Uint8Array(32));
    const kek = kekPattern.slice();
    const kekEngine = mode === "webcrypto" ? "webcrypto" : "noble";
    vault = await Vault.open({ root: join(dir, "vault"), kek, backend: "encrypted_file", kekEngine });
    kek.fill(0);
  } else {
    const pem = `-----BEGIN PRIVATE KEY-----\n${
      btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(48))))
    }\n-----END PRIVATE KEY-----\n`;
    const seed = new TextEncoder().encode(pem);
    kekPattern = deriveKek(seed);
    const ikm = sha256(seed);
    prkPattern = extract(sha256, ikm, new TextEncoder().encode("palyra.vault.kek.v1"));
    ikm.fill(0);
    const id = join(dir, "identity");
    (await import("node:fs")).mkdirSync(id, { mode: 0o700 });
    writeFileSync(join(id, "state.v1.json"), JSON.stringify({ version: 1, ca: { private_key_pem: pem } }), {
      mode: 0o600,
    });
    vault = await Vault.open({ root: join(dir, "vault"), identityRoot: id, backend: "encrypted_file" });
  }
  for (let i = 0; i < Number(count); i++) await vault.putSecret("global", `k${i}`, "value");
  for (let i = 0; i < Number(count); i++) (await vault.getSecret("global", `k${i}`)).dispose();
  if (mode === "webcrypto") {
    // Values of 4 KiB or more go to the runtime's own AES-GCM (node:crypto here), their data keys too.
    const large = new Uint8Array(5000).fill(0x41);
    for (let i = 0; i < Number(count); i++) await vault.putSecret("global", `large${i}`, large);
    for (let i = 0; i < Number(count); i++) (await vault.getSecret("global", `large${i}`)).dispose();
  }
  vault.close();
}
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
await new Promise((r) => setTimeout(r, 100));
gc?.();
const [kek, prk] = scan([kekPattern, prkPattern]);
console.log(JSON.stringify({ kek: kek! - 1, prk: prk! - 1 }));
