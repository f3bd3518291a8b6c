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
  {
    version: 2,
    sql: [
      // One row per (remote, local) token pair, addresses lower-cased (see tokens/engine.ts).
      // generation: revocation watermark, bumped by REVSTOKEN; tokens carry it. cur_* / prev_*:
      // metadata of the current permanent token and of the one it replaced (valid until
      // prev_grace_until); the tokens themselves are recomputed with the key file's secrets
      // and never stored. Times: Unix seconds. Nonces: 6-byte blobs.
      `CREATE TABLE token_pairs (
        remote TEXT NOT NULL,
        local TEXT NOT NULL,
        generation INTEGER NOT NULL DEFAULT 0,
        cur_key_id TEXT,
        cur_nonce BLOB,
        cur_issued INTEGER,
        cur_expires INTEGER,
        prev_key_id TEXT,
        prev_nonce BLOB,
        prev_issued INTEGER,
        prev_expires INTEGER,
        prev_grace_until INTEGER,
        last_used INTEGER,
        PRIMARY KEY (remote, local)
      )`,
      `CREATE INDEX token_pairs_by_local ON token_pairs(local)`,
      // Tokens this server holds for other servers (store/held_tokens.ts): remote = the
      // other server's user, local = ours. AES-256-GCM ciphertext (tag appended) under the
      // key file's held_token_key, AAD = the pair. Times: Unix seconds.
      `CREATE TABLE held_tokens (
        remote TEXT NOT NULL,
        local TEXT NOT NULL,
        iv BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        expires INTEGER,
        source TEXT NOT NULL CHECK (source IN ('mystoken', 'reply', 'header')),
        created INTEGER NOT NULL,
        last_success INTEGER,
        PRIMARY KEY (remote, local)
      )`,
    ],
  },
  {
    version: 3,
    sql: [
      // Recipients a submitted message already reached, so a client's retry after a 451
      // (same Message-ID within minutes) reaches only the others (PROTOCOL.md §7).
      `CREATE TABLE recent_deliveries (
        sender TEXT NOT NULL,
        message_id TEXT NOT NULL,
        rcpt TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (sender, message_id, rcpt)
      )`,
      `CREATE INDEX recent_deliveries_by_time ON recent_deliveries(at)`,
    ],
  },
];
