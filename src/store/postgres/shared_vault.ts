/**
 * A vault kept in PostgreSQL and shared by several devices (docs/FORMAT.md
 * §10). Each value is a §3 envelope whose data key is wrapped by the vault
 * key of the current epoch; the vault key is wrapped to each member device's
 * age recipient. The database sees ciphertext, wrapped keys and metadata only.
 * Every write is one transaction; versions give check-and-set and rollback.
 */
import postgres from "postgres";
import { VaultError } from "../../errors.ts";
import { sameBytes, toHex } from "../../crypto/encoding.ts";
import type { CipherEngine, EnvelopeCipher } from "../../crypto/envelope_async.ts";
import { vaultCipher } from "../cipher.ts";
import { rewrapEnvelope } from "../../crypto/envelope.ts";
import { kekId, KEY_BYTES } from "../../crypto/kdf.ts";
import type { IdentityHost } from "../identity_store.ts";
import { CHANNEL, SCHEMA_LOCK, SCHEMA_V1, SCHEMA_VERSION } from "./schema.ts";
import {
  DEFAULT_SOCKET_DIRS,
  isConnectionLoss,
  parseConnectionUrl,
  pgCode,
  redactUrl,
  socketPath,
  storeError,
  useSocket,
} from "./connection.ts";
import { envVar } from "../../platform/env.ts";
import { connectSocket, failedSocket, mayConnect, SocketError } from "../../platform/net.ts";
import { transaction, type Tx } from "./transaction.ts";
import { checkRecipient, deviceId, type DeviceKey, loadDeviceKey, wrapVaultKey } from "./device_keys.ts";

/** Options of a shared vault, as `Vault.open` passes them on. */
export interface SharedVaultOptions {
  url: string;
  identityDir: string;
  identityHost: IdentityHost;
  maxSecretBytes: number;
  kekEngine: CipherEngine;
  /** Versions kept per key, the live one included. Default 10. */
  keepVersions?: number;
}

/** A stored secret's metadata in a shared vault: the file store's, plus its version. */
export interface SharedMetadata {
  scope: string;
  key: string;
  createdAtUnixMs: number;
  updatedAtUnixMs: number;
  valueBytes: number;
  version: number;
}

/**
 * A member (or former member) of a vault kept in PostgreSQL.
 *
 * @example
 * ```ts
 * import { type DeviceInfo, Vault } from "@palyra/vault";
 * const vault = await Vault.open({ store: "postgres://vault@db.example.com/vault" });
 * const members: DeviceInfo[] = (await vault.listDevices()).filter((d) => d.revokedAtUnixMs === undefined);
 * ```
 */
export interface DeviceInfo {
  /** `d_` and 16 hex characters: what `devices remove` takes. */
  id: string;
  /** Its age X25519 recipient (`age1…`). */
  recipient: string;
  /** A name for people, given to `addDevice` (`first device` for the one that created the vault). */
  label: string;
  /** When it was added, in milliseconds since the Unix epoch. */
  addedAtUnixMs: number;
  /** When it was removed; absent for a member. */
  revokedAtUnixMs?: number;
  /** Whether it is the device this vault was opened on. */
  self: boolean;
}

/**
 * A change announced on `LISTEN palyra_vault` (`Vault.watch`).
 *
 * @example
 * ```ts
 * import { Vault, type VaultChange } from "@palyra/vault";
 * const vault = await Vault.open({ store: "postgres://vault@db.example.com/vault" });
 * const cache = new Map<string, string>();
 * await vault.watch((c: VaultChange) => cache.delete(`${c.scope}/${c.key}`));
 * ```
 */
export interface VaultChange {
  /** `put`, `delete` and `rollback` name a secret; `epoch` means the vault key changed. */
  op: "put" | "delete" | "rollback" | "epoch";
  /** The secret's scope (absent for `epoch`). */
  scope?: string;
  /** The secret's key (absent for `epoch`). */
  key?: string;
  /** The version the change made or marked deleted (absent for `epoch`). */
  version?: number;
}

/**
 * Progress of a device removal's rewrap (`Vault.removeDevice`).
 *
 * @example
 * ```ts
 * import { type RewrapProgress, Vault } from "@palyra/vault";
 * const vault = await Vault.open({ store: "postgres://vault@db.example.com/vault" });
 * const show = (p: RewrapProgress) => console.error(`${p.done}/${p.total}`);
 * await vault.removeDevice("d_0123456789abcdef", { onProgress: show });
 * ```
 */
export interface RewrapProgress {
  /** Envelopes rewrapped so far. */
  done: number;
  /** Envelopes to rewrap in all, as counted when the rewrap started. */
  total: number;
}

interface EpochKey {
  key: Uint8Array;
  cipher: EnvelopeCipher;
}

type Sql = postgres.Sql;

const BATCH = 200;
const READ_ATTEMPTS = 3;
/** A write that lost its connection is tried again only after checking that it did not land. */
const WRITE_ATTEMPTS = 3;

/** How a put may replace what is there. */
type PutChoices = { overwrite?: boolean; ifVersion?: number };
/** Times a put keeps instead of now (an import keeps the exported ones). */
type PutTimes = { createdAtUnixMs: number; updatedAtUnixMs: number };
/** What one attempt of a put sent: its backend's pid and, once sealed, the row it inserts. */
type SentWrite = { pid?: number; written?: { version: number; envelope: Uint8Array } };

const hexArg = (bytes: Uint8Array): string => toHex(bytes);
const ms = (d: unknown): number => (d instanceof Date ? d.getTime() : new Date(String(d)).getTime());
const place = (s: string, k: string) => `"${k}" in scope ${JSON.stringify(s)}`;

/** The shared vault behind `Vault.open({ store: "postgres://…" })`. */
export class SharedVault {
  /** The connection URL without its password. */
  readonly root: string;
  readonly #sql: Sql;
  readonly #device: DeviceKey;
  readonly #options: SharedVaultOptions;
  readonly #keep: number;
  /** The vault keys this device holds, by epoch. */
  #keys = new Map<number, EpochKey>();
  #currentEpoch = 0;
  /** Whether the vault was closed; shared with both clients' socket factory, which then makes no new connection. */
  readonly #gate: { closed: boolean };
  /** The connection `watch` listens on, and who is told of each change. */
  #listening: Sql | undefined;
  readonly #watchers = new Set<(change: VaultChange) => void>();
  readonly #clientOptions: postgres.Options<Record<string, never>>;

  private constructor(
    root: string,
    sql: Sql,
    clientOptions: postgres.Options<Record<string, never>>,
    device: DeviceKey,
    options: SharedVaultOptions,
    gate: { closed: boolean },
  ) {
    this.root = root;
    this.#gate = gate;
    this.#sql = sql;
    this.#clientOptions = clientOptions;
    this.#device = device;
    this.#options = options;
    this.#keep = options.keepVersions ?? 10;
  }

  /**
   * Connects, creates or migrates the schema, and loads this device's age
   * identity (creating it in the identity store when missing). The first
   * device to open an empty database creates epoch 1 and registers itself.
   */
  static async open(options: SharedVaultOptions): Promise<SharedVault> {
    const settings = parseConnectionUrl(options.url, envVar);
    if (settings.defaultHost === true) {
      for (const dir of DEFAULT_SOCKET_DIRS) {
        const found = await options.identityHost.fs.lstat(socketPath(dir, settings.port)).catch(() => undefined);
        if (found !== undefined) {
          useSocket(settings, dir);
          break;
        }
      }
    }
    const root = redactUrl(options.url);
    const target = settings.path !== undefined ? `unix:${settings.path}` : `${settings.host}:${settings.port}`;
    if (!mayConnect(target)) {
      throw new VaultError(
        "permission",
        `open PostgreSQL store "${root}" failed: connecting to ${target} is not permitted`,
        {
          hint: `run Deno with --allow-net=${target} besides the permissions the README lists`,
        },
      );
    }
    const device = await loadDeviceKey(options.identityHost, options.identityDir);
    // Every setting is given, so the client reads no PG* variable for one left out: Deno may deny those reads,
    // and the URL (with libpq's variables, read above) is the one source of settings.
    const clientOptions: postgres.Options<Record<string, never>> & Record<string, unknown> = {
      // With a socket the client connects to `path`; a host is given anyway so it does not read PGHOST.
      host: settings.host ?? "localhost",
      port: settings.port,
      ssl: settings.ssl,
      sslnegotiation: null,
      max: 4,
      idle_timeout: 30,
      connect_timeout: settings.connectTimeoutS,
      max_lifetime: 30 * 60,
      max_pipeline: 100,
      keep_alive: 60,
      prepare: true,
      debug: false,
      fetch_types: false,
      publications: "alltables",
      target_session_attrs: undefined,
      // The client's default waits up to 20 s before reconnecting after a few losses in a row; a vault
      // call is short, so it tries again sooner and gives up with a typed error instead.
      backoff: (retries: number) => (0.5 + Math.random() / 2) * Math.min(0.1 * 2 ** retries, 3),
      onnotice: () => {},
      connection: { application_name: settings.applicationName },
    };
    if (settings.path !== undefined) clientOptions.path = settings.path;
    // The client's own connect cannot be called off: a client ended while it waited to reconnect (for a
    // query sent during an outage) still reconnected when its timer fired, and kept that connection open
    // for good, so the process never exited. Sockets made here are refused once the vault is closed.
    const gate = { closed: false };
    const socketTarget = settings.path !== undefined
      ? { path: settings.path }
      : { host: settings.host ?? "localhost", port: settings.port };
    clientOptions.socket = async () => {
      const ended = () => new SocketError("CONNECTION_ENDED", `connect to ${target} refused: the vault was closed`);
      if (gate.closed) return failedSocket(ended());
      let socket;
      try {
        socket = await connectSocket(socketTarget, settings.connectTimeoutS * 1000);
      } catch (e) {
        // Told as the client's own sockets tell it, by their events: a factory that throws leaves the
        // client's connection waiting for ever, and every later query behind it.
        return failedSocket(e instanceof Error ? e : new Error(String(e)));
      }
      if (gate.closed) {
        socket.destroy();
        return failedSocket(ended());
      }
      // The client reads the host for TLS's server name when it opened the socket itself.
      return Object.assign(socket, { host: settings.host, port: settings.port });
    };
    if (settings.database !== undefined) clientOptions.database = settings.database;
    if (settings.username !== undefined) clientOptions.username = settings.username;
    // A function, so the client never falls back to reading PGPASSWORD itself.
    const password = settings.password ?? "";
    clientOptions.pass = () => password;
    const sql = postgres(clientOptions);
    const vault = new SharedVault(root, sql, clientOptions, device, options, gate);
    try {
      await vault.#retrying(`open PostgreSQL store "${root}"`, () => vault.#prepare());
    } catch (e) {
      gate.closed = true;
      await sql.end({ timeout: 0 }).catch(() => {});
      throw e;
    }
    return vault;
  }

  /** This device's id and recipient. */
  get device(): { id: string; recipient: string } {
    return { id: this.#device.id, recipient: this.#device.recipient };
  }

  /** Schema and, for an empty database, epoch 1 with this device as its one member. */
  async #prepare(): Promise<void> {
    const sql = this.#sql;
    const [found] = await sql`SELECT to_regclass('vault_meta') IS NOT NULL AS present`;
    if (found?.present === true) {
      const [meta] = await sql`SELECT schema_version FROM vault_meta WHERE id = 1`;
      if (meta !== undefined) {
        this.#checkSchema(Number(meta.schema_version));
        return;
      }
    }
    await transaction(sql, async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`;
      for (const statement of SCHEMA_V1) await tx.unsafe(statement);
      const [meta] = await tx`SELECT schema_version FROM vault_meta WHERE id = 1`;
      if (meta !== undefined) {
        this.#checkSchema(Number(meta.schema_version));
        return;
      }
      const vaultKey = crypto.getRandomValues(new Uint8Array(KEY_BYTES));
      try {
        const wrapped = await wrapVaultKey(vaultKey, this.#device.recipient);
        await tx`INSERT INTO vault_devices (device_id, recipient, label)
          VALUES (${this.#device.id}, ${this.#device.recipient}, 'first device')`;
        await tx`INSERT INTO vault_keys (epoch, device_id, wrapped_key)
          VALUES (1, ${this.#device.id}, decode(${hexArg(wrapped)}, 'hex'))`;
        await tx`INSERT INTO vault_meta (id, schema_version, current_epoch) VALUES (1, ${SCHEMA_VERSION}, 1)`;
      } finally {
        vaultKey.fill(0);
      }
    });
  }

  #checkSchema(version: number): void {
    if (version > SCHEMA_VERSION) {
      throw new VaultError(
        "invalid_config",
        `open PostgreSQL store "${this.root}" failed: its schema is version ${version}; this library knows up to ${SCHEMA_VERSION}`,
        { hint: "upgrade @palyra/vault on this device" },
      );
    }
  }

  #check(): void {
    if (this.#gate.closed) throw new VaultError("io", "use vault failed: it was closed", { hint: "open it again" });
  }

  /** Runs a read again after a lost connection (a read has no outcome to check). */
  async #retrying<T>(action: string, read: () => Promise<T>): Promise<T> {
    for (let attempt = 1;; attempt++) {
      try {
        return await read();
      } catch (e) {
        if (!isConnectionLoss(e) || attempt >= READ_ATTEMPTS) throw storeError(action, e);
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
  }

  /** Loads every vault key wrapped to this device, and the current epoch. */
  async #loadKeys(q: Tx): Promise<void> {
    const [meta] = await q`SELECT current_epoch FROM vault_meta WHERE id = 1`;
    const rows = await q`SELECT epoch, wrapped_key FROM vault_keys WHERE device_id = ${this.#device.id}`;
    for (const row of rows) {
      const epoch = Number(row.epoch);
      if (this.#keys.has(epoch)) continue;
      const key = await this.#device.unwrap(row.wrapped_key as Uint8Array);
      this.#keys.set(epoch, {
        key,
        cipher: vaultCipher(key, this.#options.kekEngine),
      });
    }
    this.#currentEpoch = Number(meta?.current_epoch ?? 0);
  }

  /** Refuses a device that holds no key of the current epoch (checked once, then as keys are loaded). */
  async #member(action: string): Promise<void> {
    if (this.#currentEpoch !== 0 && this.#keys.has(this.#currentEpoch)) return;
    await this.#loadKeys(this.#sql as unknown as Tx);
    if (!this.#keys.has(this.#currentEpoch)) throw this.#notMember(action);
  }

  #notMember(action: string): VaultError {
    return new VaultError(
      "permission",
      `${action} failed: this device (${this.#device.recipient}) is not a member of the shared vault "${this.root}"`,
      { hint: `on a device that is a member, run: palyra-secrets devices add ${this.#device.recipient}` },
    );
  }

  /** The key of `epoch`, loading new keys once when it is not known yet. */
  async #epochKey(action: string, epoch: number, q: Tx = this.#sql as unknown as Tx): Promise<EpochKey> {
    let found = this.#keys.get(epoch);
    if (found === undefined) {
      await this.#loadKeys(q);
      found = this.#keys.get(epoch);
    }
    if (found === undefined) {
      if (epoch >= this.#currentEpoch) throw this.#notMember(action);
      throw new VaultError(
        "crypto",
        `${action} failed: it is sealed under the vault key of epoch ${epoch}, which this device does not hold`,
        { hint: "a device removal is still rewrapping: finish it with palyra-secrets devices remove <id> on a member" },
      );
    }
    return found;
  }

  #tooLarge(action: string, bytes: number): VaultError {
    return new VaultError(
      "value_too_large",
      `${action} failed: the value is ${bytes} bytes; at most ${this.#options.maxSecretBytes} are accepted`,
      { hint: "store a smaller value, or open the vault with a larger maxSecretBytes (CLI: --max-bytes)" },
    );
  }

  /**
   * Writes a new version of `scope`/`key` in one transaction. `ifVersion`: the
   * live version the caller expects (0: none), else `conflict`.
   */
  async put(
    s: string,
    k: string,
    bytes: Uint8Array,
    options: PutChoices,
    times?: PutTimes,
  ): Promise<SharedMetadata & { replaced: boolean }> {
    this.#check();
    const action = `put secret ${place(s, k)}`;
    if (bytes.length > this.#options.maxSecretBytes) throw this.#tooLarge(action, bytes.length);
    const ifVersion = options.ifVersion;
    if (ifVersion !== undefined && (!Number.isSafeInteger(ifVersion) || ifVersion < 0)) {
      throw new RangeError(`${action} failed: ifVersion must be a whole number ≥ 0, not ${ifVersion}`);
    }
    for (let attempt = 1;; attempt++) {
      const sent: SentWrite = {};
      try {
        return await transaction(this.#sql, (tx) => this.#putIn(tx, action, s, k, bytes, options, times, sent));
      } catch (e) {
        if (pgCode(e) === "23505") {
          // The key lock (#holdKey) makes this rare: a version inserted by a writer that holds no such lock.
          if (ifVersion !== undefined) throw this.#lostRace(action, ifVersion, undefined);
          if (attempt < 5) continue;
        }
        if (!isConnectionLoss(e)) throw storeError(action, e);
        // Nothing inserted yet, or checked not to have landed: the transaction is gone, so trying again is safe.
        const outcome = sent.written === undefined ? "not_done" : await this.#outcome(s, k, sent);
        if (outcome === "done") return await this.#afterLoss(s, k, sent.written!.version, bytes.length);
        if (outcome === "not_done" && attempt < WRITE_ATTEMPTS) {
          await new Promise((r) => setTimeout(r, 50 * attempt));
          continue;
        }
        if (outcome === "unknown") {
          throw new VaultError(
            "backend_unavailable",
            `${action} failed: the connection was lost during the commit, and whether it landed cannot be read`,
            { hint: `read it back with palyra-secrets get ${s} ${k} once the server answers`, cause: e },
          );
        }
        throw storeError(action, e);
      }
    }
  }

  /** The body of one put's transaction; `sent` records what it inserted, for a check after a lost connection. */
  async #putIn(
    tx: Tx,
    action: string,
    s: string,
    k: string,
    bytes: Uint8Array,
    options: PutChoices,
    times: PutTimes | undefined,
    sent: SentWrite,
  ): Promise<SharedMetadata & { replaced: boolean }> {
    await this.#holdEpoch(tx);
    await this.#holdKey(tx, s, k);
    // The epoch and the live row, read after the locks in a statement of their own.
    const [now] = await tx`SELECT m.current_epoch, pg_backend_pid() AS pid, s.version, s.envelope,
        s.epoch, s.created_at, s.deleted_at
      FROM vault_meta m LEFT JOIN LATERAL (SELECT version, envelope, epoch, created_at, deleted_at
        FROM vault_secrets WHERE scope = ${s} AND key = ${k} ORDER BY version DESC LIMIT 1 FOR UPDATE) s ON true
      WHERE m.id = 1`;
    sent.pid = Number(now!.pid);
    const epoch = Number(now!.current_epoch);
    const sealer = await this.#epochKey(action, epoch, tx);
    const last = now!.version === null ? undefined : now!;
    const live = last !== undefined && last.deleted_at === null ? last : undefined;
    const liveVersion = live === undefined ? 0 : Number(live.version);
    if (options.ifVersion !== undefined && options.ifVersion !== liveVersion) {
      throw this.#lostRace(action, options.ifVersion, liveVersion);
    }
    const same = live !== undefined && await this.#holds(action, s, k, live, bytes, tx);
    if (live !== undefined && options.overwrite === false) {
      if (same) return { ...this.#metaOf(s, k, live), replaced: false };
      throw new VaultError("conflict", `${action} failed: it already holds a different value`, {
        hint: "replace it on purpose (CLI: --force; library: { overwrite: true }), or choose another key",
      });
    }
    const version = (last === undefined ? 0 : Number(last.version)) + 1;
    const envelope = await sealer.cipher.seal(s, k, bytes);
    sent.written = { version, envelope };
    const created = times !== undefined
      ? new Date(times.createdAtUnixMs)
      : live === undefined
      ? null
      : (live.created_at as Date);
    const updated = times === undefined ? null : new Date(times.updatedAtUnixMs);
    const [row] = await tx`INSERT INTO vault_secrets
        (scope, key, version, envelope, epoch, value_bytes, created_at, updated_at, written_by)
      VALUES (${s}, ${k}, ${version}, decode(${hexArg(envelope)}, 'hex'), ${epoch}, ${bytes.length},
        coalesce(${created}::timestamptz, now()), coalesce(${updated}::timestamptz, now()), ${this.#device.id})
      RETURNING created_at, updated_at`;
    await tx`DELETE FROM vault_secrets WHERE scope = ${s} AND key = ${k} AND version <= ${version - this.#keep}`;
    await this.#notify(tx, { op: "put", scope: s, key: k, version });
    return {
      scope: s,
      key: k,
      version,
      valueBytes: bytes.length,
      createdAtUnixMs: ms(row!.created_at),
      updatedAtUnixMs: ms(row!.updated_at),
      replaced: live !== undefined && !same,
    };
  }

  /** Whether the live row `live` holds `bytes` (an unreadable value is never "the same"). */
  async #holds(
    action: string,
    s: string,
    k: string,
    live: Record<string, unknown>,
    bytes: Uint8Array,
    tx: Tx,
  ): Promise<boolean> {
    try {
      const key = await this.#epochKey(action, Number(live.epoch), tx);
      const old = await key.cipher.open(s, k, live.envelope as Uint8Array);
      const same = sameBytes(old, bytes);
      old.fill(0);
      return same;
    } catch {
      return false;
    }
  }

  #lostRace(action: string, expected: number, found: number | undefined): VaultError {
    return new VaultError(
      "conflict",
      `${action} failed: expected version ${expected}, but ${
        found === undefined ? "another writer got there first" : `the live version is ${found}`
      }`,
      { hint: "read the secret again, then retry with the version you read" },
    );
  }

  /** After a write lost its connection: whether its row is in the table (its envelope is unique). */
  async #outcome(s: string, k: string, sent: SentWrite): Promise<"done" | "not_done" | "unknown"> {
    const { pid } = sent;
    const { version, envelope } = sent.written!;
    try {
      return await this.#retrying("check a write", async () => {
        // Wait until the old backend is gone, so that its transaction is settled one way or the other.
        for (let i = 0; pid !== undefined; i++) {
          const [alive] = await this.#sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ${pid}`;
          if (Number(alive?.n) === 0) break;
          if (i === 100) return "unknown";
          await new Promise((r) => setTimeout(r, 50));
        }
        const [row] = await this.#sql`SELECT envelope FROM vault_secrets
          WHERE scope = ${s} AND key = ${k} AND version = ${version}`;
        return row !== undefined && sameBytes(row.envelope as Uint8Array, envelope) ? "done" : "not_done";
      });
    } catch {
      return "unknown";
    }
  }

  async #afterLoss(s: string, k: string, version: number, valueBytes: number) {
    const [row] = await this.#sql`SELECT created_at, updated_at FROM vault_secrets
      WHERE scope = ${s} AND key = ${k} AND version = ${version}`;
    return {
      scope: s,
      key: k,
      version,
      valueBytes,
      createdAtUnixMs: ms(row?.created_at),
      updatedAtUnixMs: ms(row?.updated_at),
      replaced: version > 1,
    };
  }

  #metaOf(s: string, k: string, row: Record<string, unknown>): SharedMetadata {
    return {
      scope: s,
      key: k,
      version: Number(row.version),
      valueBytes: Number(row.value_bytes ?? 0),
      createdAtUnixMs: ms(row.created_at),
      updatedAtUnixMs: ms(row.updated_at),
    };
  }

  /**
   * Holds the epoch for the rest of a write's transaction: the advisory lock
   * `SCHEMA_LOCK`, shared. A removal takes it exclusively, so it waits for
   * writes that seal under the old vault key, and writes after it read the new
   * epoch. (A row lock `FOR SHARE` on `vault_meta` did the same, but turned every
   * concurrent write into a multixact on one row.)
   */
  async #holdEpoch(tx: Tx): Promise<void> {
    await tx`SELECT pg_advisory_xact_lock_shared(${SCHEMA_LOCK})`;
  }

  /**
   * Serializes the writes of one `scope`/`key` for the rest of the transaction:
   * an advisory lock on the pair's hashes (two int4 keys, a space apart from
   * `SCHEMA_LOCK`'s one bigint). A row lock on the live version is not enough:
   * a writer that waited for it reads that same row again under READ COMMITTED,
   * not the version committed meanwhile, so it chose a version already taken,
   * and a delete could mark a version that was no longer live. The statement
   * after this one reads with a snapshot taken once the lock is held.
   */
  async #holdKey(tx: Tx, s: string, k: string): Promise<void> {
    await tx`SELECT pg_advisory_xact_lock(hashtext(${s}), hashtext(${k}))`;
  }

  async #notify(tx: Tx, change: VaultChange): Promise<void> {
    await tx`SELECT pg_notify(${CHANNEL}, ${JSON.stringify(change)})`;
  }

  /** The live value of `scope`/`key`, or the one of `version` (also when it was deleted since). */
  async get(s: string, k: string, version?: number): Promise<Uint8Array> {
    this.#check();
    const action = `get secret ${place(s, k)}${version === undefined ? "" : ` version ${version}`}`;
    if (version !== undefined && (!Number.isSafeInteger(version) || version < 1)) {
      throw new RangeError(`${action} failed: version must be a whole number ≥ 1`);
    }
    const row = await this.#retrying(action, async () => {
      await this.#member(action);
      const rows = version === undefined
        ? await this.#sql`SELECT envelope, epoch, deleted_at FROM vault_secrets
            WHERE scope = ${s} AND key = ${k} ORDER BY version DESC LIMIT 1`
        : await this.#sql`SELECT envelope, epoch, deleted_at FROM vault_secrets
            WHERE scope = ${s} AND key = ${k} AND version = ${version}`;
      const found = rows[0];
      if (found === undefined || (version === undefined && found.deleted_at !== null)) return undefined;
      // The key is looked up inside the retry: loading it reads the database too.
      return { envelope: found.envelope as Uint8Array, key: await this.#epochKey(action, Number(found.epoch)) };
    });
    if (row === undefined) {
      throw new VaultError("not_found", `${action} failed: it is not set`, {
        hint: version === undefined
          ? `store it with: palyra-secrets set ${s} ${k}`
          : `list the versions kept with: palyra-secrets versions ${s} ${k}`,
      });
    }
    return await row.key.cipher.open(s, k, row.envelope);
  }

  /** Marks the live version deleted (earlier versions stay for `rollback`); `false` when none was live. */
  async delete(s: string, k: string): Promise<boolean> {
    this.#check();
    const action = `delete secret ${place(s, k)}`;
    await this.#retrying(action, () => this.#member(action));
    for (let attempt = 1;; attempt++) {
      let version: number | undefined;
      try {
        return await transaction(this.#sql, async (tx) => {
          await this.#holdKey(tx, s, k);
          const [last] = await tx`SELECT version, deleted_at FROM vault_secrets
            WHERE scope = ${s} AND key = ${k} ORDER BY version DESC LIMIT 1 FOR UPDATE`;
          if (last === undefined || last.deleted_at !== null) return false;
          version = Number(last.version);
          await tx`UPDATE vault_secrets SET deleted_at = now() WHERE scope = ${s} AND key = ${k} AND version = ${version}`;
          await this.#notify(tx, { op: "delete", scope: s, key: k, version });
          return true;
        });
      } catch (e) {
        if (!isConnectionLoss(e) || attempt >= WRITE_ATTEMPTS) throw storeError(action, e);
        // Whether the version is marked deleted can be read: if it is, this delete (or another) landed.
        if (version !== undefined) {
          const done = await this.#retrying(action, async () => {
            const [row] = await this.#sql`SELECT deleted_at FROM vault_secrets
              WHERE scope = ${s} AND key = ${k} AND version = ${version!}`;
            return row !== undefined && row.deleted_at !== null;
          });
          if (done) return true;
        }
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
  }

  /** Live secrets, sorted by scope then key. */
  async list(scope?: string): Promise<SharedMetadata[]> {
    this.#check();
    return await this.#retrying("list secrets", async () => {
      await this.#member("list secrets");
      const rows = scope === undefined
        ? await this.#sql`SELECT DISTINCT ON (scope, key) scope, key, version, value_bytes, created_at, updated_at,
              deleted_at FROM vault_secrets ORDER BY scope, key, version DESC`
        : await this.#sql`SELECT DISTINCT ON (key) scope, key, version, value_bytes, created_at, updated_at,
              deleted_at FROM vault_secrets WHERE scope = ${scope} ORDER BY key, version DESC`;
      const out: SharedMetadata[] = [];
      for (const row of rows) {
        if (row.deleted_at === null) out.push(this.#metaOf(String(row.scope), String(row.key), row));
      }
      return out;
    });
  }

  /** The versions kept of `scope`/`key`, newest first. */
  async versions(s: string, k: string): Promise<(SharedMetadata & { deletedAtUnixMs?: number })[]> {
    this.#check();
    return await this.#retrying(`list versions of ${place(s, k)}`, async () => {
      await this.#member(`list versions of ${place(s, k)}`);
      const rows = await this.#sql`SELECT version, value_bytes, created_at, updated_at, deleted_at FROM vault_secrets
        WHERE scope = ${s} AND key = ${k} ORDER BY version DESC`;
      return rows.map((row) => {
        const m: SharedMetadata & { deletedAtUnixMs?: number } = this.#metaOf(s, k, row);
        if (row.deleted_at !== null) m.deletedAtUnixMs = ms(row.deleted_at);
        return m;
      });
    });
  }

  /** Makes the value of `version` live again, as a new version under the current vault key. */
  async rollback(s: string, k: string, version: number): Promise<SharedMetadata> {
    this.#check();
    const action = `roll back secret ${place(s, k)} to version ${version}`;
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new RangeError(`${action} failed: version must be a whole number ≥ 1`);
    }
    try {
      return await transaction(this.#sql, async (tx) => {
        await this.#holdEpoch(tx);
        await this.#holdKey(tx, s, k);
        const [meta] = await tx`SELECT current_epoch FROM vault_meta WHERE id = 1`;
        const epoch = Number(meta!.current_epoch);
        const current = await this.#epochKey(action, epoch, tx);
        const [last] = await tx`SELECT version, created_at, deleted_at FROM vault_secrets
          WHERE scope = ${s} AND key = ${k} ORDER BY version DESC LIMIT 1 FOR UPDATE`;
        const [target] = await tx`SELECT envelope, epoch, value_bytes, created_at FROM vault_secrets
          WHERE scope = ${s} AND key = ${k} AND version = ${version}`;
        if (last === undefined || target === undefined) {
          throw new VaultError("not_found", `${action} failed: that version is not kept`, {
            hint: `list the versions kept with: palyra-secrets versions ${s} ${k}`,
          });
        }
        const old = await this.#epochKey(action, Number(target.epoch), tx);
        const envelope =
          rewrapEnvelope(old.key, current.key, kekId(current.key), s, k, target.envelope as Uint8Array) ??
            (target.envelope as Uint8Array);
        const next = Number(last.version) + 1;
        const created = last.deleted_at === null ? last.created_at : target.created_at;
        const [row] = await tx`INSERT INTO vault_secrets
            (scope, key, version, envelope, epoch, value_bytes, created_at, updated_at, written_by)
          VALUES (${s}, ${k}, ${next}, decode(${hexArg(envelope)}, 'hex'), ${epoch}, ${target.value_bytes},
            ${created as Date}, now(), ${this.#device.id})
          RETURNING version, value_bytes, created_at, updated_at`;
        await tx`DELETE FROM vault_secrets WHERE scope = ${s} AND key = ${k} AND version <= ${next - this.#keep}`;
        await this.#notify(tx, { op: "rollback", scope: s, key: k, version: next });
        return this.#metaOf(s, k, row!);
      });
    } catch (e) {
      throw storeError(action, e);
    }
  }

  /** Every device that is or was a member. */
  async devices(): Promise<DeviceInfo[]> {
    this.#check();
    return await this.#retrying("list devices", async () => {
      const rows = await this.#sql`SELECT device_id, recipient, label, added_at, revoked_at FROM vault_devices
        ORDER BY added_at, device_id`;
      return rows.map((row) => {
        const d: DeviceInfo = {
          id: String(row.device_id),
          recipient: String(row.recipient),
          label: String(row.label),
          addedAtUnixMs: ms(row.added_at),
          self: row.device_id === this.#device.id,
        };
        if (row.revoked_at !== null) d.revokedAtUnixMs = ms(row.revoked_at);
        return d;
      });
    });
  }

  /** Adds a device: every vault key this device holds is wrapped to `recipient`. No secret is touched. */
  async addDevice(recipient: string, label = ""): Promise<DeviceInfo> {
    this.#check();
    await checkRecipient(recipient);
    const id = deviceId(recipient);
    const action = `add device ${id}`;
    try {
      await transaction(this.#sql, async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`;
        await this.#loadKeys(tx);
        if (!this.#keys.has(this.#currentEpoch)) throw this.#notMember(action);
        await tx`INSERT INTO vault_devices (device_id, recipient, label) VALUES (${id}, ${recipient}, ${label})
          ON CONFLICT (device_id) DO UPDATE SET revoked_at = NULL,
            label = CASE WHEN ${label} = '' THEN vault_devices.label ELSE ${label} END`;
        const live = await tx`SELECT DISTINCT epoch FROM vault_keys`;
        for (const { epoch } of live) {
          const held = this.#keys.get(Number(epoch));
          if (held === undefined) continue;
          const wrapped = await wrapVaultKey(held.key, recipient);
          await tx`INSERT INTO vault_keys (epoch, device_id, wrapped_key)
            VALUES (${Number(epoch)}, ${id}, decode(${hexArg(wrapped)}, 'hex')) ON CONFLICT DO NOTHING`;
        }
      });
    } catch (e) {
      throw storeError(action, e);
    }
    const found = (await this.devices()).find((d) => d.id === id);
    return found!;
  }

  /**
   * Removes a device: a new epoch whose vault key is wrapped to the remaining
   * members, then every stored data key rewrapped under it in batches (values
   * are not re-encrypted). Calling it again for a removed device finishes an
   * interrupted rewrap. Returns how many envelopes were rewrapped.
   */
  async removeDevice(id: string, onProgress?: (p: RewrapProgress) => void): Promise<number> {
    this.#check();
    const action = `remove device ${JSON.stringify(id)}`;
    if (id === this.#device.id) {
      throw new VaultError("invalid_config", `${action} failed: it is this device`, {
        hint: "remove a device from another member, so that the new vault key reaches every remaining device",
      });
    }
    let made: { epoch: number; key: Uint8Array } | undefined;
    try {
      await transaction(this.#sql, async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`;
        const [device] = await tx`SELECT revoked_at FROM vault_devices WHERE device_id = ${id}`;
        if (device === undefined) {
          throw new VaultError("not_found", `${action} failed: no such device`, {
            hint: "list the devices with: palyra-secrets devices list",
          });
        }
        await this.#loadKeys(tx);
        if (!this.#keys.has(this.#currentEpoch)) throw this.#notMember(action);
        if (device.revoked_at !== null) return; // removed before: only the rewrap below may be left
        // The lock above waited for every write holding the epoch (#holdEpoch); later writes see the new one.
        const [meta] = await tx`SELECT current_epoch FROM vault_meta WHERE id = 1 FOR UPDATE`;
        const epoch = Number(meta!.current_epoch) + 1;
        const members = await tx`SELECT device_id, recipient FROM vault_devices
          WHERE revoked_at IS NULL AND device_id <> ${id}`;
        const vaultKey = crypto.getRandomValues(new Uint8Array(KEY_BYTES));
        made = { epoch, key: vaultKey };
        for (const m of members) {
          const wrapped = await wrapVaultKey(vaultKey, String(m.recipient));
          await tx`INSERT INTO vault_keys (epoch, device_id, wrapped_key)
            VALUES (${epoch}, ${String(m.device_id)}, decode(${hexArg(wrapped)}, 'hex'))`;
        }
        await tx`UPDATE vault_devices SET revoked_at = now() WHERE device_id = ${id}`;
        await tx`DELETE FROM vault_keys WHERE device_id = ${id}`;
        await tx`UPDATE vault_meta SET current_epoch = ${epoch} WHERE id = 1`;
        await this.#notify(tx, { op: "epoch" });
      });
    } catch (e) {
      made?.key.fill(0);
      throw storeError(action, e);
    }
    // Only once the epoch is committed: a key cached for an epoch that never was could seal for nobody.
    if (made !== undefined) {
      this.#keys.set(made.epoch, {
        key: made.key,
        cipher: vaultCipher(made.key, this.#options.kekEngine),
      });
      this.#currentEpoch = made.epoch;
    }
    try {
      return await this.#rewrap(action, onProgress);
    } catch (e) {
      throw storeError(action, e);
    }
  }

  /** Rewraps every envelope of an earlier epoch under the current vault key, one batch per transaction. */
  async #rewrap(action: string, onProgress?: (p: RewrapProgress) => void): Promise<number> {
    const [meta] = await this.#sql`SELECT current_epoch FROM vault_meta WHERE id = 1`;
    const epoch = Number(meta!.current_epoch);
    const current = await this.#epochKey(action, epoch);
    const [count] = await this.#sql`SELECT count(*)::int AS n FROM vault_secrets WHERE epoch < ${epoch}`;
    const total = Number(count?.n ?? 0);
    let done = 0;
    onProgress?.({ done, total });
    for (;;) {
      const n = await transaction(this.#sql, async (tx) => {
        const rows = await tx`SELECT scope, key, version, envelope, epoch FROM vault_secrets WHERE epoch < ${epoch}
          ORDER BY scope, key, version LIMIT ${BATCH} FOR UPDATE SKIP LOCKED`;
        for (const row of rows) {
          const s = String(row.scope);
          const k = String(row.key);
          const old = await this.#epochKey(action, Number(row.epoch), tx);
          const env = row.envelope as Uint8Array;
          const next = rewrapEnvelope(old.key, current.key, kekId(current.key), s, k, env) ?? env;
          await tx`UPDATE vault_secrets SET envelope = decode(${hexArg(next)}, 'hex'), epoch = ${epoch}
            WHERE scope = ${s} AND key = ${k} AND version = ${row.version}`;
        }
        return rows.length;
      });
      if (n === 0) break;
      done += n;
      onProgress?.({ done: Math.min(done, total), total: Math.max(total, done) });
    }
    // No envelope names an earlier epoch any more: its keys protect nothing and are dropped.
    await transaction(this.#sql, async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`;
      const [left] = await tx`SELECT count(*)::int AS n FROM vault_secrets WHERE epoch < ${epoch}`;
      if (Number(left?.n) === 0) await tx`DELETE FROM vault_keys WHERE epoch < ${epoch}`;
    });
    for (const [e, held] of this.#keys) {
      if (e < epoch) {
        held.key.fill(0);
        this.#keys.delete(e);
      }
    }
    return done;
  }

  /**
   * Calls `listener` for every change another process (or this one) commits,
   * until the returned function is called. The first watch opens a connection
   * of its own that listens on `palyra_vault`, and listens again after it is
   * lost (a server restart), until the vault is closed.
   */
  async watch(listener: (change: VaultChange) => void): Promise<() => Promise<void>> {
    this.#check();
    // Not the client's own listen(): it listens again whenever its connection closes, also when that is
    // the end of the client, and a listener it re-made after a restart can no longer be removed, so a
    // process that watched across a server restart never exited.
    if (this.#listening === undefined) {
      // `onnotify` is a setting the client reads but does not declare in its types.
      const listenOptions: postgres.Options<Record<string, never>> & Record<string, unknown> = {
        ...this.#clientOptions,
        max: 1,
        // Never closed for being idle or old: a watch may wait a long time for its first change.
        idle_timeout: 0,
        max_lifetime: null,
        onnotify: (channel: string, payload: string) => {
          if (channel !== CHANNEL) return;
          let change: VaultChange;
          try {
            change = JSON.parse(payload) as VaultChange;
          } catch {
            return;
          }
          if (change.op === "epoch") this.#currentEpoch = 0;
          for (const l of this.#watchers) l(change);
        },
        onclose: () => {
          if (!this.#gate.closed) void relisten();
        },
      };
      const sql = postgres(listenOptions);
      const relisten = async (): Promise<void> => {
        for (let attempt = 1; !this.#gate.closed; attempt++) {
          try {
            await sql.unsafe(`LISTEN ${CHANNEL}`);
            return;
          } catch (e) {
            if (!isConnectionLoss(e)) return;
            await new Promise((r) => setTimeout(r, Math.min(100 * attempt, 2000)));
          }
        }
      };
      this.#listening = sql;
      try {
        await sql.unsafe(`LISTEN ${CHANNEL}`);
      } catch (e) {
        this.#listening = undefined;
        await sql.end({ timeout: 0 }).catch(() => {});
        throw storeError("watch vault", e);
      }
    }
    const mine = (change: VaultChange) => listener(change);
    this.#watchers.add(mine);
    return () => {
      this.#watchers.delete(mine);
      return Promise.resolve();
    };
  }

  /** Wipes the vault keys and closes the connections. */
  async close(): Promise<void> {
    if (this.#gate.closed) return;
    this.#gate.closed = true;
    for (const held of this.#keys.values()) held.key.fill(0);
    this.#keys.clear();
    this.#watchers.clear();
    await Promise.all([
      this.#sql.end({ timeout: 1 }).catch(() => {}),
      this.#listening?.end({ timeout: 0 }).catch(() => {}),
    ]);
  }
}
