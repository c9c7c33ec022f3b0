// The least a `palyra-secrets get <scope> <key>` can do, written out by hand from docs/FORMAT.md, as the floor under
// the CLI's start-up rows in bench/cli_startup.mjs: read the store key and the two identity items and open them
// (§4.2, §4.3), derive the KEK (§2), read the secret's object and open its envelope (§1, §3), print one line. No
// checks, no errors worth the name, no config, no lock: what is left is what any `get` on this runtime pays. Plain
// JavaScript, so that Node runs it as it is; `--reveal` prints the value, so the bench can check it read the same one.
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";

// Deno's own file API: its `node:fs` would load the Node compatibility layer, which the CLI does not.
const readFileSync = globalThis.Deno
  ? (path, encoding) => encoding ? Deno.readTextFileSync(path) : Deno.readFileSync(path)
  : (await import("node:fs")).readFileSync;

const [scope, key, reveal] = globalThis.Deno?.args ?? process.argv.slice(2);
const env = (name) => globalThis.Deno?.env.get(name) ?? globalThis.process?.env[name];
const vaultDir = env("PALYRA_VAULT_DIR");
const identityDir = env("PALYRA_IDENTITY_DIR");
const text = new TextEncoder();
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const itemFile = (name) => `${identityDir}/${hex(text.encode(name))}`;
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
};
// Bun's own SHA-256 is synchronous and costs it nothing to load; elsewhere WebCrypto's.
const sha256 = globalThis.Bun
  ? (bytes) => Promise.resolve(globalThis.Bun.SHA256.hash(bytes))
  : async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));

const storeKey = readFileSync(`${identityDir}/.store-key.v1`);
const openItem = (name) => {
  const bytes = readFileSync(itemFile(name));
  const plain = chacha20poly1305(storeKey, bytes.subarray(4, 16), new Uint8Array(0)).decrypt(bytes.subarray(16));
  return JSON.parse(new TextDecoder().decode(plain));
};
// The state item decides first: an older one holds the CA key itself.
const state = openItem("identity/state.v1.json");
const seed = text.encode(state.ca?.private_key_pem ?? openItem("identity/ca/state.json").private_key_pem);

const ikm = await crypto.subtle.importKey("raw", await sha256(seed), "HKDF", false, ["deriveBits"]);
const kekBits = await crypto.subtle.deriveBits(
  { name: "HKDF", hash: "SHA-256", salt: text.encode("palyra.vault.kek.v1"), info: text.encode("envelope:kek") },
  ikm,
  256,
);
const kek = await crypto.subtle.importKey("raw", kekBits, "AES-GCM", false, ["decrypt"]);

const id = hex(
  await sha256(concat(text.encode(`palyra.vault.object.v1${scope}`), new Uint8Array([0]), text.encode(key))),
);
const envelope = JSON.parse(readFileSync(`${vaultDir}/objects/obj_${id}`, "utf8"));
const b64 = (field) => Uint8Array.from(atob(envelope[field]), (c) => c.charCodeAt(0));
const aad = b64("aad_b64");
const dek = await crypto.subtle.decrypt(
  { name: "AES-GCM", iv: b64("dek_nonce_b64"), additionalData: aad },
  kek,
  concat(b64("dek_ciphertext_b64"), b64("dek_mac_b64")),
);
const dekKey = await crypto.subtle.importKey("raw", dek, "AES-GCM", false, ["decrypt"]);
const value = await crypto.subtle.decrypt(
  { name: "AES-GCM", iv: b64("secret_nonce_b64"), additionalData: aad },
  dekKey,
  concat(b64("secret_ciphertext_b64"), b64("secret_mac_b64")),
);
// The value's bytes as they are, as the CLI writes them; else the line the CLI prints.
if (reveal === "--reveal") {
  if (globalThis.Deno) Deno.stdout.writeSync(new Uint8Array(value));
  else process.stdout.write(new Uint8Array(value));
} else console.log(`secrets.get scope=${scope} key=${key} value=<redacted> reveal=false`);
