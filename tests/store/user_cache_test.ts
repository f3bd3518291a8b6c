import { CachedUsers } from "../../src/store/user_cache.ts";
import type { LocalUser, UserDirectory } from "../../src/session/deps.ts";
import { assertEquals } from "../assert.ts";

function directory() {
  const users = new Map<string, string>([["alice@example.test", "alice@example.test"]]);
  let queries = 0;
  const inner: UserDirectory = {
    lookup: (a) => {
      queries++;
      const u = users.get(a.toLowerCase());
      return Promise.resolve(u ? { address: u } : null);
    },
    verifyPassword: () => Promise.resolve(null),
    owns: () => Promise.reject(new Error("not used")),
  };
  return { users, inner, queries: () => queries };
}

Deno.test("lookups are cached for the TTL (positive and negative), then asked again", async () => {
  const d = directory();
  let now = 0;
  const c = new CachedUsers(d.inner, 2000, () => now);
  assertEquals(await c.lookup("alice@example.test"), { address: "alice@example.test" });
  assertEquals(await c.lookup("ALICE@example.test"), { address: "alice@example.test" });
  assertEquals(await c.lookup("bob@example.test"), null);
  assertEquals(d.queries(), 2);
  d.users.set("bob@example.test", "bob@example.test");
  d.users.delete("alice@example.test");
  now = 1999;
  assertEquals(await c.lookup("bob@example.test"), null, "still the cached answer");
  now = 2000;
  assertEquals(await c.lookup("bob@example.test"), { address: "bob@example.test" } as LocalUser);
  assertEquals(await c.lookup("alice@example.test"), null, "a removed user is gone after the TTL");
  assertEquals(await c.owns({ address: "bob@example.test" }, "Bob@example.test"), true);
  assertEquals(d.queries(), 4);
});
