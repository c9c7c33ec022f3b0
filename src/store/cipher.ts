/**
 * The vault's cipher as every part of the library makes it (the vault, the
 * PostgreSQL store, fsck, rekey): an `EnvelopeCipher` whose large values go to
 * the runtime's own AES-GCM and base64 where it has them
 * (`src/platform/native_crypto.ts`). The crypto layer touches no runtime API,
 * so the choice is made here, once.
 */
import { type CipherEngine, EnvelopeCipher } from "../crypto/envelope_async.ts";
import { nativeCrypto } from "../platform/native_crypto.ts";

/** The cipher for `kek` on `engine`; `id` is its `kek_id` when the caller has it already. */
export function vaultCipher(kek: Uint8Array, engine: CipherEngine, id?: string): EnvelopeCipher {
  return new EnvelopeCipher(kek, engine, id, nativeCrypto);
}
