/**
 * The device identity, kept in Palyra's identity store (docs/FORMAT.md §4):
 * the CA private key from which the device KEK is derived. It is created once,
 * race-safely, in a form Palyra's daemon reads, and never silently replaced:
 * a new identity would orphan every stored secret.
 */
import { FILES } from "./layout.ts";
import { join } from "../platform/path.ts";
import { errnoCode, fsError, VaultError } from "../errors.ts";
import { parseJsonObject, toHex, utf8 } from "../crypto/encoding.ts";
import { deriveKekWebCrypto } from "../crypto/kdf.ts";
import type { CipherEngine } from "../crypto/envelope_async.ts";
import { isSealedStoreItem, openStoreItem, sealStoreItem, STORE_KEY_BYTES } from "../crypto/store_item.ts";
import type { FileSystem } from "../platform/fs.ts";
import { secureDir } from "./folders.ts";

/** Wraps the store key at rest (Windows: DPAPI, CurrentUser). Absent: the key file holds the raw bytes. */
export interface StoreKeyProtection {
  protect(key: Uint8Array): Promise<Uint8Array>;
  unprotect(stored: Uint8Array): Promise<Uint8Array>;
}

/** What the identity store needs from the runtime. */
export interface IdentityHost {
  fs: FileSystem;
  keyProtection?: StoreKeyProtection | undefined;
}

/** A loaded device identity. */
export interface DeviceIdentity {
  /** The file the key was read from. */
  readonly path: string;
  /** The CA private key PEM exactly as stored (the KEK seed). */
  readonly privateKeyPem: string;
  /** True when this call created the identity. */
  readonly created: boolean;
}

/** The file name of a store item: the lowercase hex of its name's UTF-8 bytes. */
export function itemFileName(name: string): string {
  return toHex(utf8(name));
}

function identityError(path: string, why: string, cause?: unknown): VaultError {
  return new VaultError("identity", `read device identity "${path}" failed: ${why}`, {
    hint: "restore the identity folder from a backup; it is never replaced automatically, " +
      "because a new identity cannot open secrets sealed with the old one",
    cause,
  });
}

async function readIfExists(fs: FileSystem, path: string): Promise<Uint8Array | undefined> {
  try {
    return await fs.readFile(path, 1 << 20);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    if (errnoCode(e) === "ELOOP") throw fsError("read device identity", path, e);
    throw identityError(path, `the file cannot be read (${errnoCode(e) ?? String(e)})`, e);
  }
}

function parseObject(path: string, bytes: Uint8Array): Record<string, unknown> {
  return parseJsonObject(bytes, (why, cause) => identityError(path, `the item is ${why}`, cause));
}

function seedFrom(path: string, pem: unknown, field: string): string {
  if (typeof pem !== "string") throw identityError(path, `the field "${field}" is missing or not a string`);
  if (pem.trim().length === 0) throw identityError(path, `the field "${field}" is empty`);
  return pem;
}

/** The identity folder's store, read lazily: the key is read only when an item is encrypted. */
class Store {
  #key: Uint8Array | undefined;
  constructor(readonly dir: string, readonly host: IdentityHost) {}

  async key(): Promise<Uint8Array | undefined> {
    if (this.#key !== undefined) return this.#key;
    const path = join(this.dir, FILES.identityStoreKey);
    const stored = await readIfExists(this.host.fs, path);
    if (stored === undefined) return undefined;
    let key = stored;
    if (this.host.keyProtection !== undefined) {
      try {
        key = await this.host.keyProtection.unprotect(stored);
      } catch (e) {
        throw identityError(path, `unprotecting the store key failed (${e instanceof Error ? e.message : e})`, e);
      }
    }
    if (key.length !== STORE_KEY_BYTES) {
      throw identityError(path, `the store key is ${key.length} bytes, not ${STORE_KEY_BYTES}`);
    }
    return (this.#key = key);
  }

  /** The plaintext of an item, or `undefined` when its file does not exist. */
  async read(name: string): Promise<{ path: string; doc: Record<string, unknown> } | undefined> {
    const path = join(this.dir, itemFileName(name));
    const bytes = await readIfExists(this.host.fs, path);
    if (bytes === undefined) return undefined;
    if (!isSealedStoreItem(bytes)) return { path, doc: parseObject(path, bytes) };
    const key = await this.key();
    if (key === undefined) {
      throw identityError(path, `the item is encrypted, but the store key "${FILES.identityStoreKey}" is missing`);
    }
    let plain: Uint8Array;
    try {
      plain = openStoreItem(key, bytes);
    } catch (e) {
      throw identityError(path, "the item does not decrypt with the store key (modified, or another key)", e);
    }
    try {
      return { path, doc: parseObject(path, plain) };
    } finally {
      plain.fill(0);
    }
  }

  /** The store key, created when missing: the first creator's link wins and everyone uses its key. */
  async keyOrCreate(): Promise<Uint8Array> {
    const existing = await this.key();
    if (existing !== undefined) return existing;
    const path = join(this.dir, FILES.identityStoreKey);
    const key = globalThis.crypto.getRandomValues(new Uint8Array(STORE_KEY_BYTES));
    const stored = this.host.keyProtection === undefined ? key : await this.host.keyProtection.protect(key);
    try {
      await this.host.fs.createExclusive(path, stored, true);
      return (this.#key = key);
    } catch (e) {
      key.fill(0);
      if (errnoCode(e) !== "EEXIST") throw fsError("create identity store key", path, e);
    }
    const winner = await this.key();
    if (winner === undefined) throw identityError(path, "the store key vanished while it was being created");
    return winner;
  }

  /** Creates an item; `false` when it already exists (another creator won). */
  async create(name: string, doc: unknown): Promise<boolean> {
    const path = join(this.dir, itemFileName(name));
    const plain = utf8(JSON.stringify(doc));
    try {
      await this.host.fs.createExclusive(path, sealStoreItem(await this.keyOrCreate(), plain), true);
      return true;
    } catch (e) {
      if (errnoCode(e) === "EEXIST") return false;
      throw fsError("create identity store item", path, e);
    } finally {
      plain.fill(0);
    }
  }

  dispose(): void {
    this.#key?.fill(0);
  }
}

async function readV01(fs: FileSystem, dir: string): Promise<DeviceIdentity | undefined> {
  const path = join(dir, FILES.v01Identity);
  const current = await readIfExists(fs, path);
  if (current !== undefined) {
    const doc = parseObject(path, current);
    if (doc.version !== 1) {
      throw identityError(path, `unsupported version ${JSON.stringify(doc.version) ?? "undefined"}`);
    }
    const ca = doc.ca;
    const pem = typeof ca === "object" && ca !== null ? (ca as Record<string, unknown>).private_key_pem : undefined;
    return { path, privateKeyPem: seedFrom(path, pem, "ca.private_key_pem"), created: false };
  }
  const legacyPath = join(dir, FILES.v01LegacyIdentity);
  const legacy = await readIfExists(fs, legacyPath);
  if (legacy === undefined) return undefined;
  const doc = parseObject(legacyPath, legacy);
  return {
    path: legacyPath,
    privateKeyPem: seedFrom(legacyPath, doc.private_key_pem, "private_key_pem"),
    created: false,
  };
}

async function readFrom(store: Store): Promise<DeviceIdentity | undefined> {
  const state = await store.read(FILES.identityStateItem);
  const embedded = state?.doc.ca;
  if (state !== undefined && typeof embedded === "object" && embedded !== null && "private_key_pem" in embedded) {
    const pem = (embedded as Record<string, unknown>).private_key_pem;
    return { path: state.path, privateKeyPem: seedFrom(state.path, pem, "ca.private_key_pem"), created: false };
  }
  const ca = await store.read(FILES.identityCaItem);
  if (ca !== undefined) {
    return {
      path: ca.path,
      privateKeyPem: seedFrom(ca.path, ca.doc.private_key_pem, "private_key_pem"),
      created: false,
    };
  }
  if (state !== undefined) {
    throw identityError(
      state.path,
      `the identity state has no CA key, and the item "${FILES.identityCaItem}" is missing`,
    );
  }
  return readV01(store.host.fs, store.dir);
}

/**
 * Loads the identity in `dir` without creating anything: `undefined` when the
 * folder holds none. An identity that exists but cannot be read is an error.
 */
export async function loadIdentity(host: IdentityHost, dir: string): Promise<DeviceIdentity | undefined> {
  let info;
  try {
    info = await host.fs.lstat(dir);
  } catch (e) {
    throw fsError("inspect identity folder", dir, e);
  }
  if (info === undefined) return undefined;
  await secureDir(host.fs, dir, "identity folder", { create: false });
  const store = new Store(dir, host);
  try {
    return await readFrom(store);
  } finally {
    store.dispose();
  }
}

/**
 * Loads the identity in `dir`, creating one in the identity store's format
 * when there is none. Racing creators all end up with the one that won.
 * Call it only for an operation that writes, and only once it is known that
 * no secrets exist that an earlier identity sealed.
 */
export async function loadOrCreateIdentity(host: IdentityHost, dir: string): Promise<DeviceIdentity> {
  await secureDir(host.fs, dir, "identity folder");
  const store = new Store(dir, host);
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = await readFrom(store);
      if (existing !== undefined) return existing;
      const { newCa } = await import("./ca_certificate.ts");
      const ca = await newCa();
      // The CA item decides the race: its exclusive link is the one step only one creator passes.
      if (
        await store.create(FILES.identityCaItem, {
          certificate_pem: ca.certificatePem,
          private_key_pem: ca.privateKeyPem,
          sequence: 0,
        })
      ) {
        await store.create(FILES.identityStateItem, {
          generation: 1,
          paired_devices: {},
          revoked_devices: {},
          revoked_certificate_fingerprints: [],
        });
        return { path: join(dir, itemFileName(FILES.identityCaItem)), privateKeyPem: ca.privateKeyPem, created: true };
      }
    }
    throw new VaultError("identity", `create device identity in "${dir}" failed: the identity store keeps changing`);
  } finally {
    store.dispose();
  }
}

/**
 * Derives the device KEK from an identity (docs/FORMAT.md §2), in
 * `@noble/hashes` or, for a vault on the `webcrypto` engine, in WebCrypto.
 */
export async function identityKek(identity: DeviceIdentity, engine: CipherEngine): Promise<Uint8Array> {
  const seed = utf8(identity.privateKeyPem);
  try {
    return engine === "webcrypto"
      ? await deriveKekWebCrypto(seed)
      : (await import("../crypto/kdf_noble.ts")).deriveKek(seed);
  } finally {
    seed.fill(0);
  }
}

/**
 * The item `name` of the identity store in `dir` (docs/FORMAT.md §4.3),
 * created from `make()` when it is missing. Racing creators all get the item
 * that won: its exclusive link is the one step only one creator passes.
 */
export async function loadOrCreateItem(
  host: IdentityHost,
  dir: string,
  name: string,
  make: () => Promise<Record<string, unknown>>,
): Promise<Record<string, unknown>> {
  await secureDir(host.fs, dir, "identity folder");
  const store = new Store(dir, host);
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = await store.read(name);
      if (existing !== undefined) return existing.doc;
      const doc = await make();
      if (await store.create(name, doc)) return doc;
    }
    throw new VaultError("identity", `create identity store item "${name}" in "${dir}" failed: it keeps changing`);
  } finally {
    store.dispose();
  }
}
