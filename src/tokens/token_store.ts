// What the token engine keeps per (remote, local) pair. Never a token, never a hash of
// one: only the metadata from which the engine, holding the secret key, recomputes the
// permanent token (PROTOCOL §5: nothing in the database alone lets anyone deliver).
// Addresses reach the store already normalized (lower-case).

/** The metadata of one permanent token; with the pair's generation it fixes the token. */
export interface PermRecord {
  readonly keyId: string;
  /** NONCE_BYTES random bytes. */
  readonly nonce: Uint8Array;
  readonly issuedS: number;
  readonly expiresS: number;
}

/** The permanent token replaced at the last refresh, valid until graceUntilS. */
export interface PreviousPermRecord extends PermRecord {
  readonly graceUntilS: number;
}

export interface PairState {
  /** Bumped by every revocation; a token carrying another generation is dead. */
  readonly generation: number;
  readonly current: PermRecord | null;
  readonly previous: PreviousPermRecord | null;
  /**
   * Last delivery on the pair, to within the engine's lastUsedGranularityS (5 minutes by
   * default): it is written only when the stored value is that old.
   */
  readonly lastUsedS: number | null;
}

/** What to expect in the row for a compare-and-set (no row = generation 0, no current). */
export interface PermExpectation {
  readonly generation: number;
  readonly currentNonce: Uint8Array | null;
}

/** Every method throws when the store fails: the session answers 451 (PROTOCOL §4, §6). */
export interface TokenStore {
  /** The pair's state, or null when it has none (generation 0, no permanent token). */
  get(remote: string, local: string): Promise<PairState | null>;
  /**
   * Set the permanent token slots, only if the pair still has the expected generation and
   * current nonce (so two instances sharing the store never both replace the same token).
   * Returns whether the write happened.
   */
  replacePerm(
    remote: string,
    local: string,
    expect: PermExpectation,
    current: PermRecord,
    previous: PreviousPermRecord | null,
  ): Promise<boolean>;
  /** Bump the generation (creating the row) and drop both permanent tokens, atomically. */
  revoke(remote: string, local: string): Promise<void>;
  /** Record a delivery on the pair (no-op when the pair has no row); not on every delivery. */
  touch(remote: string, local: string, atS: number): Promise<void>;
  /** Pairs that have a current permanent token, optionally only those of one local address. */
  list(local?: string): Promise<{ remote: string; local: string; state: PairState }[]>;
}
