// `make binary-deno` (scripts/build-binary-deno): where deno compile can fetch its runtime the
// result runs; where it cannot (no route to dl.deno.land, as on this project's machines) the
// script fails at once with one line that says why, instead of Deno's multi-line error.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertEquals, assertMatch } from "../assert.ts";
import { exec, REPO_ROOT } from "./_build.ts";

Deno.test({
  name: "binary-deno: deno compile either builds a working binary or says why in one line",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await mkdtemp(join(tmpdir(), "stoken-deno-compile-"));
    try {
      const out = join(dir, "stoken-deno");
      const r = await exec(join(REPO_ROOT, "scripts", "build-binary-deno"), [out], {
        env: { DENO: Deno.execPath(), BUILD_TIMEOUT_S: "240" },
        timeoutMs: 300_000,
      });
      if (r.code === 0) {
        const help = await exec(out, ["--help"], { cwd: dir });
        assertEquals(help.code, 0, `the deno-compiled binary does not run:\n${help.stderr}`);
        assertMatch(help.stdout, /^usage: stoken /m);
        return;
      }
      assertEquals(r.code, 1, `exit status; stderr:\n${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assertEquals(lines.length, 1, `one line of explanation, got:\n${r.stderr}`);
      assertMatch(lines[0]!, /^build-binary-deno: /);
      // This project's machines cannot reach dl.deno.land: the reason must name the runtime.
      assertMatch(lines[0]!, /denort|did not finish/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
});
