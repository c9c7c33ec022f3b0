/** The package version; tests check it matches package.json, deno.json and jsr.json. */
export const VERSION = "0.1.0";
