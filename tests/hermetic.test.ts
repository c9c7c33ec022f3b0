/**
 * `npm test` (scripts/test.mjs) runs every test away from the developer's own secrets: no test may find
 * their vault, identity folder or PostgreSQL store through the environment, nor their desktop's session
 * bus, where an `auto` backend would pick their real keyring.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";

// Run another way (`deno test tests/`), the environment is whatever the caller's is, and this test says so.
const viaNpmTest = process.env.npm_lifecycle_event === "test";

test("npm test hides the user's vault, identity, store and session bus from every test", {
  skip: viaNpmTest ? false : "the environment is set by npm test (scripts/test.mjs)",
}, () => {
  assert.equal(process.env.PALYRA_VAULT_BACKEND, "encrypted_file");
  for (const name of ["PALYRA_VAULT_DIR", "PALYRA_IDENTITY_DIR", "PALYRA_VAULT_STORE", "DBUS_SESSION_BUS_ADDRESS"]) {
    assert.equal(process.env[name], undefined, `${name} reaches the tests`);
  }
});
