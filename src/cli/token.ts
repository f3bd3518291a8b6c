// `stoken token gen|revoke|list`: the administrator's side of GENSTOKEN / REVSTOKEN
// (PROTOCOL §4). `list` shows pairs and dates, never a token.
import type { Config } from "../config.ts";
import { normalizeAddress } from "../protocol/address.ts";
import type { Db } from "../store/db.ts";
import { Users } from "../store/users.ts";
import type { TokenEngine, TokenListEntry } from "../tokens/engine.ts";
import { parseSubcommand } from "./args.ts";
import { openContext } from "./context.ts";

const USAGE = `usage:
  stoken token gen (temp|perm) REMOTE LOCAL [--config FILE]
                      print a token for the pair (perm: the existing one if there is one)
  stoken token revoke REMOTE LOCAL [--config FILE]
                      revoke every token of the pair, temporary and permanent
  stoken token list [LOCAL] [--config FILE]
                      list permanent tokens (pair, issued, expires, last used: within 5 minutes)`;

class UsageError extends Error {
  override name = "UsageError";
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseSubcommand(args, USAGE);
  if (typeof parsed === "number") return parsed;
  const values = parsed;
  const [sub, ...rest] = parsed.positionals;
  try {
    switch (sub) {
      case "gen":
        return await withEngine(values.config, (c) => gen(c, rest));
      case "revoke":
        return await withEngine(values.config, (c) => revoke(c, rest));
      case "list":
        return await withEngine(values.config, (c) => list(c, rest));
      default:
        throw new UsageError(
          sub === undefined ? "Missing subcommand" : `Unknown subcommand "${sub}"`,
        );
    }
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`${e.message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
}

interface Ctx {
  config: Config;
  db: Db;
  engine: TokenEngine;
}

async function withEngine(
  flag: string | undefined,
  fn: (c: Ctx) => Promise<number>,
): Promise<number> {
  const ctx = await openContext(flag);
  try {
    return await fn({ config: ctx.config, db: ctx.db, engine: ctx.tokens });
  } finally {
    ctx.close();
  }
}

function address(input: string | undefined, what: "remote" | "local"): string {
  if (input === undefined) throw new UsageError(`Missing ${what} address`);
  const a = normalizeAddress(input.replace(/^<(.*)>$/, "$1"));
  if (a === null) throw new UsageError(`Incorrect ${what} address: "${input}"`);
  return a;
}

function pair(rest: string[]): { remote: string; local: string } {
  if (rest.length > 2) throw new UsageError(`Unexpected argument "${rest[2]}"`);
  return { remote: address(rest[0], "remote"), local: address(rest[1], "local") };
}

async function gen(c: Ctx, rest: string[]): Promise<number> {
  const [kind, ...addrs] = rest;
  if (kind !== "temp" && kind !== "perm") {
    throw new UsageError(
      kind === undefined ? "Missing token kind" : `Token kind must be temp or perm: "${kind}"`,
    );
  }
  const { remote, local } = pair(addrs);
  // PROTOCOL §4: the local address must be one of our users (or aliases).
  const users = new Users(c.db, new Set(c.config.domains));
  if ((await users.lookup(local)) === null) {
    console.error(`Not a local user: "${local}"`);
    return 1;
  }
  if (kind === "temp") {
    console.log(await c.engine.generateTemp(remote, local));
  } else {
    const { token, created } = await c.engine.getOrCreatePerm(remote, local);
    console.error(created ? "Permanent token generated." : "Permanent token exists.");
    console.log(token);
  }
  return 0;
}

async function revoke(c: Ctx, rest: string[]): Promise<number> {
  const { remote, local } = pair(rest);
  await c.engine.revoke(remote, local);
  console.error(`All tokens of ${remote} -> ${local} revoked.`);
  return 0;
}

async function list(c: Ctx, rest: string[]): Promise<number> {
  if (rest.length > 1) throw new UsageError(`Unexpected argument "${rest[1]}"`);
  const local = rest[0] === undefined ? undefined : address(rest[0], "local");
  console.log(formatTable(await c.engine.list(local)));
  return 0;
}

function when(d: Date | null): string {
  return d === null ? "-" : d.toISOString().slice(0, 19).replace("T", " ") + "Z";
}

/** One line per pair, columns padded; never the token itself. */
export function formatTable(entries: readonly TokenListEntry[]): string {
  const rows = [
    ["REMOTE", "LOCAL", "KIND", "ISSUED", "EXPIRES", "LAST USED"],
    ...entries.map((
      e,
    ) => [e.remote, e.local, e.kind, when(e.issued), when(e.expires), when(e.lastUsed)]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join(
    "\n",
  );
}
