// An in-memory TokenStore for engine unit tests, with the same compare-and-set semantics
// as the libSQL one, read and write counters and an optional failure switch.
import type {
  PairState,
  PermExpectation,
  PermRecord,
  PreviousPermRecord,
  TokenStore,
} from "../../src/tokens/engine.ts";

function key(remote: string, local: string): string {
  return JSON.stringify([remote, local]);
}

function sameNonce(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export class MemoryTokenStore implements TokenStore {
  readonly rows = new Map<string, { remote: string; local: string; state: PairState }>();
  reads = 0;
  writes = 0;
  /** Writes by kind of statement. */
  touches = 0;
  failing = false;

  #check(): void {
    if (this.failing) throw new Error("Store unavailable");
  }

  get(remote: string, local: string): Promise<PairState | null> {
    this.#check();
    this.reads++;
    return Promise.resolve(this.rows.get(key(remote, local))?.state ?? null);
  }

  replacePerm(
    remote: string,
    local: string,
    expect: PermExpectation,
    current: PermRecord,
    previous: PreviousPermRecord | null,
  ): Promise<boolean> {
    this.#check();
    this.writes++;
    const k = key(remote, local);
    const st = this.rows.get(k)?.state ??
      { generation: 0, current: null, previous: null, lastUsedS: null };
    if (
      st.generation !== expect.generation ||
      !sameNonce(st.current?.nonce ?? null, expect.currentNonce)
    ) {
      return Promise.resolve(false);
    }
    this.rows.set(k, { remote, local, state: { ...st, current, previous } });
    return Promise.resolve(true);
  }

  revoke(remote: string, local: string): Promise<void> {
    this.#check();
    this.writes++;
    const k = key(remote, local);
    const st = this.rows.get(k)?.state;
    this.rows.set(k, {
      remote,
      local,
      state: {
        generation: (st?.generation ?? 0) + 1,
        current: null,
        previous: null,
        lastUsedS: st?.lastUsedS ?? null,
      },
    });
    return Promise.resolve();
  }

  touch(remote: string, local: string, atS: number): Promise<void> {
    this.#check();
    this.writes++;
    this.touches++;
    const row = this.rows.get(key(remote, local));
    if (row) row.state = { ...row.state, lastUsedS: atS };
    return Promise.resolve();
  }

  list(local?: string): Promise<{ remote: string; local: string; state: PairState }[]> {
    this.#check();
    return Promise.resolve(
      [...this.rows.values()].filter((r) =>
        r.state.current !== null && (local === undefined || r.local === local)
      ),
    );
  }
}
