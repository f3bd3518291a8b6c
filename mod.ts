// stoken entry point: `deno run -A mod.ts <command> [args]`; the CLI lives in src/cli.
import process from "node:process";
import { main } from "./src/cli/main.ts";

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
