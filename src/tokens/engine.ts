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
}

const DAY_S = 24 * 60 * 60;

export const DEFAULT_POLICY: TokenPolicy = Object.freeze({
  tempLifetimeS: 7 * DAY_S,
  permLifetimeS: 365 * DAY_S,
  refreshFraction: 0.25,
  graceS: 7 * DAY_S,
});

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
  const seconds = ["tempLifetimeS", "permLifetimeS", "graceS"] as const;
  for (const k of seconds) {
    const v = p[k];
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

export class TokenEngine {
  readonly #ring: KeyRing;
  readonly #store: TokenStore;
  readonly #policy: TokenPolicy;
  readonly #now: () => number;

  private constructor(ring: KeyRing, store: TokenStore, policy: TokenPolicy, now: () => number) {
    this.#ring = ring;
    this.#store = store;
    this.#policy = policy;
    this.#now = now;
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
  getOrCreatePerm(remote: string, local: string): Promise<{ token: string; created: boolean }> {
    return this.#ensurePerm(normalizeAddress(remote), normalizeAddress(local), false);
  }

  /**
   * The pair's current permanent token if it is usable (and, with `refreshIfDue`, not due
   * for refresh); otherwise a new one, stored before it is returned. A refreshed token
   * stays valid as `previous` for the grace period (PROTOCOL §5).
   */
  async #ensurePerm(
    r: string,
    l: string,
    refreshIfDue: boolean,
  ): Promise<{ token: string; created: boolean }> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const state = await this.#store.get(r, l);
      const generation = state?.generation ?? 0;
      const cur = state?.current ?? null;
      let previous: PreviousPermRecord | null = null;
      if (cur && this.#alive(cur.expiresS)) {
        const existing = this.#permString(r, l, generation, cur);
        if (existing !== null) {
          if (!refreshIfDue || !this.#refreshDue(cur)) return { token: existing, created: false };
          previous = {
            ...cur,
            graceUntilS: Math.min(this.#nowS() + this.#policy.graceS, cur.expiresS),
          };
        }
        // A current token under a key that left the key file is unusable: replace it.
      }
      const next: PermRecord = {
        keyId: this.#ring.currentId,
        nonce: crypto.getRandomValues(new Uint8Array(NONCE_BYTES)),
        issuedS: this.#nowS(),
        expiresS: this.#expiry(this.#policy.permLifetimeS),
      };
      const token = this.#permString(r, l, generation, next);
      if (token === null) throw new Error("Current token key is missing");
      const expect = { generation, currentNonce: cur?.nonce ?? null };
      if (await this.#store.replacePerm(r, l, expect, next, previous)) {
        return { token, created: true };
      }
      // Another instance changed the pair meanwhile (issued, refreshed or revoked): reread.
    }
    throw new Error("Permanent token could not be stored: the pair keeps changing");
  }

  #refreshDue(r: PermRecord): boolean {
    const leftMs = r.expiresS * 1000 - this.#now();
    return leftMs < this.#policy.refreshFraction * this.#policy.permLifetimeS * 1000;
  }

  /** REVSTOKEN: every token of the pair, temporary and permanent, stops working at once. */
  async revoke(remote: string, local: string): Promise<void> {
    await this.#store.revoke(normalizeAddress(remote), normalizeAddress(local));
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

  /** RCPT STOKEN=: full check against the pair, including generation and current-ness. */
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
    if (d.fields.kind === "temp") return { ok: true, kind: "temp" };
    return this.#isLivePerm(d.fields, state) ? { ok: true, kind: "perm" } : { ok: false };
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
   * Remote Client of the remote user moves to it. Stores before returning; updates last_used.
   */
  async afterDelivery(
    remote: string,
    local: string,
    used: TokenKind,
    token?: string,
  ): Promise<string | null> {
    const r = normalizeAddress(remote);
    const l = normalizeAddress(local);
    const perm = await this.#ensurePerm(r, l, true);
    await this.#store.touch(r, l, this.#nowS());
    if (used === "temp" || perm.created) return perm.token;
    if (token !== undefined && !sameString(token, perm.token)) return perm.token;
    return null;
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

const enc = new TextEncoder();

function sameString(a: string, b: string): boolean {
  return sameBytes(enc.encode(a), enc.encode(b));
}
