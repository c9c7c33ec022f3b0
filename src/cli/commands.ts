/**
 * The table of commands: what `--help` shows and how each is called. The code
 * of a command is in its own file, loaded only when that command runs.
 */
import type { OptionSpec, ParsedArgs } from "./args.ts";
import { PROGRAM } from "./output.ts";

/** One command: its help and the loader of its code. */
export interface Command {
  readonly usage: string;
  readonly summary: string;
  readonly example: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  readonly optionHelp?: string;
  readonly positionals: readonly [min: number, max: number];
  /** Its positionals end with a program's command line, whose options are that program's. */
  readonly takesCommandLine?: boolean;
  readonly load: () => Promise<{ run(args: ParsedArgs): Promise<number> }>;
}

/** Options every command takes. */
export const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  "vault-dir": { type: "string" },
  "identity-dir": { type: "string" },
  "kek-file": { type: "string" },
  store: { type: "string" },
  backend: { type: "string" },
  layout: { type: "string" },
  "max-bytes": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
};

/** The commands, in the order help lists them. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  doctor: {
    usage: "doctor",
    summary: "show the runtime, folders and modes, backends available here, and lock state (reads no secret)",
    example: `${PROGRAM} doctor --json`,
    options: {},
    positionals: [0, 0],
    load: () => import("./doctor.ts"),
  },
  set: {
    usage: "set <scope> <key> | <scope>/<key> [--force] [--if-version N]",
    summary: "store a secret; the value comes from stdin (exact bytes) or a hidden prompt",
    example: `printf '%s' "$OPENAI_API_KEY" | ${PROGRAM} set global openai_api_key`,
    options: { force: { type: "boolean" }, "if-version": { type: "string" } },
    optionHelp: "  --force              replace a different value already stored under <scope> <key>\n" +
      "  --if-version N       PostgreSQL store: write only if the live version is still N (0: not set yet);\n" +
      "                       otherwise fail with conflict and write nothing",
    positionals: [1, 2],
    load: () => import("./set.ts"),
  },
  get: {
    usage: "get <scope> <key> | <scope>/<key> [--reveal] [--version N]",
    summary: "read a secret; redacted unless --reveal, which writes the exact bytes to stdout",
    example: `${PROGRAM} get ws:acme github_token --reveal`,
    // A value for --version here: the version to read (the program's version is `palyra-secrets -V`).
    options: { reveal: { type: "boolean" }, version: { type: "string" } },
    optionHelp: "  --reveal             write the secret's exact bytes to stdout\n" +
      "  --version N          PostgreSQL store: read version N instead of the live one (see versions)",
    positionals: [1, 2],
    load: () => import("./get.ts"),
  },
  run: {
    usage: "run [--env NAME=<ref>]… [--env-file FILE]… [--mask] -- <command> [args…]",
    summary: "run a program with secrets added to its environment (never its arguments); exits with its code",
    example: `${PROGRAM} run --env GITHUB_TOKEN=ws:acme/github_token -- node deploy.js`,
    options: {
      env: { type: "string", multiple: true },
      "env-file": { type: "string", multiple: true },
      mask: { type: "boolean" },
    },
    optionHelp: "  --env NAME=<ref>     add the secret <ref> (scope/key) as variable NAME; repeat for more\n" +
      "  --env-file FILE      add the NAME=<ref> lines of a dotenv file (comments, blank lines, export)\n" +
      "  --mask               replace each value in the program's output with <redacted> when the output is\n" +
      "                       a pipe (a terminal gets the output untouched)",
    positionals: [1, Infinity],
    takesCommandLine: true,
    load: () => import("./run.ts"),
  },
  inject: {
    usage: "inject -i TEMPLATE [-o FILE]",
    summary:
      "copy a template, replacing each {{ vault://<scope>/<key> }} with its secret (to FILE, mode 0600, or stdout)",
    example: `${PROGRAM} inject -i config.yaml.tpl -o config.yaml`,
    options: { in: { type: "string", short: "i" }, out: { type: "string", short: "o" } },
    optionHelp: "  -i, --in TEMPLATE    the template to read\n" +
      "  -o, --out FILE       write here, atomically with mode 0600 (default: stdout); nothing is written\n" +
      "                       unless every reference resolves",
    positionals: [0, 0],
    load: () => import("./inject.ts"),
  },
  export: {
    usage: "export --to FILE (--passphrase | --recipient age1…) [<scope>…]",
    summary: "write the secrets (of every scope, or those given) into an age file that `age -d` opens",
    example: `${PROGRAM} export --to backup.age --recipient "$(age-keygen -y key.txt)"`,
    options: {
      to: { type: "string" },
      passphrase: { type: "boolean" },
      recipient: { type: "string", multiple: true },
    },
    optionHelp: "  --to FILE            write the age file here, atomically with mode 0600\n" +
      "  --passphrase         encrypt to a passphrase, read from a hidden prompt (twice) or stdin\n" +
      "  --recipient age1…    encrypt to this age recipient (age-keygen -y); repeat for more",
    positionals: [0, Infinity],
    load: () => import("./export.ts"),
  },
  import: {
    usage: "import --from FILE [--identity FILE]… [--on-conflict fail|skip|overwrite]",
    summary: "read an age file made by export or age -e into the vault; all or nothing per scope",
    example: `${PROGRAM} import --from backup.age --identity key.txt --on-conflict skip`,
    options: {
      from: { type: "string" },
      identity: { type: "string", multiple: true },
      "on-conflict": { type: "string" },
    },
    optionHelp: "  --from FILE          the age file (binary or armored)\n" +
      "  --identity FILE      an age identity file (age-keygen); without it, a passphrase is read from a\n" +
      "                       hidden prompt or stdin\n" +
      "  --on-conflict MODE   a key holding a different value: fail (default; nothing is imported), skip,\n" +
      "                       or overwrite",
    positionals: [0, 0],
    load: () => import("./import.ts"),
  },
  list: {
    usage: "list [<scope>]",
    summary: "list keys with their created and updated times; every scope when none is given",
    example: `${PROGRAM} list ws:acme --json`,
    options: {},
    positionals: [0, 1],
    load: () => import("./list.ts"),
  },
  delete: {
    usage: "delete <scope> <key> | <scope>/<key>",
    summary: "delete a secret; prints deleted=false when it did not exist",
    example: `${PROGRAM} delete ws:acme github_token`,
    options: {},
    positionals: [1, 2],
    load: () => import("./delete.ts"),
  },
  versions: {
    usage: "versions <scope> <key> | <scope>/<key>",
    summary: "PostgreSQL store: list the versions kept of a secret, newest first (never a value)",
    example: `${PROGRAM} versions global openai_api_key --store "$PALYRA_VAULT_STORE"`,
    options: {},
    positionals: [1, 2],
    load: () => import("./versions.ts"),
  },
  rollback: {
    usage: "rollback <scope> <key> | <scope>/<key> --to N",
    summary: "PostgreSQL store: make version N's value live again, as a new version",
    example: `${PROGRAM} rollback global openai_api_key --to 3`,
    options: { to: { type: "string" } },
    optionHelp: "  --to N               the version to bring back (see versions)",
    positionals: [1, 2],
    load: () => import("./rollback.ts"),
  },
  devices: {
    usage: "devices self | list | add <age1…> [--label TEXT] | remove <id>",
    summary: "PostgreSQL store: show this device's age recipient, list members, add one, or remove one " +
      "(a new vault key; every data key rewrapped)",
    example: `${PROGRAM} devices add age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p --label ci-2`,
    options: { label: { type: "string" } },
    optionHelp: "  --label TEXT         add: a name for people to tell the device by",
    positionals: [1, 2],
    load: () => import("./devices.ts"),
  },
  migrate: {
    usage: "migrate --to scoped|palyra",
    summary: "convert the vault in place to the scoped layout or to the layout of Palyra's daemon; " +
      "safe to interrupt, and run again to finish",
    example: `${PROGRAM} migrate --to palyra`,
    options: { to: { type: "string" } },
    optionHelp: "  --to LAYOUT          scoped (every scope kind) | palyra (shared with Palyra's daemon)",
    positionals: [0, 0],
    load: () => import("./migrate.ts"),
  },
  rekey: {
    usage: "rekey --to-identity DIR | --to-kek-file FILE",
    summary: "wrap every data key under a new key (values untouched); run again to finish after a crash",
    example: `${PROGRAM} rekey --to-identity ~/.local/state/palyra/identity-2027`,
    options: { "to-identity": { type: "string" }, "to-kek-file": { type: "string" } },
    optionHelp:
      "  --to-identity DIR    the identity folder to key the vault to (an identity is made there if none);\n" +
      "                       afterwards use --identity-dir DIR\n" +
      "  --to-kek-file FILE   a 32-byte key (raw, or 64 hex); afterwards use --kek-file FILE",
    positionals: [0, 0],
    load: () => import("./rekey.ts"),
  },
  fsck: {
    usage: "fsck [--repair]",
    summary: "check that every secret's index entry and object agree and open; --repair fixes what is safe to fix",
    example: `${PROGRAM} fsck --repair`,
    options: { repair: { type: "boolean" } },
    optionHelp: "  --repair             rebuild index entries from the objects, move unreadable files aside as\n" +
      "                       <name>.corrupt-<n>, remove leftovers older than a minute; never deletes a\n" +
      "                       secret that opens (exit 3 while findings stand)",
    positionals: [0, 0],
    load: () => import("./fsck.ts"),
  },
  audit: {
    usage: "audit [--path FILE] [--strict] [--orphans]",
    summary: "find plaintext secrets and check vault references in a Palyra config (palyra.toml)",
    example: `${PROGRAM} audit --path palyra.toml --strict`,
    options: { path: { type: "string" }, strict: { type: "boolean" }, orphans: { type: "boolean" } },
    optionHelp: "  --path FILE          the config file (default: ./palyra.toml, else the user config)\n" +
      "  --strict             exit 3 when there are blocking findings\n" +
      "  --orphans            also list the vault's secrets that no *_vault_ref of the file names",
    positionals: [0, 0],
    load: () => import("./audit.ts"),
  },
  configure: {
    usage: "configure <dotted.field> <scope> <key> [--path FILE] [--from-config] [--force] [--backups N]",
    summary: "store a config field's secret in the vault and replace the field with <field>_vault_ref",
    example: `${PROGRAM} configure model_provider.openai_api_key global openai_api_key --from-config`,
    options: {
      path: { type: "string" },
      "from-config": { type: "boolean" },
      force: { type: "boolean" },
      backups: { type: "string" },
    },
    optionHelp: "  --path FILE          the config file (default: ./palyra.toml, else the user config)\n" +
      "  --from-config        move the plaintext already in the file (otherwise the value comes from stdin)\n" +
      "  --force              replace a different value already stored under <scope> <key>\n" +
      "  --backups N          how many backups to keep as FILE.bak.1 … (default 5; 0 for none)",
    positionals: [3, 3],
    load: () => import("./configure.ts"),
  },
  completion: {
    usage: "completion bash|zsh|fish",
    summary: "print a completion script for the shell (commands and options)",
    example: `source <(${PROGRAM} completion bash)`,
    options: {},
    positionals: [1, 1],
    load: () => import("./completion.ts"),
  },
};
