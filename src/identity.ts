/**
 * The device identity (docs/FORMAT.md §4): the CA private key from which the device KEK
 * is derived. It is created once, race-safely, and never silently replaced:
 * a new identity would orphan every stored secret.
 */
import { join } from "node:path";
import { errnoCode, fsError, VaultError } from "./errors.ts";
import { fromUtf8, toBase64, utf8 } from "./crypto/encoding.ts";
import { deriveKek } from "./crypto/kdf.ts";
import type { FileSystem } from "./platform/fs.ts";
import { secureDir } from "./folders.ts";

/** The identity file, relative to the identity folder. */
export const IDENTITY_FILE = "state.v1.json";
/** The older identity file, read when `state.v1.json` is absent. */
export const LEGACY_IDENTITY_FILE = join("ca", "state.json");

/** A loaded device identity. */
export interface DeviceIdentity {
  /** The file the key was read from. */
  readonly path: string;
  /** The CA private key PEM exactly as stored (the KEK seed). */
  readonly privateKeyPem: string;
  /** True when this call created the identity. */
  readonly created: boolean;
}

function identityError(path: string, why: string, cause?: unknown): VaultError {
  return new VaultError("identity", `read device identity "${path}" failed: ${why}`, {
    hint: "restore the identity file from a backup; it is never replaced automatically, " +
      "because a new identity cannot open secrets sealed with the old one",
    cause,
  });
}

async function readIfExists(fs: FileSystem, path: string): Promise<Uint8Array | undefined> {
  try {
    return await fs.readFile(path);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    if (errnoCode(e) === "ELOOP") throw fsError("read device identity", path, e);
    throw identityError(path, `the file cannot be read (${errnoCode(e) ?? String(e)})`, e);
  }
}

function parseIdentity(path: string, bytes: Uint8Array, legacy: boolean): string {
  let doc: unknown;
  try {
    doc = JSON.parse(fromUtf8(bytes));
  } catch (e) {
    throw identityError(path, "the file is not valid UTF-8 JSON", e);
  }
  if (typeof doc !== "object" || doc === null) throw identityError(path, "the file is not a JSON object");
  let pem: unknown;
  if (legacy) {
    pem = (doc as Record<string, unknown>).private_key_pem;
  } else {
    const d = doc as Record<string, unknown>;
    if (d.version !== 1) throw identityError(path, `unsupported version ${JSON.stringify(d.version) ?? "undefined"}`);
    const ca = d.ca;
    pem = typeof ca === "object" && ca !== null ? (ca as Record<string, unknown>).private_key_pem : undefined;
  }
  if (typeof pem !== "string") throw identityError(path, 'the field "private_key_pem" is missing');
  if (pem.trim().length === 0) throw identityError(path, 'the field "private_key_pem" is empty');
  return pem;
}

/** A new ECDSA P-256 private key as PKCS#8 PEM. */
async function newPrivateKeyPem(): Promise<string> {
  const pair = await globalThis.crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const der = new Uint8Array(await globalThis.crypto.subtle.exportKey("pkcs8", pair.privateKey));
  // The standard PEM alphabet is padded base64 in 64-character lines.
  let b64 = toBase64(der);
  while (b64.length % 4 !== 0) b64 += "=";
  der.fill(0);
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN PRIVATE KEY-----\n${lines.join("\n")}\n-----END PRIVATE KEY-----\n`;
}

/**
 * Loads the identity in `dir` without creating anything: `undefined` when
 * neither `state.v1.json` nor `ca/state.json` exists (or the folder itself
 * does not). An identity that exists but cannot be read is an error.
 */
export async function loadIdentity(fs: FileSystem, dir: string): Promise<DeviceIdentity | undefined> {
  let info;
  try {
    info = await fs.lstat(dir);
  } catch (e) {
    throw fsError("inspect identity folder", dir, e);
  }
  if (info === undefined) return undefined;
  await secureDir(fs, dir, "identity folder", { create: false });
  const path = join(dir, IDENTITY_FILE);
  const current = await readIfExists(fs, path);
  if (current !== undefined) return { path, privateKeyPem: parseIdentity(path, current, false), created: false };
  const legacyPath = join(dir, LEGACY_IDENTITY_FILE);
  const legacy = await readIfExists(fs, legacyPath);
  if (legacy !== undefined) {
    return { path: legacyPath, privateKeyPem: parseIdentity(legacyPath, legacy, true), created: false };
  }
  return undefined;
}

/**
 * Loads the identity in `dir`, creating it when neither `state.v1.json` nor
 * `ca/state.json` exists. Racing creators all end up with the one that won.
 * Call it only for an operation that writes, and only once it is known that
 * no secrets exist that an earlier identity sealed.
 */
export async function loadOrCreateIdentity(fs: FileSystem, dir: string): Promise<DeviceIdentity> {
  await secureDir(fs, dir, "identity folder");
  const path = join(dir, IDENTITY_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    const existing = await loadIdentity(fs, dir);
    if (existing !== undefined) return existing;
    const pem = await newPrivateKeyPem();
    const doc = { version: 1, ca: { private_key_pem: pem, created_at_unix_ms: Date.now() } };
    try {
      await fs.createExclusive(path, utf8(JSON.stringify(doc, null, 2) + "\n"), true);
      return { path, privateKeyPem: pem, created: true };
    } catch (e) {
      // Another process won the race: loop round and use its identity.
      if (errnoCode(e) !== "EEXIST") throw fsError("create device identity", path, e);
    }
  }
  throw new VaultError("identity", `create device identity in "${dir}" failed: the file keeps changing`);
}

/** Derives the device KEK from an identity (docs/FORMAT.md §2). */
export function identityKek(identity: DeviceIdentity): Uint8Array {
  const seed = utf8(identity.privateKeyPem);
  try {
    return deriveKek(seed);
  } finally {
    seed.fill(0);
  }
}
