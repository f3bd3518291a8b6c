// Run the project's Deno test files under Bun: `bun tests/binary/bun_runner.ts DIR|FILE...`.
//
// Everything above src/net must behave the same on both runtimes, and the unit tests say what
// "the same" is. They are written for `deno test`, so this runner gives Bun a small `Deno`
// global: Deno.test (with t.step) and the file-system calls the tests use, mapped onto node:
// modules. A test file that needs any other Deno API (its own or through a helper it imports:
// Deno.Command, Deno.listen, ...) is skipped, and named as skipped with the APIs it needs.
//
// Prints one line per test, then a last line of JSON:
//   {"passed": n, "failed": n, "ignored": n, "files": [...], "skipped": {file: [apis]}}
// and exits 1 if any test failed.
import { existsSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";

type TestFn = (t: TestContext) => unknown;
interface TestDef {
  name: string;
  fn: TestFn;
  ignore?: boolean;
}
interface TestContext {
  name: string;
  step(a: string | TestDef | TestFn, b?: TestFn): Promise<boolean>;
}

/** Deno APIs the shim provides; type-only names (used in annotations) are harmless too. */
const SUPPORTED = new Set([
  "test",
  "makeTempDir",
  "remove",
  "mkdir",
  "readDir",
  "readFile",
  "readTextFile",
  "writeFile",
  "writeTextFile",
  "stat",
  "lstat",
  "chmod",
  "cwd",
  "chdir",
  "pid",
  "env",
  "errors",
  "memoryUsage",
  // types only
  "Signal",
  "CommandStatus",
  "ChildProcess",
  "NetAddr",
  "Conn",
  "TcpConn",
  "TlsConn",
  "FileInfo",
  "TestContext",
]);

class DenoError extends Error {}
const errors = {
  NotFound: class NotFound extends DenoError {},
  AlreadyExists: class AlreadyExists extends DenoError {},
  PermissionDenied: class PermissionDenied extends DenoError {},
  IsADirectory: class IsADirectory extends DenoError {},
  NotADirectory: class NotADirectory extends DenoError {},
};

/** Node's error codes as the Deno error classes that tests check with instanceof. */
async function denoErrors<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const code = (e as { code?: string }).code;
    const msg = (e as Error).message;
    if (code === "ENOENT") throw new errors.NotFound(msg);
    if (code === "EEXIST") throw new errors.AlreadyExists(msg);
    if (code === "EACCES" || code === "EPERM") throw new errors.PermissionDenied(msg);
    if (code === "EISDIR") throw new errors.IsADirectory(msg);
    if (code === "ENOTDIR") throw new errors.NotADirectory(msg);
    throw e;
  }
}

type Path = string | URL;
const p = (path: Path) => (path instanceof URL ? path.pathname : path);
const bytes = (b: Uint8Array) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
type Stats = Awaited<ReturnType<typeof fsp.stat>>;
const fileInfo = (s: Stats) => ({
  isFile: s.isFile(),
  isDirectory: s.isDirectory(),
  isSymlink: s.isSymbolicLink(),
  size: Number(s.size),
  mode: Number(s.mode),
  mtime: s.mtime,
  atime: s.atime,
  birthtime: s.birthtime,
  uid: Number(s.uid),
  gid: Number(s.gid),
  ino: Number(s.ino),
  nlink: Number(s.nlink),
  isSocket: s.isSocket(),
});
interface WriteOpts {
  mode?: number;
  append?: boolean;
  create?: boolean;
  createNew?: boolean;
}
const flag = (
  o: WriteOpts = {},
) => (o.createNew ? "wx" : o.append ? "a" : o.create === false ? "r+" : "w");

const tests: (TestDef & { file: string })[] = [];
let currentFile = "";

function test(a: string | TestDef | TestFn, b?: TestFn | Partial<TestDef>, c?: TestFn): void {
  let def: TestDef;
  if (typeof a === "function") def = { name: a.name, fn: a };
  else if (typeof a === "string") {
    def = typeof b === "function" ? { name: a, fn: b } : { ...b, name: a, fn: c! };
  } else def = typeof b === "function" ? { ...a, fn: b } : a;
  tests.push({ ...def, file: currentFile });
}

const shim = {
  test,
  errors,
  pid: process.pid,
  makeTempDir: (o: { prefix?: string; dir?: string } = {}) =>
    fsp.mkdtemp(join(o.dir ?? tmpdir(), o.prefix ?? "bun-test-")),
  remove: (path: Path, o: { recursive?: boolean } = {}) =>
    denoErrors(async () => {
      await fsp.lstat(p(path)); // Deno.remove fails on a missing path
      await fsp.rm(p(path), { recursive: o.recursive ?? false });
    }),
  mkdir: (path: Path, o: { recursive?: boolean; mode?: number } = {}) =>
    denoErrors(async () => {
      await fsp.mkdir(p(path), o);
    }),
  async *readDir(path: Path) {
    const entries = await denoErrors(() => fsp.readdir(p(path), { withFileTypes: true }));
    for (const d of entries) {
      yield {
        name: d.name,
        isFile: d.isFile(),
        isDirectory: d.isDirectory(),
        isSymlink: d.isSymbolicLink(),
      };
    }
  },
  readFile: (path: Path) => denoErrors(async () => bytes(await fsp.readFile(p(path)))),
  readTextFile: (path: Path) => denoErrors(() => fsp.readFile(p(path), "utf8")),
  writeFile: (path: Path, data: Uint8Array, o?: WriteOpts) =>
    denoErrors(() => fsp.writeFile(p(path), data, { flag: flag(o), mode: o?.mode ?? 0o666 })),
  writeTextFile: (path: Path, data: string, o?: WriteOpts) =>
    denoErrors(() => fsp.writeFile(p(path), data, { flag: flag(o), mode: o?.mode ?? 0o666 })),
  stat: (path: Path) => denoErrors(async () => fileInfo(await fsp.stat(p(path)))),
  lstat: (path: Path) => denoErrors(async () => fileInfo(await fsp.lstat(p(path)))),
  chmod: (path: Path, mode: number) => denoErrors(() => fsp.chmod(p(path), mode)),
  cwd: () => process.cwd(),
  chdir: (path: Path) => process.chdir(p(path)),
  memoryUsage: () => process.memoryUsage(),
  env: {
    get: (k: string) => process.env[k],
    set: (k: string, v: string) => void (process.env[k] = v),
    delete: (k: string) => void delete process.env[k],
    has: (k: string) => k in process.env,
    toObject: () => ({ ...process.env }),
  },
};

/** Deno APIs a test file needs, itself or through the relative imports it pulls in. */
async function denoApis(file: string, seen = new Set<string>()): Promise<Set<string>> {
  const out = new Set<string>();
  if (seen.has(file) || !existsSync(file)) return out;
  seen.add(file);
  const src = await fsp.readFile(file, "utf8");
  for (const m of src.matchAll(/\bDeno\.([A-Za-z]+)/g)) out.add(m[1]!);
  for (const m of src.matchAll(/\bfrom\s+"(\.{1,2}\/[^"]+\.ts)"/g)) {
    const dep = resolve(dirname(file), m[1]!);
    // Only test helpers: src/ is Deno-free by the project's rules.
    if (dep.includes(`${join("/", "tests", "/")}`)) {
      for (const api of await denoApis(dep, seen)) out.add(api);
    }
  }
  return out;
}

async function testFiles(arg: string): Promise<string[]> {
  const path = resolve(arg);
  const st = await fsp.stat(path);
  if (!st.isDirectory()) return [path];
  const out: string[] = [];
  for (
    const e of (await fsp.readdir(path, { withFileTypes: true })).sort((x, y) =>
      x.name < y.name ? -1 : 1
    )
  ) {
    const child = join(path, e.name);
    if (e.isDirectory()) out.push(...(await testFiles(child)));
    else if (e.name.endsWith("_test.ts")) out.push(child);
  }
  return out;
}

async function runTest(name: string, fn: TestFn): Promise<void> {
  const ctx: TestContext = {
    name,
    async step(a, b) {
      const def: TestDef = typeof a === "function"
        ? { name: a.name, fn: a }
        : typeof a === "string"
        ? { name: a, fn: b! }
        : a;
      if (def.ignore) return false;
      await runTest(`${name} > ${def.name}`, def.fn);
      return true;
    },
  };
  await fn(ctx);
}

async function main(): Promise<number> {
  (globalThis as unknown as { Deno: typeof shim }).Deno = shim;
  const root = process.cwd();
  const files: string[] = [];
  const skipped: Record<string, string[]> = {};
  for (const arg of process.argv.slice(2)) {
    for (const file of await testFiles(arg)) {
      const missing = [...(await denoApis(file))].filter((a) => !SUPPORTED.has(a)).sort();
      if (missing.length > 0) skipped[relative(root, file)] = missing;
      else files.push(file);
    }
  }
  for (const file of files) {
    currentFile = relative(root, file);
    await import(pathToFileURL(file).href);
  }
  let passed = 0, failed = 0, ignored = 0;
  for (const t of tests) {
    if (t.ignore) {
      ignored++;
      continue;
    }
    try {
      await runTest(t.name, t.fn);
      passed++;
      console.log(`ok     ${t.file} :: ${t.name}`);
    } catch (e) {
      failed++;
      console.log(
        `FAILED ${t.file} :: ${t.name}\n  ${
          String((e as Error).stack ?? e).replaceAll("\n", "\n  ")
        }`,
      );
    }
  }
  console.log(
    JSON.stringify({
      passed,
      failed,
      ignored,
      files: files.map((f) => relative(root, f)),
      skipped,
    }),
  );
  return failed === 0 ? 0 : 1;
}

process.exit(await main());
