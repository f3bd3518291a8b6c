// The token engine: issues, verifies, refreshes and revokes submission tokens (draft §5,
// PROTOCOL §4–§6).
//
// Temporary tokens are self-verifying and not stored (draft §5.3.1): valid when their MACs
// verify under a known key, they have not expired, and their generation is the pair's
// current one. Permanent tokens (draft §5.3.2) are one per pair plus, after a refresh, the
// previous one for a grace period; the store holds their metadata and the engine
// recomputes the token string, so GENSTOKEN PERM can return the existing token unchanged.
// Revocation bumps the pair's generation: every token of the pair dies at once, on every
// instance sharing the store, and a token issued in the same second afterwards works.
//
// The delivery path reads the store once per recipient: verify() at RCPT reads the pair
// (the generation must come from the store every time, or a revocation on another instance
// would not be immediate) and keeps that state for a short while, so afterDelivery() at the
// end of DATA decides from it without a second read and without minting the token again.
// It writes only when it must: a new or refreshed permanent token (compare-and-set, reread on
// conflict) and, at most once per pair per `lastUsedGranularityS`, the pair's last use.
import type { KeyFile } from "../store/key_file.ts";
import { KeyRing, normalizeAddress, sameBytes } from "./key_ring.ts";
import {
  type DecodedToken,
  decodeToken,
  encodeHeader,
  encodeToken,
  NONCE_BYTES,
  type TokenFields,
  U32_MAX,
} from "./token_codec.ts";
import type { TokenKind } from "./token_kind.ts";
import type { PairState, PermRecord, PreviousPermRecord, TokenStore } from "./token_store.ts";

export { isTokenString } from "./token_codec.ts";
export type { TokenKind } from "./token_kind.ts";
export type {
  PairState,
  PermExpectation,
  PermRecord,
  PreviousPermRecord,
  TokenStore,
} from "./token_store.ts";

export interface TokenPolicy {
  /** Lifetime of a temporary token; draft §5.3.1: one week. */
  readonly tempLifetimeS: number;
  /** Lifetime of a permanent token; draft §5.3.2: one year. */
  readonly permLifetimeS: number;
  /** Refresh a permanent token at delivery when less than this part of its lifetime is left. */
  readonly refreshFraction: number;
  /** How long a refreshed permanent token stays valid (PROTOCOL §5: 7 days). */
  readonly graceS: number;
  /**
   * A delivery writes the pair's last use only when the stored one is at least this old, so
   * `stoken token list` is at most this far behind (a write per delivery was a WAL commit on
   * the delivery path). Default: LAST_USED_GRANULARITY_S.
   */
  readonly lastUsedGranularityS?: number;
}

const DAY_S = 24 * 60 * 60;

/** `token list` shows the last use to within 5 minutes. */
export const LAST_USED_GRANULARITY_S = 5 * 60;

export const DEFAULT_POLICY: TokenPolicy = Object.freeze({
  tempLifetimeS: 7 * DAY_S,
  permLifetimeS: 365 * DAY_S,
  refreshFraction: 0.25,
  graceS: 7 * DAY_S,
  lastUsedGranularityS: LAST_USED_GRANULARITY_S,
});

/**
 * How long the pair state read by verify() at RCPT may stand in for a reread at the end of
 * DATA. Older means a slow transaction: it reads again. A stale state can only make the
 * engine keep a token one delivery longer or retry a compare-and-set, never accept a token.
 */
const VERIFIED_STATE_MS = 60_000;
/** Pairs whose verified state is kept at once (most recently verified first to stay). */
const VERIFIED_STATE_MAX = 4096;

export type VerifyResult = { ok: true; kind: TokenKind } | { ok: false };

export interface TokenListEntry {
  remote: string;
  local: string;
  kind: TokenKind;
  issued: Date;
  expires: Date;
  lastUsed: Date | null;
}

/** Concurrent writers on one pair are rare; a few rereads settle any race. */
const MAX_ATTEMPTS = 5;

function checkPolicy(p: TokenPolicy): void {
  const seconds = ["tempLifetimeS", "permLifetimeS", "graceS", "lastUsedGranularityS"] as const;
  for (const k of seconds) {
    const v = p[k];
    if (v === undefined) continue; // only the optional one can be missing
    if (!Number.isInteger(v) || v < 0 || v > U32_MAX) {
      throw new RangeError(`Token policy "${k}" must be a whole number of seconds: "${v}"`);
    }
  }
  if (p.tempLifetimeS === 0 || p.permLifetimeS === 0) {
    throw new RangeError("Token lifetimes must be at least 1 second");
  }
  if (!(p.refreshFraction >= 0 && p.refreshFraction <= 1)) {
    throw new RangeError(
      `Token policy "refreshFraction" must be between 0 and 1: "${p.refreshFraction}"`,
    );
  }
}

function sameNonce(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a !== undefined && b !== undefined && sameBytes(a, b);
}

function sameRecord(f: TokenFields, r: PermRecord): boolean {
  return f.keyId === r.keyId && f.expiresS === r.expiresS && sameNonce(f.nonce, r.nonce);
}

/** What verify() read for a pair, and when (engine clock, ms). */
interface Verified {
  readonly state: PairState | null;
  readonly atMs: number;
}

/** The outcome of #ensurePerm. */
interface PermOutcome {
  /**
   * The pair's current permanent token; null when it is the caller's own token (`used`,
   * not minted again), or when the pair was revoked after `used` was verified.
   */
  readonly token: string | null;
  readonly created: boolean;
  /** The generation of `used` is no longer the pair's: it was revoked meanwhile. */
  readonly revoked: boolean;
  /** The state the decision was made on (before this call's own write, if any). */
  readonly state: PairState | null;
}

export class TokenEngine {
  readonly #ring: KeyRing;
  readonly #store: TokenStore;
  readonly #policy: TokenPolicy;
  readonly #now: () => number;
  readonly #lastUsedGranularityS: number;
  /** Pair state read at RCPT (verify), for the delivery that follows; key: pairKey(). */
  readonly #verified = new Map<string, Verified>();

  private constructor(ring: KeyRing, store: TokenStore, policy: TokenPolicy, now: () => number) {
    this.#ring = ring;
    this.#store = store;
    this.#policy = policy;
    this.#now = now;
    this.#lastUsedGranularityS = policy.lastUsedGranularityS ?? LAST_USED_GRANULARITY_S;
  }

  static create(
    keyFile: KeyFile,
    store: TokenStore,
    policy: TokenPolicy = DEFAULT_POLICY,
    now: () => number = Date.now,
  ): Promise<TokenEngine> {
    // Bad keys or policy reject the promise (not a synchronous throw).
    try {
      checkPolicy(policy);
      const ring = new KeyRing(keyFile);
      return Promise.resolve(new TokenEngine(ring, store, { ...policy }, now));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #nowS(): number {
    return Math.floor(this.#now() / 1000);
  }

  #expiry(lifetimeS: number): number {
    const e = this.#nowS() + lifetimeS;
    if (e > U32_MAX) throw new RangeError(`Token expiry out of range: "${e}"`);
    return e;
  }

  /** Still usable at this instant (expiry is exclusive). */
  #alive(untilS: number): boolean {
    return this.#now() < untilS * 1000;
  }

  #mint(fields: TokenFields, remote: string, local: string): string | null {
    const header = encodeHeader(fields);
    const macLocal = this.#ring.macLocal(fields.keyId, header, local);
    const macPair = this.#ring.macPair(fields.keyId, header, remote, local);
    if (!macLocal || !macPair) return null;
    return encodeToken(header, macLocal, macPair);
  }

  #permString(remote: string, local: string, generation: number, r: PermRecord): string | null {
    return this.#mint(
      { kind: "perm", keyId: r.keyId, expiresS: r.expiresS, generation, nonce: r.nonce },
      remote,
      local,
    );
  }

  /** Keep what verify() read for the delivery that follows (most recent last in the Map). */
  #remember(r: string, l: string, state: PairState | null): void {
    const key = pairKey(r, l);
    this.#verified.delete(key);
    this.#verified.set(key, { state, atMs: this.#now() });
    if (this.#verified.size > VERIFIED_STATE_MAX) {
      const oldest = this.#verified.keys().next();
      if (!oldest.done) this.#verified.delete(oldest.value);
    }
  }

  /** The state verify() read for the pair, if recent enough; undefined: read the store. */
  #recall(r: string, l: string): PairState | null | undefined {
    const key = pairKey(r, l);
    const v = this.#verified.get(key);
    if (v === undefined) return undefined;
    const age = this.#now() - v.atMs;
    if (age < 0 || age > VERIFIED_STATE_MS) {
      this.#verified.delete(key);
      return undefined;
    }
    return v.state;
  }

  /** This engine wrote the pair: what verify() read is out of date. */
  #forget(r: string, l: string): void {
    this.#verified.delete(pairKey(r, l));
  }

  /** GENSTOKEN TEMP: always a fresh token (new nonce), for the pair's current generation. */
  async generateTemp(remote: string, local: string): Promise<string> {
    const r = normalizeAddress(remote);
    const l = normalizeAddress(local);
    const state = await this.#store.get(r, l);
    const token = this.#mint(
      {
        kind: "temp",
        keyId: this.#ring.currentId,
        expiresS: this.#expiry(this.#policy.tempLifetimeS),
        generation: state?.generation ?? 0,
        nonce: crypto.getRandomValues(new Uint8Array(NONCE_BYTES)),
      },
      r,
      l,
    );
    if (token === null) throw new Error("Current token key is missing");
    return token;
  }

  /** GENSTOKEN PERM: existing current permanent token (created: false) or a new one (created: true). */
  async getOrCreatePerm(
    remote: string,
    local: string,
  ): Promise<{ token: string; created: boolean }> {
    const { token, created } = await this.#ensurePerm(
      normalizeAddress(remote),
      normalizeAddress(local),
      false,
      undefined,
      null,
    );
    // Without a `used` token the outcome always carries the token string.
    if (token === null) throw new Error("Permanent token could not be made");
    return { token, created };
  }

  /**
   * The pair's current permanent token if it is usable (and, with `refreshIfDue`, not due
   * for refresh); otherwise a new one, stored before it is returned. A refreshed token
   * stays valid as `previous` for the grace period (PROTOCOL §5).
   *
   * `known`: the pair state to decide on first instead of reading it (undefined: read).
   * `used`: the fields of the verified token a delivery came with. When it is the current
   * permanent token it is not minted again (token: null); when its generation is no longer
   * the pair's, the pair was revoked since RCPT and nothing is issued (draft §5.4.2: REVSTOKEN
   * revokes all tokens of the pair, so a delivery one of them allowed earns no new one).
   */
  async #ensurePerm(
    r: string,
    l: string,
    refreshIfDue: boolean,
    known: PairState | null | undefined,
    used: TokenFields | null,
  ): Promise<PermOutcome> {
    let state = known;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (state === undefined) state = await this.#store.get(r, l);
      const generation = state?.generation ?? 0;
      if (used !== null && used.generation !== generation) {
        return { token: null, created: false, revoked: true, state };
      }
      const cur = state?.current ?? null;
      let previous: PreviousPermRecord | null = null;
      if (cur && this.#alive(cur.expiresS) && this.#ring.has(cur.keyId)) {
        const due = refreshIfDue && this.#refreshDue(cur);
        if (!due && used?.kind === "perm" && sameRecord(used, cur)) {
          return { token: null, created: false, revoked: false, state };
        }
        const existing = this.#permString(r, l, generation, cur);
        if (existing !== null) {
          if (!due) return { token: existing, created: false, revoked: false, state };
          previous = {
            ...cur,
            graceUntilS: Math.min(this.#nowS() + this.#policy.graceS, cur.expiresS),
          };
        }
      }
      // No current token, an expired one, or one under a key that left the key file: replace it.
      const next: PermRecord = {
        keyId: this.#ring.currentId,
        nonce: crypto.getRandomValues(new Uint8Array(NONCE_BYTES)),
        issuedS: this.#nowS(),
        expiresS: this.#expiry(this.#policy.permLifetimeS),
      };
      const token = this.#permString(r, l, generation, next);
      if (token === null) throw new Error("Current token key is missing");
      const expect = { generation, currentNonce: cur?.nonce ?? null };
      const stored = await this.#store.replacePerm(r, l, expect, next, previous);
      this.#forget(r, l);
      if (stored) return { token, created: true, revoked: false, state };
      // Another instance changed the pair meanwhile (issued, refreshed or revoked): reread.
      state = undefined;
    }
    throw new Error("Permanent token could not be stored: the pair keeps changing");
  }

  #refreshDue(r: PermRecord): boolean {
    const leftMs = r.expiresS * 1000 - this.#now();
    return leftMs < this.#policy.refreshFraction * this.#policy.permLifetimeS * 1000;
  }

  /** REVSTOKEN: every token of the pair, temporary and permanent, stops working at once. */
  async revoke(remote: string, local: string): Promise<void> {
    const r = normalizeAddress(remote);
    const l = normalizeAddress(local);
    this.#forget(r, l);
    try {
      await this.#store.revoke(r, l);
    } finally {
      // A verify() that read the pair while the revocation was in flight kept the old state.
      this.#forget(r, l);
    }
  }

  /** Syntax, known key and expiry; null when any fails. */
  #decodeLive(token: string): DecodedToken | null {
    const d = decodeToken(token);
    if (d === null || !this.#ring.has(d.fields.keyId)) return null;
    if (!this.#alive(d.fields.expiresS)) return null;
    return d;
  }

  /**
   * AUTH STOKEN: does this token belong to `local` (any remote), unexpired, under a known
   * key? No store access: the remote and the generation are checked per RCPT (draft §7.3.1).
   */
  checkLocal(token: string, local: string): boolean {
    const d = this.#decodeLive(token);
    if (d === null) return false;
    const mac = this.#ring.macLocal(d.fields.keyId, d.header, normalizeAddress(local));
    return mac !== null && sameBytes(mac, d.macLocal);
  }

  /**
   * RCPT STOKEN=: full check against the pair, including generation and current-ness. The
   * pair is read from the store every time: a revocation anywhere is seen at the next RCPT.
   */
  async verify(token: string, remote: string, local: string): Promise<VerifyResult> {
    const d = this.#decodeLive(token);
    if (d === null) return { ok: false };
    const r = normalizeAddress(remote);
    const l = normalizeAddress(local);
    const { keyId } = d.fields;
    const macLocal = this.#ring.macLocal(keyId, d.header, l);
    const macPair = this.#ring.macPair(keyId, d.header, r, l);
    // Both MACs are computed and compared before deciding, so timing says nothing of which failed.
    const localOk = macLocal !== null && sameBytes(macLocal, d.macLocal);
    const pairOk = macPair !== null && sameBytes(macPair, d.macPair);
    if (!localOk || !pairOk) return { ok: false };
    const state = await this.#store.get(r, l);
    if (d.fields.generation !== (state?.generation ?? 0)) return { ok: false };
    if (d.fields.kind === "perm" && !this.#isLivePerm(d.fields, state)) return { ok: false };
    this.#remember(r, l, state);
    return { ok: true, kind: d.fields.kind };
  }

  #isLivePerm(f: TokenFields, state: PairState | null): boolean {
    if (state?.current && sameRecord(f, state.current)) return true;
    const prev = state?.previous;
    return prev != null && sameRecord(f, prev) && this.#alive(prev.graceUntilS);
  }

  /**
   * After a successful delivery (message on disk) with a verified token: a temporary token
   * earns a permanent token (draft §5.3.2), the pair's current one unless it is due for
   * refresh; a permanent token is refreshed when due (draft §5.3.2 "MAY refresh"), else
   * null (keep). When `token` (the one used) is given and is not the current permanent
   * token (the previous one, in its grace period), the current one is returned so every
   * Remote Client of the remote user moves to it. A token is returned only once stored.
   *
   * Decides on the state verify() read at RCPT when it is recent (no second read), and
   * records the pair's last use only when the stored one is lastUsedGranularityS old.
   */
  async afterDelivery(
    remote: string,
    local: string,
    used: TokenKind,
    token?: string,
  ): Promise<string | null> {
    const r = normalizeAddress(remote);
    const l = normalizeAddress(local);
    // The token was verified at RCPT; its fields are read again without the MACs.
    const fields = token === undefined ? null : decodeToken(token)?.fields ?? null;
    const out = await this.#ensurePerm(r, l, true, this.#recall(r, l), fields);
    await this.#touch(r, l, out.state);
    if (out.revoked) return null;
    if (used === "temp" || out.created) return out.token;
    if (out.token === null) return null; // the current one: keep it
    if (token !== undefined && !sameString(token, out.token)) return out.token;
    return null;
  }

  /** Record the pair's last use, unless the stored one is recent enough (see the policy). */
  async #touch(r: string, l: string, state: PairState | null): Promise<void> {
    const nowS = this.#nowS();
    const last = state?.lastUsedS ?? null;
    if (last !== null && nowS >= last && nowS - last < this.#lastUsedGranularityS) return;
    await this.#store.touch(r, l, nowS);
    const v = this.#verified.get(pairKey(r, l));
    if (v?.state) {
      this.#verified.set(pairKey(r, l), { ...v, state: { ...v.state, lastUsedS: nowS } });
    }
  }

  /** Current, unexpired permanent tokens (temporary tokens are not stored, so not listed). */
  async list(local?: string): Promise<TokenListEntry[]> {
    const rows = await this.#store.list(local === undefined ? undefined : normalizeAddress(local));
    const out: TokenListEntry[] = [];
    for (const { remote, local, state } of rows) {
      const cur = state.current;
      if (!cur || !this.#alive(cur.expiresS) || !this.#ring.has(cur.keyId)) continue;
      out.push({
        remote,
        local,
        kind: "perm",
        issued: new Date(cur.issuedS * 1000),
        expires: new Date(cur.expiresS * 1000),
        lastUsed: state.lastUsedS === null ? null : new Date(state.lastUsedS * 1000),
      });
    }
    out.sort((a, b) => a.local.localeCompare(b.local) || a.remote.localeCompare(b.remote));
    return out;
  }
}

/** Addresses contain no NUL (RFC 5321 mailboxes are printable ASCII or UTF-8 text). */
function pairKey(r: string, l: string): string {
  return r + "\0" + l;
}

const enc = new TextEncoder();

function sameString(a: string, b: string): boolean {
  return sameBytes(enc.encode(a), enc.encode(b));
}
