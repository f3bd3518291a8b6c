// Which recipients a submitted message already reached (PROTOCOL.md §7: a retry of the
// same message within 10 minutes is not delivered twice to the same recipient).
import type { RecentDeliveries } from "../session/deps.ts";
import type { Db } from "./db.ts";

/** How long a delivery is remembered. */
export const RECENT_WINDOW_S = 600;

export class LibsqlRecentDeliveries implements RecentDeliveries {
  readonly #db: Db;
  readonly #now: () => number;
  #lastPurge = 0;

  constructor(db: Db, now: () => number = Date.now) {
    this.#db = db;
    this.#now = now;
  }

  async delivered(sender: string, messageId: string): Promise<Set<string>> {
    const since = Math.floor(this.#now() / 1000) - RECENT_WINDOW_S;
    const rs = await this.#db.execute({
      sql: "SELECT rcpt FROM recent_deliveries WHERE sender = ? AND message_id = ? AND at >= ?",
      args: [sender, messageId, since],
    });
    return new Set(rs.rows.map((r) => String(r["rcpt"])));
  }

  async record(sender: string, messageId: string, rcpt: string): Promise<void> {
    const now = Math.floor(this.#now() / 1000);
    await this.#db.execute({
      sql: `INSERT INTO recent_deliveries (sender, message_id, rcpt, at) VALUES (?, ?, ?, ?)
        ON CONFLICT (sender, message_id, rcpt) DO UPDATE SET at = excluded.at`,
      args: [sender, messageId, rcpt, now],
    });
    // Forget old entries now and then, not on every message.
    if (now - this.#lastPurge >= 60) {
      this.#lastPurge = now;
      await this.#db.execute({
        sql: "DELETE FROM recent_deliveries WHERE at < ?",
        args: [now - RECENT_WINDOW_S],
      });
    }
  }
}
