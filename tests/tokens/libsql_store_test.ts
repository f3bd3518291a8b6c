// The token engine over a real libSQL file: what two instances sharing it see, the
// compare-and-set, and that no token can be found in the database files.
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { type Db, openDatabase } from "../../src/store/db.ts";
import { newKeyFile } from "../../src/store/key_file.ts";
import { LibsqlTokenStore } from "../../src/store/tokens.ts";
import { decodeToken } from "../../src/tokens/token_codec.ts";
import { Clock, DAY_MS, engineOver, LOCAL, REMOTE, tokenBytes } from "./helpers.ts";

async function withDb(fn: (db: Db, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stoken-tokens-" });
  const db = await openDatabase(`file:${dir}/stoken.db`);
  try {
    await fn(db, dir);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Every byte of every file in dir (database, WAL, shared memory). */
async function filesBytes(dir: string): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile) out.push(await Deno.readFile(`${dir}/${e.name}`));
  }
  return out;
}

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

Deno.test("libSQL store: issue, verify, refresh, revoke end to end", async () => {
  await withDb(async (db) => {
    const clock = new Clock();
    const engine = await engineOver(newKeyFile(), new LibsqlTokenStore(db), clock);
    const temp = await engine.generateTemp(REMOTE, LOCAL);
    assertEquals(await engine.verify(temp, REMOTE, LOCAL), { ok: true, kind: "temp" });
    const rows = await db.execute("SELECT COUNT(*) AS n FROM token_pairs");
    assertEquals(Number(rows.rows[0]?.["n"]), 0, "temporary tokens are not stored");

    const perm = await engine.afterDelivery(REMOTE, LOCAL, "temp");
    assert(perm !== null);
    assertEquals(await engine.verify(perm, REMOTE, LOCAL), { ok: true, kind: "perm" });
    assertEquals(await engine.getOrCreatePerm(REMOTE, LOCAL), { token: perm, created: false });
    assertEquals(
      (await engine.list(LOCAL))[0]?.lastUsed,
      new Date(Math.floor(clock.t / 1000) * 1000),
    );

    clock.advance(300 * DAY_MS);
    const fresh = await engine.afterDelivery(REMOTE, LOCAL, "perm", perm);
    assert(fresh !== null && fresh !== perm);
    assertEquals(await engine.verify(perm, REMOTE, LOCAL), { ok: true, kind: "perm" }, "in grace");
    assertEquals(await engine.verify(fresh, REMOTE, LOCAL), { ok: true, kind: "perm" });

    await engine.revoke(REMOTE, LOCAL);
    for (const t of [temp, perm, fresh]) {
      assertEquals(await engine.verify(t, REMOTE, LOCAL), { ok: false });
    }
    const again = await engine.generateTemp(REMOTE, LOCAL);
    assertEquals(await engine.verify(again, REMOTE, LOCAL), { ok: true, kind: "temp" });
    assertEquals(await engine.list(), []);
  });
});

Deno.test("libSQL store: two instances sharing the database see each other's changes", async () => {
  await withDb(async (db, dir) => {
    const db2 = await openDatabase(`file:${dir}/stoken.db`);
    try {
      const kf = newKeyFile();
      const clock = new Clock();
      const a = await engineOver(kf, new LibsqlTokenStore(db), clock);
      const b = await engineOver(kf, new LibsqlTokenStore(db2), clock);
      const perm = await a.getOrCreatePerm(REMOTE, LOCAL);
      assertEquals(await b.getOrCreatePerm(REMOTE, LOCAL), { token: perm.token, created: false });
      const temp = await b.generateTemp(REMOTE, LOCAL);
      assertEquals(await a.verify(temp, REMOTE, LOCAL), { ok: true, kind: "temp" });
      await b.revoke(REMOTE, LOCAL);
      assertEquals(await a.verify(temp, REMOTE, LOCAL), { ok: false });
      assertEquals(await a.verify(perm.token, REMOTE, LOCAL), { ok: false });

      // Racing creators settle on one token through the compare-and-set.
      const [ra, rb] = await Promise.all([
        a.getOrCreatePerm(REMOTE, "carol@local.example"),
        b.getOrCreatePerm(REMOTE, "carol@local.example"),
      ]);
      assertEquals(ra.token, rb.token);
    } finally {
      db2.close();
    }
  });
});

Deno.test("libSQL store: replacePerm is a compare-and-set on generation and current nonce", async () => {
  await withDb(async (db) => {
    const store = new LibsqlTokenStore(db);
    const rec = (n: number) => ({
      keyId: "k00000001",
      nonce: new Uint8Array([n, n, n, n, n, n]),
      issuedS: 100 + n,
      expiresS: 1000 + n,
    });
    assertEquals(await store.get(REMOTE, LOCAL), null);
    assert(
      await store.replacePerm(REMOTE, LOCAL, { generation: 0, currentNonce: null }, rec(1), null),
    );
    assert(
      !(await store.replacePerm(
        REMOTE,
        LOCAL,
        { generation: 0, currentNonce: null },
        rec(2),
        null,
      )),
      "stale: there is a current token now",
    );
    assert(
      !(await store.replacePerm(
        REMOTE,
        LOCAL,
        { generation: 1, currentNonce: rec(1).nonce },
        rec(2),
        null,
      )),
      "stale generation",
    );
    const prev = { ...rec(1), graceUntilS: 555 };
    assert(
      await store.replacePerm(
        REMOTE,
        LOCAL,
        { generation: 0, currentNonce: rec(1).nonce },
        rec(2),
        prev,
      ),
    );
    assertEquals(await store.get(REMOTE, LOCAL), {
      generation: 0,
      current: { ...rec(2), nonce: new Uint8Array([2, 2, 2, 2, 2, 2]) },
      previous: prev,
      lastUsedS: null,
    });
    await store.touch(REMOTE, LOCAL, 777);
    await store.revoke(REMOTE, LOCAL);
    assertEquals(await store.get(REMOTE, LOCAL), {
      generation: 1,
      current: null,
      previous: null,
      lastUsedS: 777,
    });
    await store.revoke("x@y.example", LOCAL);
    assertEquals((await store.get("x@y.example", LOCAL))?.generation, 1, "revoke creates the row");
    await store.touch("nobody@y.example", LOCAL, 1);
    assertEquals(await store.get("nobody@y.example", LOCAL), null, "touch creates no row");
  });
});

Deno.test("libSQL store: a pair reads back exactly, and a damaged row is an error", async () => {
  await withDb(async (db) => {
    const store = new LibsqlTokenStore(db);
    const current = {
      keyId: "k0000abcd",
      nonce: new Uint8Array([0, 255, 16, 1, 128, 9]),
      issuedS: 0,
      expiresS: 0xffff_ffff,
    };
    const previous = {
      keyId: "k00000001",
      nonce: new Uint8Array([255, 0, 0, 0, 0, 255]),
      issuedS: 7,
      expiresS: 8,
      graceUntilS: 9,
    };
    const expect = { generation: 0, currentNonce: null };
    assert(await store.replacePerm(REMOTE, LOCAL, expect, current, previous));
    await store.touch(REMOTE, LOCAL, 1_700_000_000);
    const want = { generation: 0, current, previous, lastUsedS: 1_700_000_000 };
    assertEquals(await store.get(REMOTE, LOCAL), want);
    assertEquals(await store.list(LOCAL), [{ remote: REMOTE, local: LOCAL, state: want }]);
    const damage = [
      "cur_nonce = 'AABBCCDDEEFF'",
      "prev_nonce = 12",
      "generation = 1.5",
      "cur_expires = X'00'",
      "prev_key_id = X'6b'",
    ];
    for (const [i, set] of damage.entries()) {
      const local = `damaged${i}@local.example`;
      assert(await store.replacePerm(REMOTE, local, expect, current, previous));
      await db.execute({ sql: `UPDATE token_pairs SET ${set} WHERE local = ?`, args: [local] });
      await assertRejects(() => store.get(REMOTE, local), set);
    }
    assertEquals(await store.get(REMOTE, LOCAL), want, "the other rows are unharmed");
  });
});

Deno.test("no issued token, nor its MACs, appears in the database files", async () => {
  await withDb(async (db, dir) => {
    const clock = new Clock();
    const engine = await engineOver(newKeyFile(), new LibsqlTokenStore(db), clock);
    const tokens: string[] = [];
    for (let i = 0; i < 5; i++) {
      const remote = `r${i}@remote.example`;
      tokens.push(await engine.generateTemp(remote, LOCAL));
      tokens.push((await engine.getOrCreatePerm(remote, LOCAL)).token);
      const p = await engine.afterDelivery(remote, LOCAL, "temp");
      if (p !== null) tokens.push(p);
    }
    clock.advance(300 * DAY_MS);
    const refreshed = await engine.afterDelivery("r0@remote.example", LOCAL, "perm", tokens[1]);
    assert(refreshed !== null);
    tokens.push(refreshed);
    const files = await filesBytes(dir);
    assert(files.length > 0);
    const enc = new TextEncoder();
    for (const t of tokens) {
      const d = decodeToken(t);
      assert(d !== null);
      const needles = [enc.encode(t), tokenBytes(t), d.macPair, d.macLocal];
      for (const f of files) {
        for (const n of needles) assert(!contains(f, n), "a token (or its MAC) is in the database");
      }
    }
    // The needle search itself works: the metadata that is stored is found.
    const nonce = decodeToken(tokens[1]!)!.fields.nonce;
    assert(files.some((f) => contains(f, nonce)));
  });
});
