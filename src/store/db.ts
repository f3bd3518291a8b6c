// Opening the libSQL database: an embedded file (default) or a shared libSQL server
// (libsql://, http(s)://, ws(s)://) with an auth token. Forward migrations run at open.
import { type Client, createClient } from "@libsql/client";
import { chmod, mkdir, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { type Migration, MIGRATIONS } from "./migrations.ts";

/** The database handle the stores share. One per process; close() it on shutdown. */
export type Db = Client;

export class DatabaseError extends Error {
  override name = "DatabaseError";
}

/**
 * The file path of a `file:` URL, or null for remote URLs and in-memory databases.
 * Accepts `file:relative`, `file:/abs`, `file:///abs` and `file://localhost/abs`.
 */
export function filePathOf(url: string): string | null {
  if (!url.startsWith("file:")) return null;
  let p = url.slice(5);
  const q = p.indexOf("?");
  if (q >= 0) p = p.slice(0, q);
  if (p.startsWith("//localhost/")) p = p.slice("//localhost".length);
  else if (p.startsWith("///")) p = p.slice(2);
  if (p === "" || p === ":memory:") return null;
  return decodeURIComponent(p);
}

/** The URL as it may appear in messages: no query string (it can carry authToken), no userinfo. */
function displayUrl(url: string): string {
  const noQuery = url.split("?")[0] ?? "";
  return noQuery.replace(/^([a-z]+:\/\/)[^@/]*@/i, "$1");
}

function redact(message: string, secret: string | undefined): string {
  return secret ? message.split(secret).join("<redacted>") : message;
}

/**
 * Open (creating if needed) the database at `url` and bring its schema up to date.
 * Errors name the URL but never the auth token.
 */
export async function openDatabase(url: string, authToken?: string): Promise<Db> {
  const shown = displayUrl(url);
  const path = filePathOf(url);
  let created = false;
  let db: Client | undefined;
  try {
    if (path !== null) {
      // The database holds password hashes: keep its directory private.
      await mkdir(dirname(resolve(path)), { recursive: true, mode: 0o700 });
      created = !(await exists(path));
    }
    // `timeout` is SQLite's busy_timeout in ms, applied to every pooled connection (a
    // `PRAGMA busy_timeout` would reach only one of them): writers from several
    // processes sharing the file wait for the lock instead of failing with SQLITE_BUSY.
    db = createClient(
      authToken === undefined ? { url, timeout: 5000 } : { url, authToken, timeout: 5000 },
    );
    if (path !== null) {
      if (created) await chmod(path, 0o600);
      // WAL is a property of the file (persistent), so one connection is enough: readers
      // do not block the writer. `synchronous` is left at SQLite's default, FULL, on
      // every connection: in WAL mode NORMAL may lose the last committed transactions on
      // power loss, and a user that was added or a token that was revoked (and reported
      // so) must not come back from the dead.
      await db.execute("PRAGMA journal_mode=WAL");
    } else {
      // Remote clients connect lazily: fail here, with the URL, rather than at first use.
      await db.execute("SELECT 1");
    }
    await migrate(db);
    return db;
  } catch (e) {
    db?.close();
    const why = redact((e as Error).message ?? String(e), authToken);
    throw new DatabaseError(`Cannot open database "${shown}": ${why}`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Apply every migration newer than the database's schema version, each in its own
 * write transaction that rechecks the version first, so instances starting together
 * against a shared database apply each migration exactly once.
 */
export async function migrate(
  db: Db,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number> {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new DatabaseError(
        `Migration ${i + 1} has version ${m.version}: versions must be 1, 2, 3, …`,
      );
    }
  });
  const latest = migrations.length;
  await db.execute(
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
  );
  const current = await schemaVersion(db);
  if (current > latest) {
    // An older stoken must not write into a schema it does not know.
    throw new DatabaseError(
      `Database schema version ${current} is newer than this stoken supports (${latest}): upgrade stoken`,
    );
  }
  for (const m of migrations.slice(current)) {
    const tx = await db.transaction("write");
    try {
      const done = await tx.execute({
        sql: "SELECT 1 FROM schema_version WHERE version = ?",
        args: [m.version],
      });
      if (done.rows.length === 0) {
        for (const sql of m.sql) await tx.execute(sql);
        await tx.execute({
          sql: "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
          args: [m.version, Math.floor(Date.now() / 1000)],
        });
      }
      await tx.commit();
    } catch (e) {
      throw new DatabaseError(`Migration ${m.version} failed: ${(e as Error).message}`);
    } finally {
      tx.close();
    }
  }
  return latest;
}

/** The highest migration version recorded in the database (0 when none). */
export async function schemaVersion(db: Db): Promise<number> {
  const rs = await db.execute("SELECT MAX(version) AS v FROM schema_version");
  return Number(rs.rows[0]?.["v"] ?? 0);
}
