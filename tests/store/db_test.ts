import { stat } from "node:fs/promises";
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertRejects } from "../assert.ts";
import { filePathOf, migrate, openDatabase, schemaVersion } from "../../src/store/db.ts";
import { MIGRATIONS } from "../../src/store/migrations.ts";

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "stoken-db-" });
}

Deno.test("filePathOf reads the file: URL forms and ignores remote URLs", () => {
  assertEquals(filePathOf("file:var/stoken.db"), "var/stoken.db");
  assertEquals(filePathOf("file:/srv/stoken.db"), "/srv/stoken.db");
  assertEquals(filePathOf("file:///srv/stoken.db"), "/srv/stoken.db");
  assertEquals(filePathOf("file://localhost/srv/stoken.db"), "/srv/stoken.db");
  assertEquals(filePathOf("file:/srv/a%20b.db?mode=rwc"), "/srv/a b.db");
  assertEquals(filePathOf("file::memory:"), null);
  assertEquals(filePathOf("libsql://db.example.test"), null);
});

Deno.test("openDatabase creates the directory and file, in WAL mode, with every migration", async () => {
  const dir = await tempDir();
  const path = join(dir, "nested", "deeper", "stoken.db");
  const db = await openDatabase(`file:${path}`);
  try {
    assertEquals((await stat(path)).mode & 0o777, 0o600, "database file is private");
    const mode = await db.execute("PRAGMA journal_mode");
    assertEquals(mode.rows[0]?.["journal_mode"], "wal");
    // Default synchronous (FULL = 2) is kept on purpose (see db.ts).
    const sync = await db.execute("PRAGMA synchronous");
    assertEquals(Number(sync.rows[0]?.["synchronous"]), 2);
    const busy = await db.execute("PRAGMA busy_timeout");
    assertEquals(Number(busy.rows[0]?.["timeout"]), 5000);
    assertEquals(await schemaVersion(db), MIGRATIONS.length);
    const tables = await db.execute(
      "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
    );
    const names = tables.rows.map((r) => r["name"]);
    assert(
      names.includes("users") && names.includes("aliases") && names.includes("schema_version"),
    );
  } finally {
    db.close();
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("migrations are idempotent on re-open and data survives", async () => {
  const dir = await tempDir();
  const url = `file:${join(dir, "stoken.db")}`;
  const db1 = await openDatabase(url);
  await db1.execute({
    sql: "INSERT INTO users (address, password_hash, created_at) VALUES (?, ?, ?)",
    args: ["a@example.test", "x", 1],
  });
  db1.close();
  const db2 = await openDatabase(url);
  try {
    const rows = await db2.execute("SELECT version FROM schema_version ORDER BY version");
    assertEquals(rows.rows.map((r) => Number(r["version"])), MIGRATIONS.map((m) => m.version));
    const users = await db2.execute("SELECT address FROM users");
    assertEquals(users.rows.map((r) => r["address"]), ["a@example.test"]);
  } finally {
    db2.close();
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("an appended migration runs once, in order, and a newer schema is refused", async () => {
  const dir = await tempDir();
  const url = `file:${join(dir, "stoken.db")}`;
  const db = await openDatabase(url);
  try {
    const more = [...MIGRATIONS, {
      version: MIGRATIONS.length + 1,
      sql: ["CREATE TABLE extra (id INTEGER PRIMARY KEY)"],
    }];
    assertEquals(await migrate(db, more), more.length);
    assertEquals(await migrate(db, more), more.length, "second run is a no-op");
    assertEquals(await schemaVersion(db), more.length);
    // The older list (what an older stoken knows) must refuse the newer schema.
    const e = await assertRejects(() => migrate(db, MIGRATIONS));
    assertMatch(e.message, /newer than this stoken supports/);
    const gap = [...MIGRATIONS, { version: MIGRATIONS.length + 5, sql: [] }];
    assertMatch((await assertRejects(() => migrate(db, gap))).message, /versions must be 1, 2, 3/);
  } finally {
    db.close();
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a failing migration leaves nothing half-applied", async () => {
  const dir = await tempDir();
  const db = await openDatabase(`file:${join(dir, "stoken.db")}`);
  try {
    const bad = [...MIGRATIONS, {
      version: MIGRATIONS.length + 1,
      sql: ["CREATE TABLE half (id INTEGER)", "THIS IS NOT SQL"],
    }];
    const e = await assertRejects(() => migrate(db, bad));
    assertMatch(e.message, /^Migration \d+ failed/);
    assertEquals(await schemaVersion(db), MIGRATIONS.length);
    const t = await db.execute("SELECT name FROM sqlite_master WHERE name = 'half'");
    assertEquals(t.rows.length, 0);
  } finally {
    db.close();
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("openDatabase errors name the URL but never the auth token", async () => {
  const dir = await tempDir();
  // A regular file where the database directory should be.
  await Deno.writeTextFile(join(dir, "blocker"), "");
  const url = `file:${join(dir, "blocker", "stoken.db")}`;
  const e = await assertRejects(() => openDatabase(url));
  assertMatch(e.message, /^Cannot open database "file:.*blocker\/stoken\.db"/);

  const secret = "sekrit-token-value-1234";
  // Nothing listens on port 1: the connection fails.
  const e2 = await assertRejects(() =>
    openDatabase(`http://127.0.0.1:1/?authToken=${secret}`, secret)
  );
  assertMatch(e2.message, /^Cannot open database "http:\/\/127\.0\.0\.1:1\/"/);
  assert(!e2.message.includes(secret), "auth token must not appear in the error");
  await Deno.remove(dir, { recursive: true });
});
