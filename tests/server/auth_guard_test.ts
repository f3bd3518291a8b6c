import { assert, assertEquals } from "../assert.ts";
import { AuthGuardByIp } from "../../src/server/auth_guard.ts";

function guard(opts: { limit?: number; windowS?: number; maxEntries?: number } = {}) {
  let t = 1_000_000;
  const g = new AuthGuardByIp(
    { limit: opts.limit ?? 3, windowS: opts.windowS ?? 60, delayMs: 250, ...opts },
    () => t,
  );
  return { g, advance: (ms: number) => (t += ms) };
}

Deno.test("auth guard: blocks at the limit, per address", () => {
  const { g } = guard();
  assertEquals(g.failureDelayMs, 250);
  assert(!g.blocked("192.0.2.1"));
  assertEquals(g.fail("192.0.2.1"), false);
  assertEquals(g.fail("192.0.2.1"), false);
  assert(!g.blocked("192.0.2.1"));
  assertEquals(g.fail("192.0.2.1"), true, "the third failure blocks");
  assert(g.blocked("192.0.2.1"));
  assert(!g.blocked("192.0.2.2"), "other addresses are not affected");
});

Deno.test("auth guard: the block ends with the window", () => {
  const { g, advance } = guard({ windowS: 60 });
  for (let i = 0; i < 3; i++) g.fail("a");
  advance(59_999);
  assert(g.blocked("a"));
  advance(1);
  assert(!g.blocked("a"));
  assertEquals(g.fail("a"), false, "a new window starts from zero");
});

Deno.test("auth guard: expired entries are pruned", () => {
  const { g, advance } = guard({ windowS: 10 });
  for (let i = 0; i < 50; i++) g.fail(`198.51.100.${i}`);
  assertEquals(g.size, 50);
  advance(10_000);
  g.fail("203.0.113.1");
  assertEquals(g.size, 1);
});

Deno.test("auth guard: the map is capped, oldest windows evicted first", () => {
  const { g, advance } = guard({ maxEntries: 3 });
  for (const ip of ["a", "b", "c"]) {
    g.fail(ip);
    advance(1);
  }
  for (let i = 0; i < 2; i++) g.fail("a");
  assert(g.blocked("a"));
  g.fail("d");
  assertEquals(g.size, 3);
  // "a" had the oldest window, so it went first; "b" and "c" are still counted.
  assert(!g.blocked("a"));
  g.fail("b");
  assertEquals(g.fail("b"), true, "b kept its earlier failure");
});

Deno.test("auth guard: limit 0 never blocks", () => {
  const { g } = guard({ limit: 0 });
  for (let i = 0; i < 10; i++) assertEquals(g.fail("a"), false);
  assert(!g.blocked("a"));
});
