// Runs the init and user subcommands in a child process without going through
// mod.ts, whose command table also imports serve.ts and everything it needs.
import process from "node:process";
import { run as init } from "../../src/cli/init.ts";
import { run as user } from "../../src/cli/user.ts";

const commands: Record<string, (args: string[]) => Promise<number>> = { init, user };
const [name, ...rest] = Deno.args;
const cmd = name === undefined ? undefined : commands[name];
if (!cmd) throw new Error(`cli_entry: unknown command "${name}"`);
try {
  process.exitCode = await cmd(rest);
} catch (e) {
  // The same shape as src/cli/main.ts.
  console.error(`stoken ${name}: ${(e as Error).message}`);
  process.exitCode = 1;
}
