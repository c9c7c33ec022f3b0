/** The shared vault suite against the encrypted-file and in-memory backends. */
import { join } from "node:path";
import { Vault } from "../src/vault.ts";
import { MemoryBackend } from "../src/backends/memory.ts";
import { EncryptedFileBackend } from "../src/backends/encrypted_file.ts";
import { defaultFileSystem } from "../src/platform/fs.ts";
import { loadOrCreateIdentity } from "../src/store/identity_store.ts";
import { vaultSuite } from "./backend_suite.ts";
import { tempDir, testKek } from "./helpers.ts";

vaultSuite("encrypted_file", async () => {
  const dir = tempDir("suite");
  const root = join(dir, "vault");
  const vault = await Vault.open({ root, identityRoot: join(dir, "identity"), backend: "encrypted_file" });
  return {
    vault,
    backend: new EncryptedFileBackend(vault.root, defaultFileSystem),
    openWithOtherKey: async () => {
      await loadOrCreateIdentity({ fs: defaultFileSystem }, join(dir, "identity2"));
      return await Vault.open({ root, identityRoot: join(dir, "identity2") });
    },
  };
});

vaultSuite("memory", async () => {
  const dir = tempDir("suite-mem");
  const backend = new MemoryBackend();
  const vault = await Vault.open({ root: join(dir, "vault"), kek: testKek(3), backend });
  return {
    vault,
    backend,
    openWithOtherKey: () => Vault.open({ root: join(dir, "vault"), kek: testKek(4), backend }),
  };
});
