// DNS lookups for discovery (SRV, RFC 2782 / RFC 6186; MX, RFC 5321 §5.1), on the
// node:dns/promises Resolver, which Deno 2 and Bun both implement, so that tests and small
// setups can point it at their own server ("127.0.0.1:5353").
import { Resolver } from "node:dns/promises";

export interface SrvRecord {
  /** Target host name without the trailing dot; "" or "." is the "no service" target. */
  name: string;
  port: number;
  priority: number;
  weight: number;
}

export interface MxRecord {
  exchange: string;
  priority: number;
}

export interface DnsResolver {
  srv(name: string): Promise<SrvRecord[]>;
  mx(name: string): Promise<MxRecord[]>;
  /** IPv4 addresses of name. */
  a(name: string): Promise<string[]>;
}

export interface ResolverOptions {
  /** Per-query timeout. Default 5000 ms. */
  timeoutMs?: number;
  /** Attempts per server before giving up. Default 2. */
  tries?: number;
}

// "The name does not exist" and "it has no record of this type" are answers, not failures.
// Deno reports both (and also a REFUSED answer) as ENOTFOUND; node uses ENOTFOUND and ENODATA.
const NO_RECORDS = new Set(["ENOTFOUND", "ENODATA"]);

async function orEmpty<T>(lookup: Promise<T[]>): Promise<T[]> {
  try {
    return await lookup;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && NO_RECORDS.has(code)) return [];
    throw e;
  }
}

/**
 * A resolver using `servers` ("ip", "ip:port" or "[ipv6]:port"); an empty list, or a list
 * holding only "", uses the system's resolver configuration.
 */
export function makeResolver(servers: string[], opts: ResolverOptions = {}): DnsResolver {
  const r = new Resolver({ timeout: opts.timeoutMs ?? 5000, tries: opts.tries ?? 2 });
  const list = servers.filter((s) => s !== "");
  if (list.length > 0) {
    try {
      r.setServers(list);
    } catch (e) {
      throw new Error(`Invalid DNS server list "${list.join(",")}": ${(e as Error).message}`);
    }
  }
  return {
    srv: async (name) =>
      (await orEmpty(r.resolveSrv(name))).map((x) => ({
        name: x.name,
        port: x.port,
        priority: x.priority,
        weight: x.weight,
      })),
    mx: async (name) =>
      (await orEmpty(r.resolveMx(name))).map((x) => ({
        exchange: x.exchange,
        priority: x.priority,
      })),
    a: (name) => orEmpty(r.resolve4(name)),
  };
}
