// Forward-only schema migrations, run in order at open (see db.ts).
// To change the schema, APPEND an entry with the next version number; never edit or
// reorder an entry that has shipped, because databases already record it as applied.

export interface Migration {
  /** 1, 2, 3, … with no gaps: recorded in schema_version once applied. */
  readonly version: number;
  /** Statements run in one write transaction together with the schema_version insert. */
  readonly sql: readonly string[];
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    sql: [
      // address: the canonical, lower-cased primary address (normalizeAddress); it is also
      // the AUTH username. password_hash: see password.ts. created_at: Unix seconds.
      `CREATE TABLE users (
        address TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL
      )`,
      // alias: canonical lower-cased address delivered to (and usable as MAIL FROM by) `address`.
      `CREATE TABLE aliases (
        alias TEXT PRIMARY KEY,
        address TEXT NOT NULL REFERENCES users(address) ON DELETE CASCADE
      )`,
      `CREATE INDEX aliases_by_address ON aliases(address)`,
    ],
  },
];
