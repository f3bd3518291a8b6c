// The unit tests under Bun (issue 5: "everything runs the same under Bun"): bun_runner.ts runs
// every test file under tests/ whose Deno APIs it can stand in for (Deno.test and file-system
// calls), which covers the layers above src/net: protocol, session, tokens, store (libSQL
// through @libsql/client on Bun), delivery. Files that need Deno.Command, Deno.listen and the
// like are listed as skipped; src/net itself on Bun is covered by binary_test.ts and
// bun_starttls_test.ts.
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { BINARY_DIR, exec, findBun, REPO_ROOT } from "./_build.ts";

const bun = await findBun();

interface Summary {
  passed: number;
  failed: number;
  ignored: number;
  files: string[];
  skipped: Record<string, string[]>;
}

Deno.test({
  name: "Bun: the unit tests that need no Deno-only API pass under Bun",
  ignore: bun === null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const r = await exec(bun!, [join(BINARY_DIR, "bun_runner.ts"), "tests"], {
      cwd: REPO_ROOT,
      timeoutMs: 240_000,
    });
    const lines = r.stdout.trim().split("\n");
    let summary: Summary;
    try {
      summary = JSON.parse(lines.at(-1)!) as Summary;
    } catch {
      throw new Error(`bun_runner.ts printed no summary (exit ${r.code}):\n${r.stdout}${r.stderr}`);
    }
    const failures = lines.filter((l) => l.startsWith("FAILED") || l.startsWith("  "));
    assertEquals(summary.failed, 0, `tests failing under Bun:\n${failures.join("\n")}`);
    assertEquals(r.code, 0, r.stderr);
    // The layers that must be runtime-neutral really ran (a broken selection would skip them).
    for (
      const file of [
        "tests/protocol/line_reader_test.ts",
        "tests/session/token_test.ts",
        "tests/tokens/engine_test.ts",
        "tests/store/db_test.ts",
        "tests/delivery/maildir_test.ts",
      ]
    ) {
      assert(summary.files.includes(file), `${file} did not run under Bun`);
    }
    assert(summary.passed >= 100, `only ${summary.passed} tests ran under Bun`);
    const skipped = Object.entries(summary.skipped).map(([f, apis]) => `${f} (${apis.join(", ")})`);
    console.log(
      `under Bun: ${summary.passed} passed in ${summary.files.length} files; ` +
        `skipped (need Deno APIs): ${skipped.join("; ")}`,
    );
  },
});
