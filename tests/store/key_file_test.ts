import { chmod, stat } from "node:fs/promises";
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertRejects } from "../assert.ts";
import {
  type KeyFile,
  newKeyFile,
  readKeyFile,
  rotateKeys,
  secretBytes,
  writeKeyFile,
} from "../../src/store/key_file.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stoken-keys-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("newKeyFile has the documented shape", () => {
  const now = new Date("2030-01-02T03:04:05.000Z");
  const kf = newKeyFile(now);
  assertEquals(kf.version, 1);
  assertEquals(kf.token_keys.length, 1);
  const k = kf.token_keys[0]!;
  assertMatch(k.id, /^k[0-9a-f]{8}$/);
  assertMatch(k.secret, /^[A-Za-z0-9_-]{43}$/);
  assertEquals(secretBytes(k.secret).length, 32);
  assertEquals(k.created, "2030-01-02T03:04:05.000Z");
  assertEquals(kf.current, k.id);
  assertMatch(kf.held_token_key, /^[A-Za-z0-9_-]{43}$/);
  assert(kf.held_token_key !== k.secret);
  assert(newKeyFile().token_keys[0]!.secret !== k.secret, "secrets are random");
});

Deno.test("writeKeyFile writes mode 0600 atomically and readKeyFile round-trips", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "sub", "keys.json");
    const kf = newKeyFile();
    await writeKeyFile(path, kf);
    assertEquals((await stat(path)).mode & 0o777, 0o600);
    assertEquals(await readKeyFile(path), kf);
    // Overwrite: still 0600, no temporary files left behind.
    const rotated = rotateKeys(kf);
    await writeKeyFile(path, rotated);
    assertEquals(await readKeyFile(path), rotated);
    assertEquals((await stat(path)).mode & 0o777, 0o600);
    const names = [];
    for await (const e of Deno.readDir(join(dir, "sub"))) names.push(e.name);
    assertEquals(names, ["keys.json"]);
  });
});

Deno.test("rotateKeys adds a current key and keeps the old ones", () => {
  const kf = newKeyFile(new Date("2030-01-01T00:00:00Z"));
  const r = rotateKeys(kf, new Date("2031-01-01T00:00:00Z"));
  assertEquals(r.token_keys.length, 2);
  assertEquals(r.token_keys[0], kf.token_keys[0]);
  const added = r.token_keys[1]!;
  assertEquals(r.current, added.id);
  assert(added.id !== kf.current && added.secret !== kf.token_keys[0]!.secret);
  assertEquals(added.created, "2031-01-01T00:00:00.000Z");
  assertEquals(r.held_token_key, kf.held_token_key, "held tokens stay decryptable");
  assertEquals(kf.token_keys.length, 1, "the input is not modified");
  assertEquals(rotateKeys(r).token_keys.length, 3);
});

Deno.test("readKeyFile refuses a file readable by group or others", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.json");
    await writeKeyFile(path, newKeyFile());
    await chmod(path, 0o644);
    const e = await assertRejects(() => readKeyFile(path));
    assertMatch(e.message, /readable by group or others \(mode 0644\): run chmod 600/);
    assert(e.message.includes(path));
    await chmod(path, 0o640);
    await assertRejects(() => readKeyFile(path));
    await chmod(path, 0o400);
    assertEquals((await readKeyFile(path)).version, 1);
  });
});

Deno.test("readKeyFile validates strictly and never prints secrets", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.json");
    const good = newKeyFile();
    const secret = good.token_keys[0]!.secret;
    const cases: [unknown, RegExp][] = [
      [{ ...good, version: 2 }, /unsupported version 2/],
      [{ ...good, token_keys: [] }, /"token_keys" must be a non-empty list/],
      [{ ...good, current: "k00000000" }, /"current" must be the id/],
      [{ ...good, extra: 1 }, /unknown key "extra"/],
      [{ ...good, held_token_key: "short" }, /"held_token_key" must be 32 bytes/],
      [{ ...good, token_keys: [{ ...good.token_keys[0], id: "K1234ABCD" }] }, /id must be "k"/],
      // 43 characters whose last one has non-zero unused bits: not canonical base64url.
      [
        { ...good, token_keys: [{ ...good.token_keys[0], secret: secret.slice(0, 42) + "B" }] },
        /secret must be/,
      ],
      [
        { ...good, token_keys: [{ ...good.token_keys[0], created: "yesterday" }] },
        /created must be/,
      ],
      [{ ...good, token_keys: [good.token_keys[0], good.token_keys[0]] }, /duplicate key id/],
    ];
    for (const [json, re] of cases) {
      await Deno.writeTextFile(path, JSON.stringify(json), { mode: 0o600 });
      const e = await assertRejects(() => readKeyFile(path), String(re));
      assertMatch(e.message, re);
      assertMatch(e.message, /^Key file ".*keys\.json" is invalid: /);
      assert(!e.message.includes(secret) && !e.message.includes(good.held_token_key));
    }
    await Deno.writeTextFile(path, `{"secret": "${secret}"`, { mode: 0o600 });
    const e = await assertRejects(() => readKeyFile(path));
    assertMatch(e.message, /is not valid JSON$/);
    assert(!e.message.includes(secret));
    const missing = await assertRejects(() => readKeyFile(join(dir, "nope.json")));
    assertMatch(missing.message, /^Cannot read key file ".*nope\.json"/);
  });
});

Deno.test("writeKeyFile refuses an invalid key file", async () => {
  await withDir(async (dir) => {
    const bad = { ...newKeyFile(), current: "k12345678" } as KeyFile;
    const e = await assertRejects(() => writeKeyFile(join(dir, "keys.json"), bad));
    assertMatch(e.message, /^Refusing to write an invalid key file/);
  });
});
