/**
 * Large files that a scan reads as ASCII (a scope's snapshot, docs/FORMAT.md
 * §5.1), turned into text by the runtime's fastest means. Node 20's
 * `TextDecoder` took 15–18 ms for the 4.4 MiB snapshot of 100 000 secrets,
 * every time, where `Buffer` makes the same string of all-ASCII bytes in 0.3
 * ms in a loop of its own and 6 ms a list in the list's CPU profile: in a
 * process that only lists, a warm list of 100 000 took 51–70 ms against
 * 74–96 (means over a second). Deno's and Bun's `TextDecoder` take 0.2 ms
 * there already.
 */
import { runtimeName } from "./runtime.ts";

type NodeBuffer = typeof import("node:buffer");

/** On `node:buffer`: the text of `bytes` when they are all ASCII, else `undefined`. */
export function asciiTextOn({ Buffer, isAscii }: NodeBuffer): (bytes: Uint8Array) => string | undefined {
  return (bytes) =>
    isAscii(bytes) ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("ascii") : undefined;
}

/**
 * The text of `bytes` when they are all ASCII (the same string UTF-8 decoding
 * gives), else `undefined`; the function itself is `undefined` where the
 * runtime's `TextDecoder` is the fast way (Deno, Bun).
 */
export const asciiText: ((bytes: Uint8Array) => string | undefined) | undefined = runtimeName() === "node"
  ? asciiTextOn(await import("node:buffer"))
  : undefined;
