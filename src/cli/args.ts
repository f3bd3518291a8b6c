// Argument parsing shared by the subcommands that take `--config FILE` and positionals.
import { parseArgs } from "node:util";

export interface Parsed {
  readonly config: string | undefined;
  readonly positionals: string[];
}

/** The parsed arguments, or the exit code when there is nothing more to do (help, bad flag). */
export function parseSubcommand(args: string[], usage: string): Parsed | number {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { config: { type: "string" }, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${usage}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(usage);
    return 0;
  }
  return { config: parsed.values.config, positionals: parsed.positionals };
}
