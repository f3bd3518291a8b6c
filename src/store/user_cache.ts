// Recipient lookups happen once per RCPT, and a database round trip costs about 130 µs
// here (five recipients: most of a message's budget). Answers are kept for a short time;
// a user added, removed or re-aliased is seen within `ttlMs` by every instance sharing
// the database. Passwords are never cached: each AUTH reads the stored hash.
import type { LocalUser, UserDirectory } from "../session/deps.ts";
import { normalizeAddress } from "../protocol/address.ts";

/** Most addresses kept; the oldest are dropped first (a map keeps insertion order). */
const MAX_ENTRIES = 10_000;

export class CachedUsers implements UserDirectory {
  readonly #inner: UserDirectory;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, { user: LocalUser | null; until: number }>();

  constructor(inner: UserDirectory, ttlMs = 2000, now: () => number = Date.now) {
    this.#inner = inner;
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  async lookup(address: string): Promise<LocalUser | null> {
    const key = normalizeAddress(address) ?? address;
    const now = this.#now();
    const hit = this.#cache.get(key);
    if (hit && hit.until > now) return hit.user;
    const user = await this.#inner.lookup(address);
    this.#cache.delete(key);
    if (this.#cache.size >= MAX_ENTRIES) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(key, { user, until: now + this.#ttlMs });
    return user;
  }

  verifyPassword(username: string, password: string): Promise<LocalUser | null> {
    return this.#inner.verifyPassword(username, password);
  }

  async owns(user: LocalUser, address: string): Promise<boolean> {
    const owner = await this.lookup(address);
    return owner !== null && owner.address === user.address;
  }
}
