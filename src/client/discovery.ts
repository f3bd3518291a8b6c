// Where a domain's Token Server is (draft §7.2, PROTOCOL.md §8): the RFC 6186 submission SRV
// records, implicit TLS first (RFC 8314 §5.1), then STARTTLS, then the MX hosts (RFC 5321
// §5.1) on the submissions and submission ports. Only the order of the attempts is decided
// here; every connection must still be TLS with a certificate valid for `host`.
import type { DnsResolver, MxRecord, SrvRecord } from "../net/dns.ts";

export interface Target {
  /** Host name the certificate must match (resolve it for the address). */
  host: string;
  port: number;
  tls: "implicit" | "starttls";
  source: "submissions-srv" | "submission-srv" | "mx";
  /** The address to connect to, when it was looked up through our own resolver. */
  address?: string;
}

export interface DiscoveryOptions {
  /** Random numbers in [0, 1) for the weighted and tie-breaking choices; default Math.random. */
  random?: () => number;
}

/** Submissions (implicit TLS) and submission (STARTTLS) ports, RFC 8314 §7.3 / RFC 6409 §3.1. */
const SUBMISSIONS_PORT = 465;
const SUBMISSION_PORT = 587;

// Dot-separated labels of letters, digits, "-" and "_" (A-labels for IDNs): nothing that
// could change the name queried.
const DOMAIN = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;

function hostName(name: string): string {
  return name.replace(/\.$/, "").toLowerCase();
}

function byPriority<T extends { priority: number }>(records: T[]): T[][] {
  const groups = new Map<number, T[]>();
  for (const r of records) {
    const g = groups.get(r.priority);
    if (g) g.push(r);
    else groups.set(r.priority, [r]);
  }
  return [...groups.keys()].sort((a, b) => a - b).map((k) => groups.get(k)!);
}

/**
 * RFC 2782 "Usage rules": lowest priority first; within one priority a weighted random order,
 * zero-weight records first in the running sum. Records are put in a fixed order before the
 * draw, so the result depends on `random` only, not on the order of the DNS answer.
 */
export function orderSrv(records: SrvRecord[], random: () => number): SrvRecord[] {
  const out: SrvRecord[] = [];
  for (const group of byPriority(records)) {
    const left = [...group].sort((a, b) =>
      (a.weight === 0 ? 0 : 1) - (b.weight === 0 ? 0 : 1) ||
      hostName(a.name).localeCompare(hostName(b.name)) || a.port - b.port
    );
    while (left.length > 0) {
      const total = left.reduce((s, r) => s + r.weight, 0);
      const pick = Math.floor(random() * (total + 1));
      let sum = 0;
      let i = 0;
      for (; i < left.length - 1; i++) {
        sum += left[i]!.weight;
        if (sum >= pick) break;
      }
      out.push(left.splice(i, 1)[0]!);
    }
  }
  return out;
}

/** RFC 5321 §5.1: lowest preference first, equal preferences in random order. */
export function orderMx(records: MxRecord[], random: () => number): MxRecord[] {
  const out: MxRecord[] = [];
  for (const group of byPriority(records)) {
    const left = [...group].sort((a, b) =>
      hostName(a.exchange).localeCompare(hostName(b.exchange))
    );
    while (left.length > 0) {
      const i = Math.min(Math.floor(random() * left.length), left.length - 1);
      out.push(left.splice(i, 1)[0]!);
    }
  }
  return out;
}

function srvTargets(
  records: SrvRecord[],
  tls: Target["tls"],
  source: Target["source"],
  random: () => number,
): Target[] {
  // A target of "." means the service is decidedly not available (RFC 2782; node reports
  // it as ""): the whole service is skipped, and port 0 cannot be connected to.
  if (records.some((r) => hostName(r.name) === "")) return [];
  return orderSrv(records, random)
    .filter((r) => r.port > 0 && r.port <= 65535)
    .map((r) => ({ host: hostName(r.name), port: r.port, tls, source }));
}

/**
 * The places to try for `domain`, in order, without duplicates. An empty list means the
 * domain has no Token Server to try (deliver through the relay). DNS failures other than
 * "no such name" / "no such record" reject.
 */
export async function discover(
  domain: string,
  resolver: DnsResolver,
  opts: DiscoveryOptions = {},
): Promise<Target[]> {
  const random = opts.random ?? Math.random;
  const d = hostName(domain);
  if (d.length > 253 || !DOMAIN.test(d)) throw new Error(`Invalid domain "${domain}"`);
  const [submissions, submission, mx] = await Promise.all([
    resolver.srv(`_submissions._tcp.${d}`),
    resolver.srv(`_submission._tcp.${d}`),
    resolver.mx(d),
  ]);
  const targets: Target[] = [
    ...srvTargets(submissions, "implicit", "submissions-srv", random),
    ...srvTargets(submission, "starttls", "submission-srv", random),
  ];
  // A null MX ("." at preference 0, RFC 7505) says the domain takes no mail at all.
  const hosts = orderMx(mx, random).map((r) => hostName(r.exchange)).filter((h) => h !== "");
  for (const host of hosts) {
    targets.push({ host, port: SUBMISSIONS_PORT, tls: "implicit", source: "mx" });
    targets.push({ host, port: SUBMISSION_PORT, tls: "starttls", source: "mx" });
  }
  const seen = new Set<string>();
  return targets.filter((t) => {
    const key = `${t.host}|${t.port}|${t.tls}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * With remote.dns_servers set, the host names discovery found are looked up there too: the
 * connection itself would ask the system resolver, which knows nothing of those servers.
 * One target per IPv4 address, in the resolver's order; a name without one is skipped.
 */
export async function withAddresses(
  targets: readonly Target[],
  resolver: DnsResolver,
): Promise<Target[]> {
  const addresses = new Map<string, Promise<string[]>>();
  const out: Target[] = [];
  for (const t of targets) {
    let lookup = addresses.get(t.host);
    if (!lookup) {
      lookup = resolver.a(t.host).catch(() => []);
      addresses.set(t.host, lookup);
    }
    for (const address of await lookup) {
      out.push({ ...t, address });
    }
  }
  return out;
}

/**
 * Discovery as the Remote Client uses it: with private DNS servers configured, the hosts
 * are looked up there too (connecting by name would ask the system resolver instead).
 */
export async function discoverTokenServer(
  domain: string,
  resolver: DnsResolver,
  privateDns: boolean,
): Promise<Target[]> {
  const targets = await discover(domain, resolver);
  return privateDns ? await withAddresses(targets, resolver) : targets;
}

/**
 * Discovery answers kept for `ttlMs` per domain: every token delivery would otherwise make
 * four DNS queries (about 2 ms on loopback). Failures are not kept.
 */
export class DiscoveryCache {
  readonly #lookup: (domain: string) => Promise<Target[]>;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, { targets: Target[]; until: number }>();

  constructor(lookup: (domain: string) => Promise<Target[]>, ttlMs = 60_000, now = Date.now) {
    this.#lookup = lookup;
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  async discover(domain: string): Promise<Target[]> {
    const key = domain.toLowerCase();
    const hit = this.#cache.get(key);
    if (hit && hit.until > this.#now()) return hit.targets;
    const targets = await this.#lookup(key);
    if (this.#cache.size >= 1000) this.#cache.clear();
    this.#cache.set(key, { targets, until: this.#now() + this.#ttlMs });
    return targets;
  }
}
