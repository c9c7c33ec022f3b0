/**
 * `palyra-secrets completion bash|zsh|fish`: a completion script for the
 * shell, made from the command table, so it always offers the commands and
 * options this version has. Scopes and keys are not completed: that would
 * mean reading the vault from a shell hook.
 */
import type { ParsedArgs } from "./args.ts";
import { COMMANDS, GLOBAL_OPTIONS } from "./commands.ts";
import { print, PROGRAM, UsageError } from "./output.ts";

const FUNCTION = "_palyra_secrets";

/** Each command's options, as `--name` (and `-x` for a short one), the global ones included. */
function optionsOf(name: string): string[] {
  const all = { ...GLOBAL_OPTIONS, ...COMMANDS[name]!.options };
  return Object.entries(all).flatMap(([long, o]) => [`--${long}`, ...(o.short ? [`-${o.short}`] : [])]);
}

function bash(): string {
  const cases = Object.keys(COMMANDS).map((c) => `    ${c}) opts="${optionsOf(c).join(" ")}" ;;`).join("\n");
  return `# bash completion for ${PROGRAM}: source it, e.g. from ~/.bashrc:  source <(${PROGRAM} completion bash)
${FUNCTION}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" opts
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${Object.keys(COMMANDS).join(" ")}" -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases}
    *) opts="" ;;
  esac
  case "$cur" in
    -*) COMPREPLY=($(compgen -W "$opts" -- "$cur")) ;;
    *) COMPREPLY=($(compgen -f -- "$cur")) ;;
  esac
}
complete -F ${FUNCTION} ${PROGRAM}
`;
}

function zsh(): string {
  const cases = Object.keys(COMMANDS).map((c) => `    ${c}) opts=(${optionsOf(c).join(" ")}) ;;`).join("\n");
  const commands = Object.entries(COMMANDS).map(([c, d]) => `'${c}:${d.summary.replaceAll("'", "'\\''")}'`);
  return `#compdef ${PROGRAM}
# zsh completion for ${PROGRAM}: source it after compinit, e.g. from ~/.zshrc:  source <(${PROGRAM} completion zsh)
${FUNCTION}() {
  local -a opts subcommands
  if (( CURRENT == 2 )); then
    subcommands=(${commands.join(" ")})
    _describe command subcommands
    return
  fi
  case $words[2] in
${cases}
    *) opts=() ;;
  esac
  if [[ $words[CURRENT] == -* ]]; then
    compadd -- $opts
  else
    _files
  fi
}
compdef ${FUNCTION} ${PROGRAM}
`;
}

function fish(): string {
  const q = (s: string) => `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
  const lines = [`# fish completion for ${PROGRAM}: ${PROGRAM} completion fish | source`, `complete -c ${PROGRAM} -f`];
  for (const [c, d] of Object.entries(COMMANDS)) {
    lines.push(`complete -c ${PROGRAM} -n __fish_use_subcommand -a ${c} -d ${q(d.summary)}`);
    for (const [long, o] of Object.entries({ ...GLOBAL_OPTIONS, ...d.options })) {
      const short = o.short ? ` -s ${o.short}` : "";
      const value = o.type === "string" ? " -r" : "";
      lines.push(`complete -c ${PROGRAM} -n '__fish_seen_subcommand_from ${c}' -l ${long}${short}${value}`);
    }
  }
  return lines.join("\n") + "\n";
}

const SHELLS: Record<string, () => string> = { bash, zsh, fish };

/** Prints the script for the shell named. */
export async function run(args: ParsedArgs): Promise<number> {
  const shell = args.positionals[0]!;
  const make = Object.hasOwn(SHELLS, shell) ? SHELLS[shell] : undefined;
  if (make === undefined) {
    throw new UsageError(`unknown shell ${JSON.stringify(shell)}; completion scripts exist for bash, zsh and fish`);
  }
  await print(make());
  return 0;
}
