// Tokens this server holds for other Token Servers (table held_tokens, migration 2):
// from a MYSTOKEN parameter, a 2.1.13 reply or a Submission-Token header (PROTOCOL §6,
// §8, §9). They must be presented later, so they are stored encrypted (PROTOCOL §5):
// AES-256-GCM under the key file's held_token_key, a random 12-byte IV per write, and
// the pair as additional data so a row copied onto another pair does not decrypt.
import type { KeyFile } from "./key_file.ts";
import type { Db } from "./db.ts";
import { blobOf, intOrNull, textOf } from "./tokens.ts";

export type HeldTokenSource = "mystoken" | "reply" | "header";

export interface HeldToken {
  token: string;
  source: HeldTokenSource;
  expires: Date | null;
  lastSuccess: Date | null;
}

export interface PutOptions {
  source: HeldTokenSource;
  expires?: Date;
  /**
   * Whether the new token may replace one that has already worked (a delivery with it
   * succeeded). False for tokens harvested from headers, which anyone can write.
   */
  overwriteWorking: boolean;
}

const IV_BYTES = 12;
const SOURCES: readonly string[] = ["mystoken", "reply", "header"];
// Held tokens are other servers' tokens: any esmtp-value would do, but stoken only keeps
// strings that fit PROTOCOL §5 (and so a header line) — the same rule as isTokenString.
const TOKEN_SYNTAX = /^[A-Za-z0-9_-]{20,64}$/;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

function normalize(address: string): string {
  return address.toLowerCase();
}

/** "stoken-held-v1" | u32 length | remote | u32 length | local: one pair, one AAD. */
function additionalData(remote: string, local: string): Uint8Array<ArrayBuffer> {
  const label = enc.encode("stoken-held-v1");
  const r = enc.encode(remote);
  const l = enc.encode(local);
  const out = new Uint8Array(label.length + 8 + r.length + l.length);
  const v = new DataView(out.buffer);
  out.set(label, 0);
  let at = label.length;
  v.setUint32(at, r.length);
  out.set(r, at + 4);
  at += 4 + r.length;
  v.setUint32(at, l.length);
  out.set(l, at + 4);
  return out;
}

function sameString(a: string, b: string): boolean {
  // Not secret-dependent in a way that matters (both are tokens for the same pair), but
  // cheap to make constant-time anyway.
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

export class HeldTokens {
  readonly #db: Db;
  readonly #key: Promise<CryptoKey>;
  readonly #now: () => number;

  constructor(db: Db, keyFile: KeyFile, now: () => number = Date.now) {
    this.#db = db;
    this.#now = now;
    const raw = Uint8Array.fromBase64(keyFile.held_token_key, { alphabet: "base64url" });
    if (raw.length !== 32) throw new Error("Held token key must be 32 bytes");
    // Imported once; the promise is awaited by each operation.
    this.#key = crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
  }

  /**
   * Store `token` as the one to present when delivering from `local` (ours) to `remote`.
   * Returns false when an existing token that has worked was kept (overwriteWorking false).
   * The same token again only updates its expiry and source: its success record stays.
   */
  async put(remote: string, local: string, token: string, opts: PutOptions): Promise<boolean> {
    if (!TOKEN_SYNTAX.test(token)) throw new Error("Held token is not a valid token string");
    if (!SOURCES.includes(opts.source)) {
      throw new Error(`Unknown held token source "${opts.source}"`);
    }
    const r = normalize(remote);
    const l = normalize(local);
    const expires = opts.expires === undefined ? null : Math.floor(opts.expires.getTime() / 1000);
    const existing = await this.#read(r, l);
    if (existing !== null && existing.token !== null && sameString(existing.token, token)) {
      await this.#db.execute({
        sql: "UPDATE held_tokens SET expires = ?, source = ? WHERE remote = ? AND local = ?",
        args: [expires, opts.source, r, l],
      });
      return true;
    }
    const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
    const ciphertext = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv, additionalData: additionalData(r, l) },
        await this.#key,
        enc.encode(token),
      ),
    );
    // The WHERE of the upsert is the rule, checked atomically against the row as it is.
    const rs = await this.#db.execute({
      sql:
        `INSERT INTO held_tokens (remote, local, iv, ciphertext, expires, source, created, last_success)
        VALUES (?, ?, ?, ?, ?, ?, ?, NULL)
        ON CONFLICT (remote, local) DO UPDATE SET iv = excluded.iv,
          ciphertext = excluded.ciphertext, expires = excluded.expires, source = excluded.source,
          created = excluded.created, last_success = NULL
        WHERE ? OR held_tokens.last_success IS NULL`,
      args: [
        r,
        l,
        iv,
        ciphertext,
        expires,
        opts.source,
        Math.floor(this.#now() / 1000),
        // A row that no longer decrypts is useless however well it once worked.
        opts.overwriteWorking || (existing !== null && existing.token === null) ? 1 : 0,
      ],
    });
    return rs.rowsAffected === 1;
  }

  /**
   * The token held for the pair, or null when there is none, it has expired, or it no
   * longer decrypts (a replaced held_token_key): the caller then relays instead.
   */
  async get(remote: string, local: string): Promise<HeldToken | null> {
    const row = await this.#read(normalize(remote), normalize(local));
    if (row === null || row.token === null) return null;
    if (row.expires !== null && this.#now() >= row.expires.getTime()) return null;
    return {
      token: row.token,
      source: row.source,
      expires: row.expires,
      lastSuccess: row.lastSuccess,
    };
  }

  /** A delivery with the held token succeeded: from now on a header token does not replace it. */
  async markSuccess(remote: string, local: string): Promise<void> {
    await this.#db.execute({
      sql: "UPDATE held_tokens SET last_success = ? WHERE remote = ? AND local = ?",
      args: [Math.floor(this.#now() / 1000), normalize(remote), normalize(local)],
    });
  }

  /** The remote server refused the token (5.7.1, PROTOCOL §8): forget it. */
  async drop(remote: string, local: string): Promise<void> {
    await this.#db.execute({
      sql: "DELETE FROM held_tokens WHERE remote = ? AND local = ?",
      args: [normalize(remote), normalize(local)],
    });
  }

  async #read(
    r: string,
    l: string,
  ): Promise<
    {
      token: string | null;
      source: HeldTokenSource;
      expires: Date | null;
      lastSuccess: Date | null;
    } | null
  > {
    const rs = await this.#db.execute({
      sql: `SELECT iv, ciphertext, expires, source, last_success FROM held_tokens
        WHERE remote = ? AND local = ?`,
      args: [r, l],
    });
    const row = rs.rows[0];
    if (row === undefined) return null;
    const source = textOf(row, "source");
    if (!SOURCES.includes(source)) throw new TypeError(`Unknown held token source "${source}"`);
    const expires = intOrNull(row, "expires");
    const lastSuccess = intOrNull(row, "last_success");
    let token: string | null = null;
    try {
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: blobOf(row, "iv"), additionalData: additionalData(r, l) },
        await this.#key,
        blobOf(row, "ciphertext"),
      );
      token = dec.decode(plain);
    } catch {
      token = null;
    }
    return {
      token,
      source: source as HeldTokenSource,
      expires: expires === null ? null : new Date(expires * 1000),
      lastSuccess: lastSuccess === null ? null : new Date(lastSuccess * 1000),
    };
  }
}
