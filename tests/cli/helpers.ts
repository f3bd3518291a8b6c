// Child-process helpers for the CLI tests.
import { fileURLToPath as fromFileUrl } from "node:url";

export const ROOT = fromFileUrl(new URL("../../", import.meta.url));
const ENTRY = fromFileUrl(new URL("./cli_entry.ts", import.meta.url));

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `deno run -A <script> ...args` from the repository root, with optional stdin. */
export async function runDeno(
  script: string,
  args: string[],
  opts: { stdin?: string; env?: Record<string, string> } = {},
): Promise<Ran> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    cwd: ROOT,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...opts.env },
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** `stoken <args>` through the test entry (init and user only). */
export function stoken(
  args: string[],
  opts: { stdin?: string; env?: Record<string, string> } = {},
) {
  return runDeno(ENTRY, args, opts);
}

export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stoken-cli-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
