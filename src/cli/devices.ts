/** `palyra-secrets devices self | list | add <age1…> [--label L] | remove <id>` (PostgreSQL store). */
import { deviceRecipient } from "../vault.ts";
import type { ParsedArgs } from "./args.ts";
import { folderOptions, openVault } from "./common.ts";
import { EXIT, factLine, print, printJson, PROGRAM, UsageError } from "./output.ts";

const USAGE = `${PROGRAM} devices self | list | add <age1…> [--label TEXT] | remove <id>`;

/** Shows and changes the devices of a shared vault. */
export async function run(args: ParsedArgs): Promise<number> {
  const [action, arg] = args.positionals;
  const json = args.values.json === true;
  const wants = (n: number) => {
    if (args.positionals.length !== n + 1) throw new UsageError(`devices ${action}: usage: ${USAGE}`, "devices");
  };
  switch (action) {
    case "self": {
      wants(0);
      // Needs no store: a new device prints this for a member to add.
      const { identityRoot } = folderOptions(args);
      const me = await deviceRecipient(identityRoot === undefined ? {} : { identityRoot });
      if (json) await printJson({ id: me.id, recipient: me.recipient });
      else await print(`${me.recipient}\n`);
      return EXIT.ok;
    }
    case "list": {
      wants(0);
      const vault = await openVault(args);
      const devices = await vault.listDevices();
      if (json) {
        await printJson({
          devices: devices.map((d) => ({
            id: d.id,
            recipient: d.recipient,
            label: d.label,
            added_at_unix_ms: d.addedAtUnixMs,
            revoked_at_unix_ms: d.revokedAtUnixMs ?? null,
            self: d.self,
          })),
        });
      } else {
        let out = "";
        for (const d of devices) {
          out += factLine("devices", [["id", d.id], ["recipient", d.recipient], ["label", d.label], [
            "removed",
            d.revokedAtUnixMs !== undefined,
          ], ["self", d.self]]);
        }
        await print(out);
      }
      return EXIT.ok;
    }
    case "add": {
      wants(1);
      const vault = await openVault(args);
      const label = typeof args.values.label === "string" ? args.values.label : "";
      const d = await vault.addDevice(arg!, { label });
      if (json) await printJson({ id: d.id, recipient: d.recipient, label: d.label, added: true });
      else await print(factLine("devices", [["id", d.id], ["recipient", d.recipient], ["added", true]]));
      return EXIT.ok;
    }
    case "remove": {
      wants(1);
      const vault = await openVault(args);
      const { stderrIsTerminal } = await import("../platform/prompt.ts");
      const { writeStderr } = await import("../platform/terminal.ts");
      const tty = stderrIsTerminal();
      let shown = Promise.resolve();
      const rewrapped = await vault.removeDevice(arg!, {
        onProgress: (p) => {
          if (tty) shown = shown.then(() => writeStderr(`\rrewrapping data keys: ${p.done}/${p.total}`));
        },
      });
      await shown;
      if (tty) await writeStderr("\n");
      await writeStderr(
        `warning: ${arg} can no longer read this vault, but it may have kept what it could read before: ` +
          "rotate those secrets\n",
      );
      if (json) await printJson({ id: arg, removed: true, rewrapped });
      else await print(factLine("devices", [["id", arg!], ["removed", true], ["rewrapped", rewrapped]]));
      return EXIT.ok;
    }
    default:
      throw new UsageError(`devices: usage: ${USAGE}`, "devices");
  }
}
