import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertRejects } from "../assert.ts";
import { openDatabase } from "../../src/store/db.ts";
import { Users } from "../../src/store/users.ts";

const DOMAINS = new Set(["example.test", "example.org"]);

async function withDb(fn: (url: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stoken-users-" });
  try {
    await fn(`file:${join(dir, "stoken.db")}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("users survive re-open; passwords verify case-insensitively on the address", async () => {
  await withDb(async (url) => {
    const db1 = await openDatabase(url);
    const added = await new Users(db1, DOMAINS).add("Alice@Example.TEST", "alice password");
    assertEquals(added, { address: "alice@example.test" });
    db1.close();

    const db2 = await openDatabase(url);
    try {
      const users = new Users(db2, DOMAINS);
      assertEquals(await users.verifyPassword("ALICE@example.Test", "alice password"), {
        address: "alice@example.test",
      });
      assertEquals(await users.verifyPassword("alice@example.test", "wrong password"), null);
      assertEquals(await users.verifyPassword("nobody@example.test", "alice password"), null);
      assertEquals(await users.verifyPassword("not an address", "alice password"), null);
      assertEquals(await users.lookup("ALICE@EXAMPLE.TEST"), { address: "alice@example.test" });
      assertEquals(await users.lookup("nobody@example.test"), null);
      assertEquals(await users.lookup("<broken"), null);
    } finally {
      db2.close();
    }
  });
});

Deno.test("aliases resolve to their user, owns() and removal", async () => {
  await withDb(async (url) => {
    const db = await openDatabase(url);
    try {
      const users = new Users(db, (d) => DOMAINS.has(d));
      // Direct inserts keep the number of (slow, 600k-iteration) hashes in this file low.
      for (const a of ["alice@example.test", "bob@example.test"]) {
        await db.execute({
          sql: "INSERT INTO users (address, password_hash, created_at) VALUES (?, 'x', 1700000000)",
          args: [a],
        });
      }
      await users.addAlias("Postmaster@Example.ORG", "ALICE@example.test");
      const alice = { address: "alice@example.test" };
      const bob = { address: "bob@example.test" };
      assertEquals(await users.lookup("postmaster@example.org"), alice);
      assert(await users.owns(alice, "alice@example.test"));
      assert(await users.owns(alice, "ALICE@EXAMPLE.TEST"));
      assert(await users.owns(alice, "POSTMASTER@example.org"));
      assert(!(await users.owns(bob, "postmaster@example.org")), "bob does not own alice's alias");
      assert(!(await users.owns(alice, "bob@example.test")));
      assert(!(await users.owns(alice, "nobody@example.test")));
      assert(!(await users.owns(alice, "not an address")));
      // An alias cannot log in.
      assertEquals(await users.verifyPassword("postmaster@example.org", "x"), null);

      assertEquals(await users.list(), [
        {
          address: "alice@example.test",
          aliases: ["postmaster@example.org"],
          created: new Date(1700000000 * 1000),
        },
        { address: "bob@example.test", aliases: [], created: new Date(1700000000 * 1000) },
      ]);

      await users.removeAlias("postmaster@EXAMPLE.org");
      assertEquals(await users.lookup("postmaster@example.org"), null);
      assertMatch(
        (await assertRejects(() => users.removeAlias("postmaster@example.org"))).message,
        /^No such alias: "postmaster@example.org"$/,
      );

      // Removing a user removes its aliases.
      await users.addAlias("abuse@example.test", "bob@example.test");
      await users.remove("BOB@example.test");
      assertEquals(await users.lookup("bob@example.test"), null);
      assertEquals(await users.lookup("abuse@example.test"), null);
      const left = await db.execute("SELECT COUNT(*) AS n FROM aliases");
      assertEquals(Number(left.rows[0]?.["n"]), 0);
      assertMatch(
        (await assertRejects(() => users.remove("bob@example.test"))).message,
        /^No such user: "bob@example.test"$/,
      );
    } finally {
      db.close();
    }
  });
});

Deno.test("admin methods refuse bad input with clear messages", async () => {
  await withDb(async (url) => {
    const db = await openDatabase(url);
    try {
      const users = new Users(db, DOMAINS);
      await db.execute(
        "INSERT INTO users (address, password_hash, created_at) VALUES ('alice@example.test', 'x', 1)",
      );
      const msg = async (fn: () => Promise<unknown>) => (await assertRejects(fn)).message;
      assertMatch(
        await msg(() => users.add("alice@EXAMPLE.test", "pw")),
        /^User "alice@example.test" already exists$/,
      );
      assertMatch(
        await msg(() => users.add("no-at-sign", "pw")),
        /^Invalid user address: "no-at-sign"$/,
      );
      assertMatch(
        await msg(() => users.add("carol@elsewhere.test", "pw")),
        /^Domain "elsewhere.test" of "carol@elsewhere.test" is not in the configured domains$/,
      );
      assertMatch(await msg(() => users.add("carol@example.test", "")), /^Empty password$/);
      assertMatch(
        await msg(() => users.addAlias("alias@elsewhere.test", "alice@example.test")),
        /not in the configured domains/,
      );
      assertMatch(
        await msg(() => users.addAlias("x@example.test", "nobody@example.test")),
        /^No such user: "nobody@example.test"$/,
      );
      assertMatch(
        await msg(() => users.addAlias("alice@example.test", "alice@example.test")),
        /is a user, not an alias/,
      );
      await users.addAlias("info@example.test", "alice@example.test");
      assertMatch(
        await msg(() => users.addAlias("INFO@example.test", "alice@example.test")),
        /^Alias "info@example.test" already points to "alice@example.test"$/,
      );
      // A user cannot take an address that is already an alias.
      assertMatch(
        await msg(() => users.add("info@example.test", "password")),
        /is already an alias/,
      );
    } finally {
      db.close();
    }
  });
});

Deno.test("no cache: a second instance on the same database sees changes at once", async () => {
  await withDb(async (url) => {
    const db1 = await openDatabase(url);
    const db2 = await openDatabase(url);
    try {
      const one = new Users(db1, DOMAINS);
      const two = new Users(db2, DOMAINS);
      assertEquals(await two.lookup("dave@example.test"), null);
      await db1.execute(
        "INSERT INTO users (address, password_hash, created_at) VALUES ('dave@example.test', 'x', 1)",
      );
      assertEquals(await two.lookup("dave@example.test"), { address: "dave@example.test" });
      await one.remove("dave@example.test");
      assertEquals(await two.lookup("dave@example.test"), null);
    } finally {
      db1.close();
      db2.close();
    }
  });
});

Deno.test("unknown and invalid usernames still run the KDF once (no user enumeration by timing)", async () => {
  await withDb(async (url) => {
    const db = await openDatabase(url);
    const subtle = crypto.subtle;
    const original = subtle.deriveBits;
    let calls = 0;
    // Count KDF runs instead of measuring time.
    Object.defineProperty(subtle, "deriveBits", {
      configurable: true,
      value: (...args: Parameters<SubtleCrypto["deriveBits"]>) => {
        calls++;
        return original.apply(subtle, args);
      },
    });
    try {
      const users = new Users(db, DOMAINS);
      assertEquals(await users.verifyPassword("nobody@example.test", "password"), null);
      assertEquals(calls, 1, "unknown user");
      assertEquals(await users.verifyPassword("@@@", "password"), null);
      assertEquals(calls, 2, "invalid username");
    } finally {
      delete (subtle as { deriveBits?: unknown }).deriveBits;
      db.close();
    }
    assert(crypto.subtle.deriveBits === original, "restored");
  });
});
