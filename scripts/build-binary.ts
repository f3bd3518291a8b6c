// Build dist/stoken, one self-contained executable, with `bun build --compile` (run with Bun:
// `bun scripts/build-binary.ts [--outfile FILE] [--force]`; `make binary` does that).
//
// The executable carries the Bun runtime, the bundled code and libSQL's native module
// (embedded by scripts/bun-libsql-plugin.ts), so it needs nothing beside it. It is built for
// the machine that builds it: cross-compiling would download another Bun runtime.
//
// Builds are cached: the output is rebuilt only when a hash of its inputs (the sources, the
// lock files, these build scripts and the Bun version) differs from the one recorded in
// <outfile>.hash, so the binary tests can call this on every run.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { spawnSync } from "node:child_process";
import { libsqlNativePlugin, nativePackage } from "./bun-libsql-plugin.ts";

/** The parts of Bun's API used here (so this file needs no Bun type package). */
declare const Bun: {
  version: string;
  build(config: {
    entrypoints: string[];
    compile: {
      outfile: string;
      autoloadDotenv: boolean;
      autoloadBunfig: boolean;
    };
    minify: boolean;
    plugins: ReturnType<typeof libsqlNativePlugin>[];
    throw: boolean;
  }): Promise<{ success: boolean; logs: unknown[] }>;
};

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
/** Inputs of the build, relative to the repository root; directories are read recursively. */
const INPUTS = [
  "mod.ts",
  "src",
  "deno.json",
  "deno.lock",
  "package.json",
  "scripts/build-binary.ts",
  "scripts/bun-libsql-plugin.ts",
];

async function listFiles(path: string): Promise<string[]> {
  const st = await stat(path).catch(() => null);
  if (st === null) return [];
  if (!st.isDirectory()) return [path];
  const out: string[] = [];
  for (const entry of await readdir(path)) out.push(...(await listFiles(join(path, entry))));
  return out;
}

/** sha256 over the names and contents of the inputs, and the Bun version. */
async function inputHash(): Promise<string> {
  const h = createHash("sha256");
  h.update(`bun ${Bun.version}\0${process.platform}-${process.arch}\0`);
  const files: string[] = [];
  for (const input of INPUTS) files.push(...(await listFiles(join(ROOT, input))));
  for (const file of files.sort()) {
    h.update(`${relative(ROOT, file)}\0`);
    h.update(await readFile(file));
    h.update("\0");
  }
  return h.digest("hex");
}

function fail(message: string): never {
  console.error(`build-binary: ${message}`);
  process.exit(1);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { outfile: { type: "string" }, force: { type: "boolean" } },
    strict: true,
  });
  if (typeof Bun === "undefined") fail("run this script with Bun: bun scripts/build-binary.ts");
  const outfile = resolve(ROOT, values.outfile ?? "dist/stoken");
  const hashFile = `${outfile}.hash`;

  // The npm dependencies come from deno.lock through Deno's node_modules (`deno install`);
  // Bun resolves @libsql/client from there like any node_modules tree.
  try {
    createRequire(join(ROOT, "mod.ts")).resolve("@libsql/client");
  } catch {
    fail(`@libsql/client is not installed in ${ROOT}/node_modules: run "deno install" first`);
  }

  const hash = await inputHash();
  if (!values.force && existsSync(outfile)) {
    const previous = await readFile(hashFile, "utf8").catch(() => "");
    if (previous.trim() === hash) {
      console.error(`build-binary: ${relative(ROOT, outfile)} is up to date (inputs unchanged)`);
      return;
    }
  }

  const pkg = nativePackage(process.platform, process.arch);
  const embedded = new Set<string>();
  // Built in a directory of its own under the final name (the name is also the entry's name
  // inside the binary, seen in stack traces), then moved into place: a concurrent or failed
  // build never leaves a half-written binary at `outfile`.
  const tmpDir = join(dirname(outfile), `.build-${process.pid}`);
  const tmp = join(tmpDir, basename(outfile));
  await mkdir(tmpDir, { recursive: true });
  await rm(hashFile, { force: true });
  const started = performance.now();
  let result;
  try {
    result = await Bun.build({
      entrypoints: [join(ROOT, "mod.ts")],
      compile: {
        outfile: tmp,
        // A server binary must not pick up a .env or bunfig.toml from whatever directory it
        // is started in: configuration comes from stoken.json and the environment only.
        autoloadDotenv: false,
        autoloadBunfig: false,
      },
      minify: true,
      plugins: [libsqlNativePlugin(pkg, embedded)],
      throw: true,
    });
  } catch (e) {
    await rm(tmpDir, { recursive: true, force: true });
    fail(`bun build failed: ${(e as Error).message}`);
  }
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    await rm(tmpDir, { recursive: true, force: true });
    fail("bun build failed");
  }
  if (embedded.size === 0) {
    await rm(tmpDir, { recursive: true, force: true });
    fail("the libsql package was not bundled, so its native module is missing: check the plugin");
  }

  // The binary must at least start: libsql loads its native module when it is imported, at
  // start. Run outside the checkout, so no node_modules could stand in for the embedded file.
  const smoke = spawnSync(tmp, ["--help"], { encoding: "utf8", cwd: tmpdir() });
  if (smoke.status !== 0) {
    await rm(tmpDir, { recursive: true, force: true });
    fail(`the built binary does not run (exit ${smoke.status}):\n${smoke.stderr}`);
  }

  await rename(tmp, outfile);
  await rm(tmpDir, { recursive: true, force: true });
  await writeFile(hashFile, `${hash}\n`);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const mib = ((await stat(outfile)).size / 1024 / 1024).toFixed(1);
  console.error(
    `build-binary: ${relative(ROOT, outfile)} built in ${seconds} s, ${mib} MiB ` +
      `(Bun ${Bun.version}, native module ${pkg} embedded)`,
  );
}

await main();
