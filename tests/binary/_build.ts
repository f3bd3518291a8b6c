// Shared by the binary tests: find Bun, build dist/stoken once (scripts/build-binary.ts keeps
// it cached by a hash of its inputs), copy it alone into an empty directory, and run programs
// with a clean environment so nothing from this checkout (Deno, Bun, node_modules) can help.
import { chmod, copyFile, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/server.ts";

export { REPO_ROOT };
export const BINARY_DIR = join(REPO_ROOT, "tests", "binary");

export interface Result {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** Run a command to completion; kill it after `timeoutMs` so a hang fails the test. */
export async function exec(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; clearEnv?: boolean; timeoutMs?: number } = {},
): Promise<Result> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    cwd: opts.cwd ?? REPO_ROOT,
    clearEnv: opts.clearEnv ?? false,
    ...(opts.env === undefined ? {} : { env: opts.env }),
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, opts.timeoutMs ?? 300_000);
  try {
    const out = await child.output();
    return {
      code: out.code,
      signal: out.signal,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The Bun of package.json's pin (scripts/ensure-bun finds or installs it), or null with the
 * reason and `consequence` on stderr: the binary tests are then skipped, not failed.
 */
export async function findBun(
  consequence = "SKIPPED: the single binary cannot be built here",
): Promise<string | null> {
  const r = await exec(join(REPO_ROOT, "scripts", "ensure-bun"), []);
  const path = r.stdout.trim();
  if (r.code === 0 && path !== "") return path;
  const reason = (r.stderr.trim() || `exit ${r.code}`).replaceAll("\n", " / ");
  console.warn(`tests: Bun could not be found or installed: ${consequence} (${reason})`);
  return null;
}

let built: Promise<string> | null = null;

/** Build dist/stoken (once per test process; the build script skips it if up to date). */
export function buildBinary(bun: string): Promise<string> {
  built ??= (async () => {
    const r = await exec(bun, [join(REPO_ROOT, "scripts", "build-binary.ts")]);
    if (r.code !== 0) {
      throw new Error(`scripts/build-binary.ts failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
    }
    return join(REPO_ROOT, "dist", "stoken");
  })();
  return built;
}

/** A fresh empty directory holding nothing but a copy of the binary, named `stoken`. */
export async function binaryAlone(binary: string): Promise<{ dir: string; bin: string }> {
  const dir = await mkdtemp(join(tmpdir(), "stoken-binary-"));
  const bin = join(dir, "stoken");
  await copyFile(binary, bin);
  await chmod(bin, 0o755);
  return { dir, bin };
}

/**
 * The environment the copied binary runs with: a bare PATH (no Deno, no Bun, no checkout)
 * and a HOME of its own; nothing else is inherited.
 */
export function bareEnv(home: string): Record<string, string> {
  return { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: home, LANG: "C.UTF-8" };
}
