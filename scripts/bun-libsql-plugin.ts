// A Bun build plugin that embeds libSQL's native module in a `bun build --compile` binary.
//
// @libsql/client opens local databases through the `libsql` package, whose index.js (and
// promise.js) picks the native module at run time:
//     return require(`@libsql/${target}`);
// A template-string require cannot be followed by the bundler, so a plain compile leaves it
// as a run-time lookup, and the binary fails outside the source tree with
// "Cannot find module '@libsql/linux-x64-gnu'". This plugin rewrites that one require into a
// static require of the platform's `.node` file, which Bun then embeds in the executable
// (and loads from its embedded file system at run time).
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

/** The parts of Bun's plugin API used here (so this file needs no Bun type package). */
export interface BunPluginBuilder {
  onLoad(
    options: { filter: RegExp },
    callback: (args: { path: string }) => Promise<{ contents: string; loader: "js" }>,
  ): void;
}

export interface BunPlugin {
  name: string;
  setup(build: BunPluginBuilder): void;
}

/** The dynamic require in libsql's requireNative(), exactly as libsql 0.5.x writes it. */
const DYNAMIC_REQUIRE = "require(`@libsql/${target}`)";

/** libsql's entry files that contain requireNative(). */
const LIBSQL_ENTRY = /[\\/]node_modules[\\/]libsql[\\/](index|promise)\.js$/;

/**
 * The npm package holding libSQL's native module for a Bun compile target. Bun's Linux
 * targets are glibc builds unless the target says musl; libsql names its packages
 * `<os>-<arch>[-gnu|-musl]`.
 */
export function nativePackage(os: string, arch: string, libc: "gnu" | "musl" = "gnu"): string {
  const osName = os === "win32" ? "win32" : os;
  if (osName === "linux") return `@libsql/linux-${arch}-${libc}`;
  if (osName === "win32") return `@libsql/win32-${arch}-msvc`;
  return `@libsql/${osName}-${arch}`;
}

/** Rewrite libsql's source so it loads `nodeFile` statically; fails if the code has changed. */
export function rewriteNativeRequire(source: string, nodeFile: string, file: string): string {
  const count = source.split(DYNAMIC_REQUIRE).length - 1;
  if (count !== 1) {
    throw new Error(
      `Expected one "${DYNAMIC_REQUIRE}" in "${file}", found ${count}: ` +
        "the libsql package changed; update scripts/bun-libsql-plugin.ts",
    );
  }
  return source.replace(DYNAMIC_REQUIRE, `require(${JSON.stringify(nodeFile)})`);
}

/**
 * The plugin. `pkg` is the native package to embed (see nativePackage); it is resolved from
 * the libsql package being bundled, so the `.node` file is the one its version expects.
 * `embedded` collects the `.node` files used, for the build's report.
 */
export function libsqlNativePlugin(pkg: string, embedded: Set<string> = new Set()): BunPlugin {
  return {
    name: "libsql-static-native",
    setup(build) {
      build.onLoad({ filter: LIBSQL_ENTRY }, async ({ path }) => {
        let nodeFile: string;
        try {
          nodeFile = createRequire(path).resolve(pkg);
        } catch (e) {
          throw new Error(
            `Cannot find the native module "${pkg}" for "${path}": ${(e as Error).message}`,
          );
        }
        if (!nodeFile.endsWith(".node")) {
          throw new Error(`Native module "${pkg}" resolved to "${nodeFile}", not a .node file`);
        }
        embedded.add(nodeFile);
        const source = await readFile(path, "utf8");
        return { contents: rewriteNativeRequire(source, nodeFile, path), loader: "js" };
      });
    },
  };
}
