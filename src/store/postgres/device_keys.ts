/**
 * A device's part in a PostgreSQL store (docs/FORMAT.md §10.2): its age
 * X25519 identity, kept in the identity store as `vault/device.age-identity`,
 * its recipient, its id, and the wrapping of a vault key to a recipient.
 */
import { toHex, utf8 } from "../../crypto/encoding.ts";
import { KEY_BYTES } from "../../crypto/kdf.ts";
import { VaultError } from "../../errors.ts";
import { sha256 } from "../../platform/sha256.ts";
import { FILES } from "../layout.ts";
import { type IdentityHost, loadOrCreateItem } from "../identity_store.ts";

type Age = typeof import("age-encryption");
let age: Age | undefined;
async function loadAge(): Promise<Age> {
  return age ??= await import("age-encryption");
}

/** This device as a member of a store: who it is and how it opens its wrapped keys. */
export interface DeviceKey {
  /** `d_` and 16 hex characters of SHA-256 of the recipient. */
  readonly id: string;
  /** The age X25519 recipient (`age1…`) other devices wrap the vault key to. */
  readonly recipient: string;
  /** Opens a vault key wrapped to this device; the caller wipes it. `crypto` when it is not for this device. */
  unwrap(wrapped: Uint8Array): Promise<Uint8Array>;
}

/** The id of the device whose recipient is `recipient` (docs/FORMAT.md §10.2). */
export function deviceId(recipient: string): string {
  return `d_${toHex(sha256(utf8(recipient))).slice(0, 16)}`;
}

/** `recipient` when it is an age X25519 recipient, else `invalid_config`. */
export async function checkRecipient(recipient: string): Promise<string> {
  const { Encrypter } = await loadAge();
  if (typeof recipient !== "string" || !/^age1[02-9ac-hj-np-z]{58}$/.test(recipient)) {
    throw new VaultError(
      "invalid_config",
      `add device failed: ${JSON.stringify(recipient)} is not an age X25519 recipient`,
      {
        hint: "on the new device, run palyra-secrets devices self --store … and pass the age1… it prints",
      },
    );
  }
  try {
    new Encrypter().addRecipient(recipient);
  } catch (e) {
    throw new VaultError(
      "invalid_config",
      `add device failed: ${JSON.stringify(recipient)} is not a valid age recipient (${String(e)})`,
    );
  }
  return recipient;
}

/** Wraps a vault key to `recipient` as an age v1 file (binary). */
export async function wrapVaultKey(vaultKey: Uint8Array, recipient: string): Promise<Uint8Array> {
  const { Encrypter } = await loadAge();
  const e = new Encrypter();
  e.addRecipient(recipient);
  return await e.encrypt(vaultKey);
}

/** This device's age identity, created in the identity store the first time a store is opened. */
export async function loadDeviceKey(host: IdentityHost, identityDir: string): Promise<DeviceKey> {
  const { generateIdentity, identityToRecipient, Decrypter } = await loadAge();
  const doc = await loadOrCreateItem(host, identityDir, FILES.identityAgeItem, async () => ({
    identity: await generateIdentity(),
  }));
  const secret = doc.identity;
  if (typeof secret !== "string" || !secret.startsWith("AGE-SECRET-KEY-1")) {
    throw new VaultError("identity", `read device age identity in "${identityDir}" failed: the item is malformed`, {
      hint: "restore the identity folder from a backup",
    });
  }
  const identity = secret;
  const recipient = await identityToRecipient(identity);
  return {
    id: deviceId(recipient),
    recipient,
    async unwrap(wrapped: Uint8Array): Promise<Uint8Array> {
      const d = new Decrypter();
      d.addIdentity(identity);
      let key: Uint8Array;
      try {
        key = await d.decrypt(wrapped);
      } catch (e) {
        throw new VaultError("crypto", "open vault key failed: it is not wrapped to this device's age identity", {
          cause: e,
        });
      }
      if (key.length !== KEY_BYTES) {
        key.fill(0);
        throw new VaultError("crypto", `open vault key failed: it is ${key.length} bytes, not ${KEY_BYTES}`);
      }
      return key;
    },
  };
}
