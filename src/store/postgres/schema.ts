/**
 * The tables of a PostgreSQL store (docs/FORMAT.md §10.1), created and
 * migrated on open under an advisory lock so that devices opening an empty
 * database at once create them once.
 */

/** The schema version this library writes. */
export const SCHEMA_VERSION = 1;

/** The advisory lock every schema change and epoch change takes: "palyra" as 48 bits. */
export const SCHEMA_LOCK = 0x70616c797261;

/** The channel `NOTIFY` announces changes on. */
export const CHANNEL = "palyra_vault";

/** Version 1, statement by statement. */
export const SCHEMA_V1: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS vault_meta (
    id smallint PRIMARY KEY CHECK (id = 1),
    schema_version integer NOT NULL,
    current_epoch integer NOT NULL CHECK (current_epoch > 0)
  )`,
  `CREATE TABLE IF NOT EXISTS vault_devices (
    device_id text PRIMARY KEY,
    recipient text NOT NULL UNIQUE,
    label text NOT NULL DEFAULT '',
    added_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
  )`,
  `CREATE TABLE IF NOT EXISTS vault_keys (
    epoch integer NOT NULL,
    device_id text NOT NULL REFERENCES vault_devices (device_id),
    wrapped_key bytea NOT NULL,
    PRIMARY KEY (epoch, device_id)
  )`,
  `CREATE TABLE IF NOT EXISTS vault_secrets (
    scope text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    envelope bytea NOT NULL,
    epoch integer NOT NULL,
    value_bytes integer NOT NULL CHECK (value_bytes >= 0),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    written_by text NOT NULL,
    PRIMARY KEY (scope, key, version)
  )`,
  `CREATE INDEX IF NOT EXISTS vault_secrets_epoch ON vault_secrets (epoch)`,
];
