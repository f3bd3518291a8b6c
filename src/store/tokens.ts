// The token engine's per-pair state in libSQL (table token_pairs, migration 2).
// One row per (remote, local): the generation (revocation watermark) and the metadata of
// the current and previous permanent tokens. Never a token or anything that alone lets
// anyone deliver (PROTOCOL §5): the MACs need the secret keys of the key file.
import type { Row } from "@libsql/client";
import type {
  PairState,
  PermExpectation,
  PermRecord,
  PreviousPermRecord,
  TokenStore,
} from "../tokens/token_store.ts";
import type { Db } from "./db.ts";

/**
 * The pair's state as one JSON array in one column. verify() reads it on every RCPT, and
 * @libsql/client builds each result row with a property per column: the eleven columns
 * cost ~170 µs a read here, this single column ~65 µs (JSON.parse included). Blobs travel
 * as hex, NULL as null, and anything else in a blob column as 0, which pairState() refuses
 * like any other value of the wrong type.
 */
const PAIR = `json_array(generation, cur_key_id,
  CASE typeof(cur_nonce) WHEN 'blob' THEN hex(cur_nonce) WHEN 'null' THEN NULL ELSE 0 END,
  cur_issued, cur_expires, prev_key_id,
  CASE typeof(prev_nonce) WHEN 'blob' THEN hex(prev_nonce) WHEN 'null' THEN NULL ELSE 0 END,
  prev_issued, prev_expires, prev_grace_until, last_used) AS pair`;

export class LibsqlTokenStore implements TokenStore {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  async get(remote: string, local: string): Promise<PairState | null> {
    const rs = await this.#db.execute({
      sql: `SELECT ${PAIR} FROM token_pairs WHERE remote = ? AND local = ?`,
      args: [remote, local],
    });
    const row = rs.rows[0];
    return row === undefined ? null : pairState(row);
  }

  async replacePerm(
    remote: string,
    local: string,
    expect: PermExpectation,
    current: PermRecord,
    previous: PreviousPermRecord | null,
  ): Promise<boolean> {
    // Both statements in one write transaction; the UPDATE is the compare-and-set
    // (`IS` compares NULL with NULL as equal: "no current token").
    const [, update] = await this.#db.batch([
      {
        sql:
          "INSERT INTO token_pairs (remote, local, generation) VALUES (?, ?, 0) ON CONFLICT DO NOTHING",
        args: [remote, local],
      },
      {
        sql: `UPDATE token_pairs SET
            cur_key_id = ?, cur_nonce = ?, cur_issued = ?, cur_expires = ?,
            prev_key_id = ?, prev_nonce = ?, prev_issued = ?, prev_expires = ?, prev_grace_until = ?
          WHERE remote = ? AND local = ? AND generation = ? AND cur_nonce IS ?`,
        args: [
          current.keyId,
          current.nonce,
          current.issuedS,
          current.expiresS,
          previous?.keyId ?? null,
          previous?.nonce ?? null,
          previous?.issuedS ?? null,
          previous?.expiresS ?? null,
          previous?.graceUntilS ?? null,
          remote,
          local,
          expect.generation,
          expect.currentNonce,
        ],
      },
    ], "write");
    return update?.rowsAffected === 1;
  }

  async revoke(remote: string, local: string): Promise<void> {
    // One statement: atomic even with several instances on a shared database.
    await this.#db.execute({
      sql: `INSERT INTO token_pairs (remote, local, generation) VALUES (?, ?, 1)
        ON CONFLICT (remote, local) DO UPDATE SET generation = generation + 1,
          cur_key_id = NULL, cur_nonce = NULL, cur_issued = NULL, cur_expires = NULL,
          prev_key_id = NULL, prev_nonce = NULL, prev_issued = NULL, prev_expires = NULL,
          prev_grace_until = NULL`,
      args: [remote, local],
    });
  }

  async touch(remote: string, local: string, atS: number): Promise<void> {
    await this.#db.execute({
      sql: "UPDATE token_pairs SET last_used = ? WHERE remote = ? AND local = ?",
      args: [atS, remote, local],
    });
  }

  async list(local?: string): Promise<{ remote: string; local: string; state: PairState }[]> {
    const rs = local === undefined
      ? await this.#db.execute(
        `SELECT remote, local, ${PAIR} FROM token_pairs WHERE cur_nonce IS NOT NULL
          ORDER BY local, remote`,
      )
      : await this.#db.execute({
        sql: `SELECT remote, local, ${PAIR} FROM token_pairs
          WHERE local = ? AND cur_nonce IS NOT NULL ORDER BY remote`,
        args: [local],
      });
    return rs.rows.map((row) => ({
      remote: textOf(row, "remote"),
      local: textOf(row, "local"),
      state: pairState(row),
    }));
  }
}

/** The PAIR column of a row; a value of the wrong shape is a damaged database (451). */
function pairState(row: Row): PairState {
  const v = row["pair"];
  if (typeof v !== "string") throw new TypeError('Column "pair" is not text');
  const a: unknown = JSON.parse(v);
  if (!Array.isArray(a) || a.length !== 11) throw new TypeError('Column "pair" is not a pair');
  const [gen, curKey, curNonce, curIssued, curExpires] = a;
  const [prevKey, prevNonce, prevIssued, prevExpires, prevGrace, lastUsed] = a.slice(5);
  return {
    generation: int(gen, "generation"),
    current: curNonce === null ? null : {
      keyId: text(curKey, "cur_key_id"),
      nonce: hexBlob(curNonce, "cur_nonce"),
      issuedS: int(curIssued, "cur_issued"),
      expiresS: int(curExpires, "cur_expires"),
    },
    previous: prevNonce === null ? null : {
      keyId: text(prevKey, "prev_key_id"),
      nonce: hexBlob(prevNonce, "prev_nonce"),
      issuedS: int(prevIssued, "prev_issued"),
      expiresS: int(prevExpires, "prev_expires"),
      graceUntilS: int(prevGrace, "prev_grace_until"),
    },
    lastUsedS: lastUsed === null ? null : int(lastUsed, "last_used"),
  };
}

function int(v: unknown, col: string): number {
  if (typeof v === "number" && Number.isSafeInteger(v)) return v;
  throw new TypeError(`Column "${col}" is not an integer`);
}

function text(v: unknown, col: string): string {
  if (typeof v === "string") return v;
  throw new TypeError(`Column "${col}" is not text`);
}

function hexBlob(v: unknown, col: string): Uint8Array<ArrayBuffer> {
  if (typeof v === "string" && /^(?:[0-9A-F]{2})+$/.test(v)) return Uint8Array.fromHex(v);
  throw new TypeError(`Column "${col}" is not a blob`);
}

// Typed reads of row values (an integer may come back as number or bigint, a blob as
// ArrayBuffer). A wrong type means a damaged database: an exception, answered with 451.

export function intOf(row: Row, col: string): number {
  const v = row[col];
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  throw new TypeError(`Column "${col}" is not an integer`);
}

export function intOrNull(row: Row, col: string): number | null {
  return row[col] == null ? null : intOf(row, col);
}

export function textOf(row: Row, col: string): string {
  const v = row[col];
  if (typeof v === "string") return v;
  throw new TypeError(`Column "${col}" is not text`);
}

export function blobOf(row: Row, col: string): Uint8Array<ArrayBuffer> {
  const v: unknown = row[col];
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (v instanceof Uint8Array) return new Uint8Array(v);
  throw new TypeError(`Column "${col}" is not a blob`);
}
