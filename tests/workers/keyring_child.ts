/**
 * Starts the test Secret Service in a child process, then ends that process
 * (`exit` or `kill`) so a test can check that the daemons end with it.
 */
import process from "node:process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { secretService } from "../secret_service_env.ts";

const ss = await secretService();
process.stdout.write(`pids=${readFileSync(join(dirname(ss.env.HOME!), "pids"), "utf8").trim()}\n`);
if (process.argv[2] === "kill") process.kill(process.pid, "SIGKILL");
process.exit(0);
