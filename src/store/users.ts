// Users and aliases in the database. Nothing is cached: several instances may share the
// database, and a user removed or an alias added on one must count on all at once.
import { normalizeAddress } from "../protocol/address.ts";
import type { LocalUser, UserDirectory } from "../session/deps.ts";
import type { Db } from "./db.ts";
import { DUMMY_HASH, hashPassword, verifyPassword } from "./password.ts";

export class UserError extends Error {
  override name = "UserError";
}

export interface UserInfo {
  readonly address: string;
  readonly aliases: readonly string[];
  readonly created: Date;
}

/** Which domains are ours: a set of lower-case domains or a predicate. */
export type LocalDomains = ReadonlySet<string> | ((domain: string) => boolean);

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf("@") + 1);
}

export class Users implements UserDirectory {
  readonly #isLocal: (domain: string) => boolean;

  constructor(private readonly db: Db, localDomains: LocalDomains) {
    this.#isLocal = typeof localDomains === "function" ? localDomains : (d) => localDomains.has(d);
  }

  async lookup(address: string): Promise<LocalUser | null> {
    const a = normalizeAddress(address);
    if (a === null) return null;
    const rs = await this.db.execute({
      sql: `SELECT address FROM users WHERE address = ?1
            UNION ALL SELECT address FROM aliases WHERE alias = ?1 LIMIT 1`,
      args: [a],
    });
    const found = rs.rows[0]?.["address"];
    return typeof found === "string" ? { address: found } : null;
  }

  /**
   * The AUTH username is the user's primary address (aliases do not log in), compared
   * case-insensitively through normalizeAddress. Unknown users cost one KDF run too.
   */
  async verifyPassword(username: string, password: string): Promise<LocalUser | null> {
    const a = normalizeAddress(username);
    let stored: string | null = null;
    if (a !== null) {
      const rs = await this.db.execute({
        sql: "SELECT password_hash FROM users WHERE address = ?",
        args: [a],
      });
      const h = rs.rows[0]?.["password_hash"];
      if (typeof h === "string") stored = h;
    }
    if (a === null || stored === null) {
      await verifyPassword(password, DUMMY_HASH);
      return null;
    }
    return (await verifyPassword(password, stored)) ? { address: a } : null;
  }

  async owns(user: LocalUser, address: string): Promise<boolean> {
    const owner = await this.lookup(address);
    return owner !== null && owner.address === user.address;
  }

  // --- Administration (the `stoken user` command) --------------------------------

  /** A canonical address in one of our domains, or a UserError naming the input. */
  #localAddress(input: string, what: string): string {
    const a = normalizeAddress(input);
    if (a === null) throw new UserError(`Invalid ${what} address: "${input}"`);
    const domain = domainOf(a);
    if (!this.#isLocal(domain)) {
      throw new UserError(`Domain "${domain}" of "${input}" is not in the configured domains`);
    }
    return a;
  }

  async add(address: string, password: string): Promise<LocalUser> {
    const a = this.#localAddress(address, "user");
    if (password.length === 0) throw new UserError("Empty password");
    const hash = await hashPassword(password);
    const tx = await this.db.transaction("write");
    try {
      // One name space for addresses and aliases: an address names one mailbox.
      const taken = await tx.execute({
        sql: `SELECT 'user' AS kind FROM users WHERE address = ?1
              UNION ALL SELECT 'alias' FROM aliases WHERE alias = ?1`,
        args: [a],
      });
      const kind = taken.rows[0]?.["kind"];
      if (kind === "user") throw new UserError(`User "${a}" already exists`);
      if (kind === "alias") throw new UserError(`"${a}" is already an alias`);
      await tx.execute({
        sql: "INSERT INTO users (address, password_hash, created_at) VALUES (?, ?, ?)",
        args: [a, hash, Math.floor(Date.now() / 1000)],
      });
      await tx.commit();
    } finally {
      tx.close();
    }
    return { address: a };
  }

  /** Remove a user and its aliases (the Maildir stays on disk). */
  async remove(address: string): Promise<void> {
    const a = normalizeAddress(address);
    if (a === null) throw new UserError(`Invalid user address: "${address}"`);
    // Aliases go explicitly too: a remote libSQL server may not enforce foreign keys.
    const [, deleted] = await this.db.batch([
      { sql: "DELETE FROM aliases WHERE address = ?", args: [a] },
      { sql: "DELETE FROM users WHERE address = ?", args: [a] },
    ], "write");
    if (deleted?.rowsAffected !== 1) throw new UserError(`No such user: "${a}"`);
  }

  async list(): Promise<UserInfo[]> {
    const users = await this.db.execute("SELECT address, created_at FROM users ORDER BY address");
    const aliases = await this.db.execute("SELECT alias, address FROM aliases ORDER BY alias");
    const byUser = new Map<string, string[]>();
    for (const row of aliases.rows) {
      const owner = String(row["address"]);
      const list = byUser.get(owner) ?? [];
      list.push(String(row["alias"]));
      byUser.set(owner, list);
    }
    return users.rows.map((row) => {
      const address = String(row["address"]);
      return {
        address,
        aliases: byUser.get(address) ?? [],
        created: new Date(Number(row["created_at"]) * 1000),
      };
    });
  }

  async addAlias(alias: string, address: string): Promise<void> {
    const al = this.#localAddress(alias, "alias");
    const a = normalizeAddress(address);
    if (a === null) throw new UserError(`Invalid user address: "${address}"`);
    const tx = await this.db.transaction("write");
    try {
      const user = await tx.execute({ sql: "SELECT 1 FROM users WHERE address = ?", args: [a] });
      if (user.rows.length === 0) throw new UserError(`No such user: "${a}"`);
      const taken = await tx.execute({
        sql: `SELECT address FROM users WHERE address = ?1
              UNION ALL SELECT address FROM aliases WHERE alias = ?1`,
        args: [al],
      });
      const owner = taken.rows[0]?.["address"];
      if (owner === al) throw new UserError(`"${al}" is a user, not an alias`);
      if (owner !== undefined) {
        throw new UserError(`Alias "${al}" already points to "${String(owner)}"`);
      }
      await tx.execute({
        sql: "INSERT INTO aliases (alias, address) VALUES (?, ?)",
        args: [al, a],
      });
      await tx.commit();
    } finally {
      tx.close();
    }
  }

  async removeAlias(alias: string): Promise<void> {
    const al = normalizeAddress(alias);
    if (al === null) throw new UserError(`Invalid alias address: "${alias}"`);
    const rs = await this.db.execute({ sql: "DELETE FROM aliases WHERE alias = ?", args: [al] });
    if (rs.rowsAffected !== 1) throw new UserError(`No such alias: "${al}"`);
  }
}
