/**
 * The POSIX path rules the library uses on Deno (src/platform/path.ts) give
 * `node:path`'s answers, on generated paths: `node:path` is the outside truth.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as nodePath from "node:path";
import fc from "fast-check";
import { posixPaths } from "../src/platform/path.ts";

const CWD = "/work/dir";
const ours = posixPaths(() => CWD);
// Paths built from the pieces that make path rules hard: roots, doubled and trailing slashes, dots.
const piece = fc.constantFrom("", "/", "//", ".", "..", "...", "a", "b.c", ".lock", "s_0f", "x y", "é");
const path = fc.array(piece, { maxLength: 7 }).map((xs) => xs.join(""));
const paths = fc.array(path, { maxLength: 4 });

describe("POSIX paths agree with node:path", () => {
  test("join, dirname, basename and resolve, on 5000 generated paths", () => {
    fc.assert(
      fc.property(path, paths, (p, ps) => {
        assert.equal(ours.dirname(p), nodePath.posix.dirname(p), `dirname ${JSON.stringify(p)}`);
        assert.equal(ours.basename(p), nodePath.posix.basename(p), `basename ${JSON.stringify(p)}`);
        assert.equal(ours.join(...ps), nodePath.posix.join(...ps), `join ${JSON.stringify(ps)}`);
        assert.equal(ours.resolve(...ps), nodePath.posix.resolve(CWD, ...ps), `resolve ${JSON.stringify(ps)}`);
      }),
      { numRuns: 5000 },
    );
  });

  test("the vault's own shapes", () => {
    assert.equal(ours.join("/v", "scopes", "s_00", "metadata.json"), "/v/scopes/s_00/metadata.json");
    assert.equal(ours.resolve("v"), "/work/dir/v");
    assert.equal(ours.dirname("/v/objects/obj_1"), "/v/objects");
    assert.equal(ours.basename("/v/objects/obj_1"), "obj_1");
  });
});
