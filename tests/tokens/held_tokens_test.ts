// Tokens held for other servers: encrypted at rest, bound to their pair, and the rule that
// a harvested header token never replaces one that has worked.
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { type Db, openDatabase } from "../../src/store/db.ts";
import { HeldTokens } from "../../src/store/held_tokens.ts";
import { newKeyFile } from "../../src/store/key_file.ts";
import { Clock, DAY_MS } from "./helpers.ts";

const THEIRS = "bob@remote.example";
const OURS = "alice@local.example";
const TOKEN_A = "AAAAaaaa1111____----bbbbCCCC";
const TOKEN_B = "zzzzYYYY2222-_-_-_-_xxxxWWWWvvvv";
const TOKEN_C = "Q".repeat(20) + "r".repeat(40);

async function withHeld(
  fn: (held: HeldTokens, db: Db, dir: string, clock: Clock) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stoken-held-" });
  const db = await openDatabase(`file:${dir}/stoken.db`);
  const clock = new Clock();
  try {
    await fn(new HeldTokens(db, newKeyFile(), clock.now), db, dir, clock);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("held tokens: put, get (case-insensitive pair), markSuccess, drop", async () => {
  await withHeld(async (held, _db, _dir, clock) => {
    assertEquals(await held.get(THEIRS, OURS), null);
    const expires = new Date(clock.t + 30 * DAY_MS);
    assert(
      await held.put("Bob@Remote.Example", OURS, TOKEN_A, {
        source: "mystoken",
        expires,
        overwriteWorking: true,
      }),
    );
    assertEquals(await held.get(THEIRS, "ALICE@local.example"), {
      token: TOKEN_A,
      source: "mystoken",
      expires,
      lastSuccess: null,
    });
    assertEquals(await held.get(OURS, THEIRS), null, "the pair is ordered");
    clock.advance(5000);
    await held.markSuccess(THEIRS, OURS);
    assertEquals((await held.get(THEIRS, OURS))?.lastSuccess, new Date(clock.t));
    await held.drop(THEIRS, OURS);
    assertEquals(await held.get(THEIRS, OURS), null);
  });
});

Deno.test("held tokens are encrypted at rest", async () => {
  await withHeld(async (held, db, dir) => {
    await held.put(THEIRS, OURS, TOKEN_A, { source: "header", overwriteWorking: false });
    await held.put(THEIRS, "carol@local.example", TOKEN_B, {
      source: "reply",
      overwriteWorking: true,
    });
    const rs = await db.execute("SELECT * FROM held_tokens");
    assertEquals(rs.rows.length, 2);
    const enc = new TextEncoder();
    for (const row of rs.rows) {
      for (const v of Object.values(row)) {
        const bytes = v instanceof ArrayBuffer ? new Uint8Array(v) : enc.encode(String(v));
        const text = new TextDecoder("latin1").decode(bytes);
        assert(
          !text.includes(TOKEN_A) && !text.includes(TOKEN_B),
          "a held token is stored in the clear",
        );
      }
    }
    let pairFound = false;
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile) continue;
      const text = new TextDecoder("latin1").decode(await Deno.readFile(`${dir}/${e.name}`));
      assert(!text.includes(TOKEN_A) && !text.includes(TOKEN_B), `a held token is in ${e.name}`);
      pairFound ||= text.includes(THEIRS);
    }
    // The search works: the pair, which is stored in the clear, is found.
    assert(pairFound);
  });
});

Deno.test("a header token never replaces one that has worked; an authoritative one does", async () => {
  await withHeld(async (held) => {
    // Nothing has worked yet: a newer header token replaces the older one.
    assert(await held.put(THEIRS, OURS, TOKEN_A, { source: "header", overwriteWorking: false }));
    assert(await held.put(THEIRS, OURS, TOKEN_B, { source: "header", overwriteWorking: false }));
    assertEquals((await held.get(THEIRS, OURS))?.token, TOKEN_B);
    await held.markSuccess(THEIRS, OURS);
    // B has worked: a header token is ignored.
    assertEquals(
      await held.put(THEIRS, OURS, TOKEN_A, { source: "header", overwriteWorking: false }),
      false,
    );
    const kept = await held.get(THEIRS, OURS);
    assertEquals(kept?.token, TOKEN_B);
    assert(kept?.lastSuccess !== null);
    // A 2.1.13 reply (or MYSTOKEN) is authoritative: it replaces B, which has not worked yet.
    assert(await held.put(THEIRS, OURS, TOKEN_C, { source: "reply", overwriteWorking: true }));
    assertEquals(await held.get(THEIRS, OURS), {
      token: TOKEN_C,
      source: "reply",
      expires: null,
      lastSuccess: null,
    });
  });
});

Deno.test("putting the same token again keeps its success record", async () => {
  await withHeld(async (held, _db, _dir, clock) => {
    await held.put(THEIRS, OURS, TOKEN_A, { source: "mystoken", overwriteWorking: true });
    await held.markSuccess(THEIRS, OURS);
    const expires = new Date(clock.t + DAY_MS);
    assert(
      await held.put(THEIRS, OURS, TOKEN_A, {
        source: "mystoken",
        expires,
        overwriteWorking: true,
      }),
    );
    const got = await held.get(THEIRS, OURS);
    assertEquals(got?.lastSuccess, new Date(clock.t));
    assertEquals(got?.expires, expires);
  });
});

Deno.test("an expired held token is not returned", async () => {
  await withHeld(async (held, _db, _dir, clock) => {
    await held.put(THEIRS, OURS, TOKEN_A, {
      source: "reply",
      expires: new Date(clock.t + 60_000),
      overwriteWorking: true,
    });
    clock.advance(59_000);
    assertEquals((await held.get(THEIRS, OURS))?.token, TOKEN_A);
    clock.advance(1_000);
    assertEquals(await held.get(THEIRS, OURS), null);
  });
});

Deno.test("a ciphertext moved to another pair, or read with another key, does not decrypt", async () => {
  await withHeld(async (held, db, dir, clock) => {
    await held.put(THEIRS, OURS, TOKEN_A, { source: "mystoken", overwriteWorking: true });
    await db.execute({ sql: "UPDATE held_tokens SET local = ?", args: ["mallory@local.example"] });
    assertEquals(await held.get(THEIRS, "mallory@local.example"), null, "AAD binds the pair");

    await held.put(THEIRS, OURS, TOKEN_A, { source: "mystoken", overwriteWorking: true });
    await held.markSuccess(THEIRS, OURS);
    const db2 = await openDatabase(`file:${dir}/stoken.db`);
    try {
      const otherKey = new HeldTokens(db2, newKeyFile(), clock.now);
      assertEquals(await otherKey.get(THEIRS, OURS), null);
      // A row that no longer decrypts is useless: even a header token replaces it.
      assert(
        await otherKey.put(THEIRS, OURS, TOKEN_B, { source: "header", overwriteWorking: false }),
      );
      assertEquals((await otherKey.get(THEIRS, OURS))?.token, TOKEN_B);
    } finally {
      db2.close();
    }
  });
});

Deno.test("held tokens: invalid token strings are refused without echoing them", async () => {
  await withHeld(async (held) => {
    for (
      const bad of [
        "short",
        "has space in it and is long enough",
        "x".repeat(65),
        "a+b/c=".repeat(5),
      ]
    ) {
      const e = await assertRejects(() =>
        held.put(THEIRS, OURS, bad, { source: "header", overwriteWorking: false })
      );
      assert(!e.message.includes(bad));
    }
    assertEquals(await held.get(THEIRS, OURS), null);
  });
});
