/**
 * Keychain benchmark (issue #4), run by `npm run bench` inside a private
 * D-Bus session with an unlocked gnome-keyring: put and get through the
 * Linux Secret Service backend, next to the encrypted-file backend and (on
 * Bun) Bun's built-in `Bun.secrets`, in the same run. Prints JSON lines of ops/s.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Vault } from "../src/vault.ts";
import { LinuxSecretServiceBackend } from "../src/backends/linux_secret_service.ts";
import { runtimeName } from "../src/platform/runtime.ts";

const KEK = new Uint8Array(32).fill(7);
const VALUE = "sk-bench-0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEF";
const runtime = runtimeName();

async function measure(op: (i: number) => Promise<unknown>, count: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await op(i);
  return (count * 1000) / (performance.now() - t0);
}

const emit = (o: Record<string, unknown>) => console.log(JSON.stringify({ runtime, ...o }));
const dir = mkdtempSync(join(tmpdir(), "palyra-keychain-bench-"));

for (
  const [name, backend] of [["encrypted_file", "encrypted_file"], [
    "linux_secret_service",
    new LinuxSecretServiceBackend({ service: "palyra.vault.v1.bench" }),
  ]] as const
) {
  const vault = await Vault.open({ root: join(dir, name), kek: KEK, backend });
  const put = await measure((i) => vault.putSecret("ws:bench", `k${i % 10}`, VALUE), 40);
  const get = await measure(async (i) => {
    using s = await vault.getSecret("ws:bench", `k${i % 10}`);
    return s.length;
  }, 80);
  emit({ backend: name, put, get });
}

const bunSecrets = (globalThis as {
  Bun?: {
    secrets?: { set(o: Record<string, string>): Promise<void>; get(o: Record<string, string>): Promise<string | null> };
  };
}).Bun?.secrets;
if (bunSecrets) {
  const put = await measure(
    (i) => bunSecrets.set({ service: "palyra.bench.bun", name: `k${i % 10}`, value: VALUE }),
    40,
  );
  const get = await measure((i) => bunSecrets.get({ service: "palyra.bench.bun", name: `k${i % 10}` }), 80);
  emit({ backend: "Bun.secrets", put, get });
}
