import { assert, assertEquals, assertNotEquals, assertRejects } from "../assert.ts";
import { newKeyFile, rotateKeys } from "../../src/store/key_file.ts";
import { DEFAULT_POLICY, LAST_USED_GRANULARITY_S, TokenEngine } from "../../src/tokens/engine.ts";
import { decodeToken, TOKEN_BYTES } from "../../src/tokens/token_codec.ts";
import { MemoryTokenStore } from "./memory_store.ts";
import {
  bytesToToken,
  Clock,
  DAY_MS,
  engineOver,
  flipBit,
  LOCAL,
  REMOTE,
  setup,
  tokenBytes,
} from "./helpers.ts";

const YEAR_MS = 365 * DAY_MS;

Deno.test("temp token verifies for its pair, and passes AUTH STOKEN for its local address", async () => {
  const { engine } = await setup();
  const t = await engine.generateTemp(REMOTE, LOCAL);
  assertEquals(t.length, 60);
  assertEquals(await engine.verify(t, REMOTE, LOCAL), { ok: true, kind: "temp" });
  assert(engine.checkLocal(t, LOCAL));
});

Deno.test("a token does not verify for another pair", async () => {
  const { engine } = await setup();
  for (
    const t of [
      await engine.generateTemp(REMOTE, LOCAL),
      (await engine.getOrCreatePerm(REMOTE, LOCAL)).token,
    ]
  ) {
    assertEquals(await engine.verify(t, LOCAL, REMOTE), { ok: false }, "swapped");
    assertEquals(
      await engine.verify(t, REMOTE, "carol@local.example"),
      { ok: false },
      "other local",
    );
    assertEquals(
      await engine.verify(t, "mallory@remote.example", LOCAL),
      { ok: false },
      "other remote",
    );
    assertEquals(await engine.verify(t, REMOTE, "alice@local.example.org"), { ok: false });
    // Length prefixes: moving the boundary between the two addresses changes the MAC.
    assertEquals(await engine.verify(t, REMOTE + "a", LOCAL.slice(1)), { ok: false }, "boundary");
    assert(!engine.checkLocal(t, "carol@local.example"));
    assert(!engine.checkLocal(t, REMOTE), "the remote address is not the local one");
  }
});

Deno.test("addresses are matched case-insensitively", async () => {
  const { engine } = await setup();
  const t = await engine.generateTemp("Bob@Remote.EXAMPLE", "ALICE@local.example");
  assertEquals(await engine.verify(t, REMOTE, LOCAL), { ok: true, kind: "temp" });
  assertEquals(await engine.verify(t, "BOB@REMOTE.EXAMPLE", "Alice@Local.Example"), {
    ok: true,
    kind: "temp",
  });
  assert(engine.checkLocal(t, "Alice@LOCAL.example"));
  const p = await engine.getOrCreatePerm(REMOTE, LOCAL);
  assertEquals(await engine.getOrCreatePerm("BOB@remote.example", "alice@LOCAL.EXAMPLE"), {
    token: p.token,
    created: false,
  });
});

Deno.test("tampering with any bit of any byte fails", async () => {
  const { engine } = await setup();
  const temp = await engine.generateTemp(REMOTE, LOCAL);
  const perm = (await engine.getOrCreatePerm(REMOTE, LOCAL)).token;
  for (const t of [temp, perm]) {
    for (let i = 0; i < TOKEN_BYTES; i++) {
      for (const bit of [0, 7]) {
        const bad = flipBit(t, i, bit);
        assertEquals(
          await engine.verify(bad, REMOTE, LOCAL),
          { ok: false },
          `byte ${i} bit ${bit}`,
        );
        // mac_local covers bytes 0..28 (header and itself), not mac_pair.
        if (i < 29) assert(!engine.checkLocal(bad, LOCAL), `checkLocal byte ${i} bit ${bit}`);
      }
    }
  }
});

Deno.test("a temp token cannot pass as permanent (the type byte is covered by the MACs)", async () => {
  const { engine } = await setup();
  const t = await engine.generateTemp(REMOTE, LOCAL);
  const b = tokenBytes(t);
  b[0] = 0x50; // 'P'
  assertEquals(await engine.verify(bytesToToken(b), REMOTE, LOCAL), { ok: false });
});

Deno.test("malformed token strings fail without throwing", async () => {
  const { engine } = await setup();
  const t = await engine.generateTemp(REMOTE, LOCAL);
  const bad = [
    "",
    t.slice(0, -1),
    t + "A",
    t + "=",
    t.slice(0, -1) + "=",
    "+" + t.slice(1),
    "/" + t.slice(1),
    t.slice(0, 20),
    t.toUpperCase() === t ? t.toLowerCase() : t.toUpperCase(),
    "x".repeat(60),
  ];
  for (const s of bad) {
    assertEquals(await engine.verify(s, REMOTE, LOCAL), { ok: false }, JSON.stringify(s));
    assert(!engine.checkLocal(s, LOCAL), JSON.stringify(s));
  }
});

Deno.test("temp token expires after the configured lifetime", async () => {
  const { engine, clock } = await setup({ policy: { ...DEFAULT_POLICY, tempLifetimeS: 3600 } });
  const t = await engine.generateTemp(REMOTE, LOCAL);
  clock.advance(3600 * 1000 - 1);
  assertEquals(await engine.verify(t, REMOTE, LOCAL), { ok: true, kind: "temp" });
  assert(engine.checkLocal(t, LOCAL));
  clock.advance(1);
  assertEquals(await engine.verify(t, REMOTE, LOCAL), { ok: false });
  assert(!engine.checkLocal(t, LOCAL));
});

Deno.test("default temp lifetime is 7 days", async () => {
  const { engine, clock } = await setup();
  const t = await engine.generateTemp(REMOTE, LOCAL);
  clock.advance(7 * DAY_MS - 1000);
  assert(engine.checkLocal(t, LOCAL));
  clock.advance(1000);
  assert(!engine.checkLocal(t, LOCAL));
});

Deno.test("temp tokens are not stored, always fresh, and survive an engine restart", async () => {
  const { engine, store, keyFile, clock } = await setup();
  const a = await engine.generateTemp(REMOTE, LOCAL);
  const b = await engine.generateTemp(REMOTE, LOCAL);
  assertNotEquals(a, b);
  assertEquals(store.writes, 0);
  assertEquals(store.rows.size, 0);
  const restarted = await engineOver(structuredClone(keyFile), store, clock);
  assertEquals(await restarted.verify(a, REMOTE, LOCAL), { ok: true, kind: "temp" });
  assertEquals(await restarted.verify(b, REMOTE, LOCAL), { ok: true, kind: "temp" });
});

Deno.test("getOrCreatePerm returns the existing token unchanged", async () => {
  const { engine, clock } = await setup();
  const first = await engine.getOrCreatePerm(REMOTE, LOCAL);
  assert(first.created);
  assertEquals(await engine.verify(first.token, REMOTE, LOCAL), { ok: true, kind: "perm" });
  assert(engine.checkLocal(first.token, LOCAL));
  // Even when it is due for refresh: GENSTOKEN PERM does not refresh (PROTOCOL §4).
  clock.advance(300 * DAY_MS);
  assertEquals(await engine.getOrCreatePerm(REMOTE, LOCAL), { token: first.token, created: false });
  const other = await engine.getOrCreatePerm(REMOTE, "carol@local.example");
  assert(other.created);
  assertNotEquals(other.token, first.token);
});

Deno.test("permanent token expires after a year; then a new one is created", async () => {
  const { engine, clock } = await setup();
  const p = await engine.getOrCreatePerm(REMOTE, LOCAL);
  clock.advance(YEAR_MS - 1);
  assertEquals(await engine.verify(p.token, REMOTE, LOCAL), { ok: true, kind: "perm" });
  clock.advance(1);
  assertEquals(await engine.verify(p.token, REMOTE, LOCAL), { ok: false });
  assert(!engine.checkLocal(p.token, LOCAL));
  const q = await engine.getOrCreatePerm(REMOTE, LOCAL);
  assert(q.created);
  assertEquals(await engine.verify(q.token, REMOTE, LOCAL), { ok: true, kind: "perm" });
});

Deno.test("a valid-looking perm token that is not the pair's current one fails", async () => {
  // Same key, same pair, right generation, but another nonce: not issued (or replaced).
  const { engine, store } = await setup();
  const p = await engine.getOrCreatePerm(REMOTE, LOCAL);
  await store.revoke(REMOTE, LOCAL);
  const q = await engine.getOrCreatePerm(REMOTE, LOCAL);
  assertEquals(await engine.verify(q.token, REMOTE, LOCAL), { ok: true, kind: "perm" });
  assertEquals(await engine.verify(p.token, REMOTE, LOCAL), { ok: false });
  // Drop the current metadata behind the engine's back: the token no longer verifies.
  const row = [...store.rows.values()][0]!;
  row.state = { ...row.state, current: null };
  assertEquals(await engine.verify(q.token, REMOTE, LOCAL), { ok: false });
});

Deno.test("revocation kills temp and perm tokens; tokens issued right after work", async () => {
  const { engine } = await setup();
  const temp = await engine.generateTemp(REMOTE, LOCAL);
  const perm = (await engine.getOrCreatePerm(REMOTE, LOCAL)).token;
  const otherPair = await engine.generateTemp(REMOTE, "carol@local.example");
  await engine.revoke("BOB@remote.example", LOCAL);
  assertEquals(await engine.verify(temp, REMOTE, LOCAL), { ok: false });
  assertEquals(await engine.verify(perm, REMOTE, LOCAL), { ok: false });
  assertEquals(await engine.verify(otherPair, REMOTE, "carol@local.example"), {
    ok: true,
    kind: "temp",
  });
  // Same clock instant: the generation, not the time, separates old from new.
  const temp2 = await engine.generateTemp(REMOTE, LOCAL);
  const perm2 = await engine.getOrCreatePerm(REMOTE, LOCAL);
  assert(perm2.created);
  assertNotEquals(perm2.token, perm);
  assertEquals(await engine.verify(temp2, REMOTE, LOCAL), { ok: true, kind: "temp" });
  assertEquals(await engine.verify(perm2.token, REMOTE, LOCAL), { ok: true, kind: "perm" });
  assertEquals(await engine.verify(temp, REMOTE, LOCAL), { ok: false });
  // Revoking a pair with no tokens is fine too (REVSTOKEN succeeds, PROTOCOL §4).
  await engine.revoke("nobody@remote.example", LOCAL);
});

Deno.test("afterDelivery with a temp token issues a permanent token (the current one if any)", async () => {
  const { engine, clock } = await setup();
  const temp = await engine.generateTemp(REMOTE, LOCAL);
  assertEquals((await engine.verify(temp, REMOTE, LOCAL)).ok, true);
  const p = await engine.afterDelivery(REMOTE, LOCAL, "temp");
  assert(p !== null);
  assertEquals(await engine.verify(p, REMOTE, LOCAL), { ok: true, kind: "perm" });
  assertEquals((await engine.list(LOCAL))[0]?.lastUsed, new Date(clock.t));
  // A second Remote Client of the same remote user, with its own temp token, gets the
  // same permanent token: the first one's keeps working.
  clock.advance(LAST_USED_GRANULARITY_S * 1000);
  assertEquals(await engine.afterDelivery(REMOTE, LOCAL, "temp"), p);
  assertEquals(await engine.getOrCreatePerm(REMOTE, LOCAL), { token: p, created: false });
  assertEquals((await engine.list(LOCAL))[0]?.lastUsed, new Date(clock.t));
});

Deno.test("last used is written at most once per pair per granularity", async () => {
  const { engine, store, clock } = await setup();
  const p = (await engine.getOrCreatePerm(REMOTE, LOCAL)).token;
  const first = clock.t;
  const deliver = async () => {
    assertEquals(await engine.verify(p, REMOTE, LOCAL), { ok: true, kind: "perm" });
    assertEquals(await engine.afterDelivery(REMOTE, LOCAL, "perm", p), null);
  };
  await deliver();
  assertEquals(store.touches, 1, "the first use is written");
  for (let i = 0; i < 10; i++) {
    clock.advance(29_000);
    await deliver();
  }
  assertEquals(store.touches, 1, "290 s later: still the first write");
  assertEquals((await engine.list())[0]?.lastUsed, new Date(first));
  clock.advance(10_000);
  await deliver();
  assertEquals(store.touches, 2, "300 s after the stored one: written again");
  assertEquals((await engine.list())[0]?.lastUsed, new Date(clock.t));
  // Another pair has its own last use.
  const q = (await engine.getOrCreatePerm(REMOTE, "carol@local.example")).token;
  assertEquals(await engine.afterDelivery(REMOTE, "carol@local.example", "perm", q), null);
  assertEquals(store.touches, 3);
});

Deno.test("the granularity of last used comes from the policy (0: every delivery)", async () => {
  const { engine, store, clock } = await setup({
    policy: { ...DEFAULT_POLICY, lastUsedGranularityS: 0 },
  });
  const p = (await engine.getOrCreatePerm(REMOTE, LOCAL)).token;
  await engine.afterDelivery(REMOTE, LOCAL, "perm", p);
  clock.advance(1000);
  await engine.afterDelivery(REMOTE, LOCAL, "perm", p);
  assertEquals(store.touches, 2);
  assertEquals((await engine.list())[0]?.lastUsed, new Date(clock.t));
});

Deno.test("a delivery decides on the state read at RCPT: one store read, no write", async () => {
  const { engine, store, clock } = await setup();
  const p = (await engine.getOrCreatePerm(REMOTE, LOCAL)).token;
  await engine.afterDelivery(REMOTE, LOCAL, "perm", p); // first last-used write
  clock.advance(1000);
  const [reads, writes] = [store.reads, store.writes];
  assertEquals(await engine.verify(p, REMOTE, LOCAL), { ok: true, kind: "perm" });
  assertEquals(await engine.afterDelivery(REMOTE, LOCAL, "perm", p), null);
  assertEquals([store.reads - reads, store.writes - writes], [1, 0]);
  // A temporary token is answered with the stored permanent one, still without a reread.
  const temp = await engine.generateTemp(REMOTE, LOCAL);
  const before = store.reads;
  assertEquals(await engine.verify(temp, REMOTE, LOCAL), { ok: true, kind: "temp" });
  assertEquals(await engine.afterDelivery(REMOTE, LOCAL, "temp", temp), p);
  assertEquals([store.reads - before, store.writes - writes], [1, 0]);
  // A state older than a transaction can take is read again.
  assertEquals(await engine.verify(p, REMOTE, LOCAL), { ok: true, kind: "perm" });
  clock.advance(61_000);
  const late = store.reads;
  assertEquals(await engine.afterDelivery(REMOTE, LOCAL, "perm", p), null);
  assertEquals(store.reads - late, 1);
});

Deno.test("a stale state from RCPT costs a reread, never a second permanent token", async () => {
  const store = new MemoryTokenStore();
  const keyFile = newKeyFile();
  const clock = new Clock();
  const a = await engineOver(keyFile, store, clock);
  const b = await engineOver(keyFile, store, clock);
  const temp = await a.generateTemp(REMOTE, LOCAL);
  assertEquals(await a.verify(temp, REMOTE, LOCAL), { ok: true, kind: "temp" });
  // Another instance issues the pair's permanent token while A's message is in DATA.
  const p = (await b.getOrCreatePerm(REMOTE, LOCAL)).token;
  assertEquals(await a.afterDelivery(REMOTE, LOCAL, "temp", temp), p);
  assertEquals(await b.getOrCreatePerm(REMOTE, LOCAL), { token: p, created: false });
  // ...or refreshes it: A's client, still on the old token, is moved to the new one.
  clock.advance(280 * DAY_MS);
  assertEquals(await a.verify(p, REMOTE, LOCAL), { ok: true, kind: "perm" });
  const fresh = await b.afterDelivery(REMOTE, LOCAL, "perm", p);
  assert(fresh !== null && fresh !== p);
  assertEquals(await a.afterDelivery(REMOTE, LOCAL, "perm", p), fresh);
});

Deno.test("revoked between RCPT and the end of DATA: the delivery earns no token", async () => {
  for (const where of ["same instance", "other instance"]) {
    const store = new MemoryTokenStore();
    const keyFile = newKeyFile();
    const clock = new Clock();
    const a = await engineOver(keyFile, store, clock);
    const b = where === "same instance" ? a : await engineOver(keyFile, store, clock);
    const temp = await a.generateTemp(REMOTE, LOCAL);
    assertEquals(await a.verify(temp, REMOTE, LOCAL), { ok: true, kind: "temp" });
    await b.revoke(REMOTE, LOCAL);
    assertEquals(await a.afterDelivery(REMOTE, LOCAL, "temp", temp), null, where);
    assertEquals(await a.list(), [], `${where}: no permanent token was stored`);
    // A token made after the revocation works as before.
    const temp2 = await a.generateTemp(REMOTE, LOCAL);
    assertEquals(await a.verify(temp2, REMOTE, LOCAL), { ok: true, kind: "temp" });
    const p = await a.afterDelivery(REMOTE, LOCAL, "temp", temp2);
    assert(p !== null, where);
    assertEquals(await b.verify(p, REMOTE, LOCAL), { ok: true, kind: "perm" });
  }
});

Deno.test("afterDelivery with a permanent token keeps it until refresh is due", async () => {
  const { engine, clock } = await setup();
  const p = (await engine.getOrCreatePerm(REMOTE, LOCAL)).token;
  clock.advance(270 * DAY_MS); // 95 of 365 days left: more than 25 %
  assertEquals(await engine.afterDelivery(REMOTE, LOCAL, "perm", p), null);
  assertEquals(await engine.afterDelivery(REMOTE, LOCAL, "perm"), null);
  assertEquals((await engine.list())[0]?.lastUsed, new Date(clock.t));
});

Deno.test("refresh: a new permanent token, the old one valid for the grace period", async () => {
  const { engine, clock } = await setup();
  const old = (await engine.getOrCreatePerm(REMOTE, LOCAL)).token;
  clock.advance(280 * DAY_MS); // 85 days left: less than 25 % of a year
  const fresh = await engine.afterDelivery(REMOTE, LOCAL, "perm", old);
  assert(fresh !== null && fresh !== old);
  assertEquals(decodeToken(fresh)?.fields.expiresS, Math.floor(clock.t / 1000) + 365 * 86400);
  assertEquals(await engine.verify(fresh, REMOTE, LOCAL), { ok: true, kind: "perm" });
  assertEquals(await engine.verify(old, REMOTE, LOCAL), { ok: true, kind: "perm" });
  assertEquals(await engine.getOrCreatePerm(REMOTE, LOCAL), { token: fresh, created: false });
  // Another Remote Client still on the old token is handed the current one.
  clock.advance(DAY_MS);
  assertEquals(await engine.afterDelivery(REMOTE, LOCAL, "perm", old), fresh);
  assertEquals(await engine.afterDelivery(REMOTE, LOCAL, "perm", fresh), null);
  clock.advance(6 * DAY_MS - 1);
  assertEquals(await engine.verify(old, REMOTE, LOCAL), { ok: true, kind: "perm" });
  clock.advance(1);
  assertEquals(await engine.verify(old, REMOTE, LOCAL), { ok: false }, "grace over");
  assertEquals(await engine.verify(fresh, REMOTE, LOCAL), { ok: true, kind: "perm" });
});

Deno.test("the grace period never outlives the old token's own expiry", async () => {
  const { engine, clock } = await setup();
  const old = (await engine.getOrCreatePerm(REMOTE, LOCAL)).token;
  clock.advance(YEAR_MS - 2 * DAY_MS);
  const fresh = await engine.afterDelivery(REMOTE, LOCAL, "perm", old);
  assert(fresh !== null);
  clock.advance(2 * DAY_MS);
  assertEquals(await engine.verify(old, REMOTE, LOCAL), { ok: false });
});

Deno.test("refresh fraction and grace come from the policy", async () => {
  const policy = { tempLifetimeS: 60, permLifetimeS: 1000, refreshFraction: 0.5, graceS: 10 };
  const { engine, clock } = await setup({ policy });
  const old = (await engine.getOrCreatePerm(REMOTE, LOCAL)).token;
  clock.advance(500 * 1000);
  assertEquals(await engine.afterDelivery(REMOTE, LOCAL, "perm", old), null, "exactly half left");
  clock.advance(1000);
  const fresh = await engine.afterDelivery(REMOTE, LOCAL, "perm", old);
  assert(fresh !== null);
  clock.advance(10 * 1000);
  assertEquals(await engine.verify(old, REMOTE, LOCAL), { ok: false });
  assertEquals(await engine.verify(fresh, REMOTE, LOCAL), { ok: true, kind: "perm" });
});

Deno.test("key rotation: old tokens keep verifying, new ones use the new key", async () => {
  const { engine, store, keyFile, clock } = await setup();
  const temp = await engine.generateTemp(REMOTE, LOCAL);
  const perm = (await engine.getOrCreatePerm(REMOTE, LOCAL)).token;
  const rotated = rotateKeys(keyFile);
  const e2 = await engineOver(rotated, store, clock);
  assertEquals(await e2.verify(temp, REMOTE, LOCAL), { ok: true, kind: "temp" });
  assertEquals(await e2.verify(perm, REMOTE, LOCAL), { ok: true, kind: "perm" });
  assert(e2.checkLocal(temp, LOCAL));
  // The existing permanent token is still returned unchanged.
  assertEquals(await e2.getOrCreatePerm(REMOTE, LOCAL), { token: perm, created: false });
  const temp2 = await e2.generateTemp(REMOTE, LOCAL);
  assertEquals(decodeToken(temp2)?.fields.keyId, rotated.current);
  assertEquals(decodeToken(temp)?.fields.keyId, keyFile.current);
  assertEquals(await e2.verify(temp2, REMOTE, LOCAL), { ok: true, kind: "temp" });
  // An instance that has not loaded the new key cannot verify tokens made with it.
  assertEquals(await engine.verify(temp2, REMOTE, LOCAL), { ok: false });
});

Deno.test("an unknown key id fails, and a key that left the key file kills its tokens", async () => {
  const { engine, store, keyFile, clock } = await setup();
  const temp = await engine.generateTemp(REMOTE, LOCAL);
  const perm = (await engine.getOrCreatePerm(REMOTE, LOCAL)).token;
  const stranger = await engineOver(newKeyFile(), store, clock);
  assertEquals(await stranger.verify(temp, REMOTE, LOCAL), { ok: false });
  assertEquals(await stranger.verify(perm, REMOTE, LOCAL), { ok: false });
  assert(!stranger.checkLocal(temp, LOCAL));
  // Same secret under another id: the key id is part of what the MACs cover.
  const renamed = {
    ...keyFile,
    token_keys: [{ ...keyFile.token_keys[0]!, id: "k00000001" }],
    current: "k00000001",
  };
  const e3 = await engineOver(renamed, store, clock);
  assertEquals(await e3.verify(temp, REMOTE, LOCAL), { ok: false });
  // The permanent token's key is gone: GENSTOKEN PERM makes a new one under the current key.
  const again = await stranger.getOrCreatePerm(REMOTE, LOCAL);
  assert(again.created);
  assertEquals(await stranger.verify(again.token, REMOTE, LOCAL), { ok: true, kind: "perm" });
});

Deno.test("store failures surface as exceptions, never with a token in the message", async () => {
  const { engine, store } = await setup();
  const temp = await engine.generateTemp(REMOTE, LOCAL);
  store.failing = true;
  for (
    const op of [
      () => engine.verify(temp, REMOTE, LOCAL),
      () => engine.generateTemp(REMOTE, LOCAL),
      () => engine.getOrCreatePerm(REMOTE, LOCAL),
      () => engine.revoke(REMOTE, LOCAL),
      () => engine.afterDelivery(REMOTE, LOCAL, "temp"),
      () => engine.list(),
    ]
  ) {
    const e = await assertRejects(op);
    assert(!e.message.includes(temp));
  }
  // AUTH STOKEN needs no store.
  assert(engine.checkLocal(temp, LOCAL));
});

Deno.test("a compare-and-set race is settled by rereading: both callers get the same token", async () => {
  const store = new MemoryTokenStore();
  const clock = new Clock();
  const kf = newKeyFile();
  const a = await engineOver(kf, store, clock);
  const b = await engineOver(kf, store, clock);
  const [ra, rb] = await Promise.all([
    a.getOrCreatePerm(REMOTE, LOCAL),
    b.getOrCreatePerm(REMOTE, LOCAL),
  ]);
  assertEquals(ra.token, rb.token);
  assertEquals([ra.created, rb.created].sort(), [false, true]);
});

Deno.test("a store that always loses the race makes getOrCreatePerm fail instead of looping", async () => {
  const store = new MemoryTokenStore();
  store.replacePerm = () => Promise.resolve(false);
  const { engine } = await setup({ store });
  await assertRejects(() => engine.getOrCreatePerm(REMOTE, LOCAL));
});

Deno.test("list shows current permanent tokens by pair, never the token", async () => {
  const { engine, clock } = await setup();
  const p1 = (await engine.getOrCreatePerm(REMOTE, LOCAL)).token;
  clock.advance(1000);
  await engine.getOrCreatePerm("dave@remote.example", "carol@local.example");
  await engine.generateTemp("eve@remote.example", LOCAL);
  const all = await engine.list();
  assertEquals(all.map((e) => [e.remote, e.local, e.kind]), [
    ["bob@remote.example", "alice@local.example", "perm"],
    ["dave@remote.example", "carol@local.example", "perm"],
  ]);
  assertEquals(all[0]?.issued, new Date(clock.t - 1000));
  assertEquals(all[0]?.expires, new Date(clock.t - 1000 + YEAR_MS));
  assertEquals(all[0]?.lastUsed, null);
  assert(!JSON.stringify(all).includes(p1));
  assertEquals((await engine.list("ALICE@local.example")).length, 1);
  clock.advance(YEAR_MS);
  assertEquals((await engine.list()).length, 0, "expired tokens are not listed");
});

Deno.test("policy is validated", async () => {
  const kf = newKeyFile();
  for (
    const p of [
      { ...DEFAULT_POLICY, tempLifetimeS: 0 },
      { ...DEFAULT_POLICY, permLifetimeS: -1 },
      { ...DEFAULT_POLICY, graceS: 1.5 },
      { ...DEFAULT_POLICY, refreshFraction: 1.1 },
      { ...DEFAULT_POLICY, refreshFraction: NaN },
    ]
  ) {
    const pending = TokenEngine.create(kf, new MemoryTokenStore(), p); // must not throw synchronously
    await assertRejects(() => pending, JSON.stringify(p));
  }
  await assertRejects(() =>
    TokenEngine.create({ ...kf, current: "k12345678" }, new MemoryTokenStore())
  );
});
