// Failed-authentication accounting per client address (brute-force defence, RFC 4954 §4
// leaves the policy to the server). A fixed window starts at an address's first failure.
import type { AuthGuard } from "../session/deps.ts";

export interface AuthGuardOptions {
  /** Failures within the window that block the address; 0 disables blocking. */
  readonly limit: number;
  readonly windowS: number;
  /** Minimum duration of a failed attempt (pacing), in ms. */
  readonly delayMs: number;
  /** Most addresses tracked at once; beyond it the oldest window is forgotten. */
  readonly maxEntries?: number;
}

interface Entry {
  start: number;
  failures: number;
}

const DEFAULT_MAX_ENTRIES = 100_000;

export class AuthGuardByIp implements AuthGuard {
  readonly failureDelayMs: number;
  #limit: number;
  #windowMs: number;
  #max: number;
  #now: () => number;
  // Insertion order is window-start order (an entry is re-inserted when its window restarts),
  // so expired entries and eviction candidates are always at the front.
  #entries = new Map<string, Entry>();

  constructor(opts: AuthGuardOptions, now: () => number = Date.now) {
    this.#limit = opts.limit;
    this.#windowMs = opts.windowS * 1000;
    this.failureDelayMs = opts.delayMs;
    this.#max = Math.max(1, opts.maxEntries ?? DEFAULT_MAX_ENTRIES);
    this.#now = now;
  }

  /** Addresses currently tracked (for tests and metrics). */
  get size(): number {
    return this.#entries.size;
  }

  blocked(ip: string): boolean {
    if (this.#limit <= 0) return false;
    const e = this.#current(ip, this.#now());
    return e !== undefined && e.failures >= this.#limit;
  }

  fail(ip: string): boolean {
    const now = this.#now();
    this.#prune(now);
    let e = this.#current(ip, now);
    if (e === undefined) {
      this.#entries.delete(ip);
      if (this.#entries.size >= this.#max) {
        const oldest = this.#entries.keys().next();
        if (!oldest.done) this.#entries.delete(oldest.value);
      }
      e = { start: now, failures: 0 };
      this.#entries.set(ip, e);
    }
    e.failures++;
    return this.#limit > 0 && e.failures >= this.#limit;
  }

  /** The entry for `ip` if its window is still open. */
  #current(ip: string, now: number): Entry | undefined {
    const e = this.#entries.get(ip);
    return e !== undefined && now - e.start < this.#windowMs ? e : undefined;
  }

  #prune(now: number): void {
    for (const [ip, e] of this.#entries) {
      if (now - e.start < this.#windowMs) break;
      this.#entries.delete(ip);
    }
  }
}
