// scripts/bun-libsql-plugin.ts: the rewrite that puts libSQL's native module inside the
// binary, checked against the libsql package this checkout actually installs, so an upgrade
// that changes its loader fails here and not in a binary at run time.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertMatch, assertThrows } from "../assert.ts";
import {
  type BunPluginBuilder,
  libsqlNativePlugin,
  nativePackage,
  rewriteNativeRequire,
} from "../../scripts/bun-libsql-plugin.ts";

// Not from ./_build.ts: this file needs no Deno API, so bun_runner.ts runs it under Bun too.
const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DYNAMIC = "return require(`@libsql/${target}`);";

/** The libsql package that @libsql/client loads, as installed from deno.lock. */
function libsqlDir(): string {
  const client = createRequire(join(REPO_ROOT, "mod.ts")).resolve("@libsql/client");
  return join(createRequire(client).resolve("libsql"), "..");
}

Deno.test("plugin: the dynamic require becomes a static require of the .node file", () => {
  const src = `function requireNative() {\n  let target = "x";\n  ${DYNAMIC}\n}\n`;
  const out = rewriteNativeRequire(src, "/nm/@libsql/linux-x64-gnu/index.node", "index.js");
  assert(!out.includes("require(`"), "the template require is gone");
  assertMatch(out, /return require\("\/nm\/@libsql\/linux-x64-gnu\/index\.node"\);/);
  assertEquals(out.replace(/require\("[^"]*"\)/, "X"), src.replace(/require\(`[^`]*`\)/, "X"));
});

Deno.test("plugin: a changed libsql loader is an error naming the file, not a silent no-op", () => {
  const none = assertThrows(() => rewriteNativeRequire("require('x')", "/a.node", "/p/index.js"));
  assertMatch(none.message, /"\/p\/index\.js", found 0/);
  const two = assertThrows(() => rewriteNativeRequire(`${DYNAMIC}${DYNAMIC}`, "/a.node", "f.js"));
  assertMatch(two.message, /found 2/);
});

Deno.test("plugin: native package names are the ones libsql publishes", async () => {
  const pkg = JSON.parse(await readFile(join(libsqlDir(), "package.json"), "utf8")) as {
    neon: { targets: Record<string, string> };
  };
  const published = new Set(Object.values(pkg.neon.targets));
  const cases: [string, string, "gnu" | "musl" | undefined, string][] = [
    ["linux", "x64", undefined, "@libsql/linux-x64-gnu"],
    ["linux", "arm64", undefined, "@libsql/linux-arm64-gnu"],
    ["linux", "x64", "musl", "@libsql/linux-x64-musl"],
    ["darwin", "arm64", undefined, "@libsql/darwin-arm64"],
    ["darwin", "x64", undefined, "@libsql/darwin-x64"],
    ["win32", "x64", undefined, "@libsql/win32-x64-msvc"],
  ];
  for (const [os, arch, libc, want] of cases) {
    const got = nativePackage(os, arch, libc);
    assertEquals(got, want, `${os}-${arch}`);
    assert(published.has(got), `${got} is not a libsql target`);
  }
});

Deno.test("plugin: on the installed libsql, onLoad embeds an existing .node file", async () => {
  const hook: {
    filter?: RegExp;
    onLoad?: (args: { path: string }) => Promise<{ contents: string }>;
  } = {};
  const builder: BunPluginBuilder = {
    onLoad(options, callback) {
      hook.filter = options.filter;
      hook.onLoad = callback;
    },
  };
  const embedded = new Set<string>();
  libsqlNativePlugin(nativePackage("linux", "x64"), embedded).setup(builder);
  const { filter, onLoad } = hook;
  assert(filter !== undefined && onLoad !== undefined, "the plugin registers an onLoad hook");
  for (const file of ["index.js", "promise.js"]) {
    const path = join(libsqlDir(), file);
    assert(filter.test(path), `filter matches ${path}`);
    const { contents } = await onLoad({ path });
    assert(!contents.includes("require(`@libsql/"), `${file}: dynamic require left`);
    const m = /require\("([^"]+\.node)"\)/.exec(contents);
    assert(m !== null, `${file}: no static require of a .node file`);
    assert(existsSync(m[1]!), `${file}: ${m[1]} does not exist`);
    assert(embedded.has(m[1]!), `${file}: not reported as embedded`);
  }
  assert(!filter.test(join(libsqlDir(), "auth.js")), "other libsql files are left alone");
  assert(!filter.test("/src/libsql/index.js"), "only files inside node_modules are rewritten");
});
