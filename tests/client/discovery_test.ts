// Token Server discovery (draft §7.2, PROTOCOL.md §8): the ordering rules against a fake
// resolver, then the real thing against a dnsmasq, ending in a verified TLS session with
// the discovered server.
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { discover, orderMx, orderSrv, type Target } from "../../src/client/discovery.ts";
import type { DnsResolver, MxRecord, SrvRecord } from "../../src/net/dns.ts";
import { makeResolver } from "../../src/net/dns.ts";
import { SmtpClient } from "../../src/client/smtp_client.ts";
import { freePort, makeCerts, netTest, startDnsmasq } from "./_helpers.ts";
import { startServer } from "./_server.ts";

function fake(
  zone: { srv?: Record<string, SrvRecord[]>; mx?: Record<string, MxRecord[]>; fail?: string },
): DnsResolver & { asked: string[] } {
  const asked: string[] = [];
  const look = <T>(table: Record<string, T[]> | undefined, name: string): Promise<T[]> => {
    asked.push(name);
    if (zone.fail === name) return Promise.reject(new Error("SERVFAIL"));
    return Promise.resolve(table?.[name] ?? []);
  };
  return {
    asked,
    srv: (n) => look(zone.srv, n),
    mx: (n) => look(zone.mx, n),
    a: () => Promise.resolve([]),
  };
}

const srv = (name: string, port: number, priority = 0, weight = 0): SrvRecord => ({
  name,
  port,
  priority,
  weight,
});

const first = () => 0;

function brief(ts: Target[]): string[] {
  return ts.map((t) => `${t.source} ${t.host}:${t.port} ${t.tls}`);
}

Deno.test("order: submissions SRV, submission SRV, then each MX on 465 and 587", async () => {
  const r = fake({
    srv: {
      "_submissions._tcp.a.test": [srv("s2.a.test.", 465, 20), srv("s1.a.test.", 4465, 10)],
      "_submission._tcp.a.test": [srv("p1.a.test", 587, 0)],
    },
    mx: {
      "a.test": [{ exchange: "mx2.a.test", priority: 20 }, {
        exchange: "MX1.a.test.",
        priority: 5,
      }],
    },
  });
  assertEquals(brief(await discover("A.Test.", r, { random: first })), [
    "submissions-srv s1.a.test:4465 implicit",
    "submissions-srv s2.a.test:465 implicit",
    "submission-srv p1.a.test:587 starttls",
    "mx mx1.a.test:465 implicit",
    "mx mx1.a.test:587 starttls",
    "mx mx2.a.test:465 implicit",
    "mx mx2.a.test:587 starttls",
  ]);
  assertEquals(r.asked.sort(), ["_submission._tcp.a.test", "_submissions._tcp.a.test", "a.test"]);
});

Deno.test('a "." target means the service is not offered (RFC 2782)', async () => {
  const r = fake({
    srv: {
      "_submissions._tcp.a.test": [srv(".", 0)],
      // node reports the root target as "".
      "_submission._tcp.a.test": [srv("", 0), srv("p.a.test", 587)],
    },
    mx: { "a.test": [{ exchange: "mx.a.test", priority: 0 }] },
  });
  assertEquals(brief(await discover("a.test", r, { random: first })), [
    "mx mx.a.test:465 implicit",
    "mx mx.a.test:587 starttls",
  ]);
});

Deno.test("duplicates are dropped, the first place kept", async () => {
  const r = fake({
    srv: {
      "_submissions._tcp.a.test": [srv("mail.a.test", 465), srv("MAIL.a.test.", 465, 5)],
      "_submission._tcp.a.test": [srv("mail.a.test", 587)],
    },
    mx: { "a.test": [{ exchange: "mail.a.test", priority: 10 }] },
  });
  assertEquals(brief(await discover("a.test", r, { random: first })), [
    "submissions-srv mail.a.test:465 implicit",
    "submission-srv mail.a.test:587 starttls",
  ]);
});

Deno.test("a null MX adds nothing; no records at all is an empty list", async () => {
  const r = fake({ mx: { "a.test": [{ exchange: "", priority: 0 }] } });
  assertEquals(await discover("a.test", r), []);
  assertEquals(await discover("nothing.test", fake({})), []);
});

Deno.test("a DNS failure rejects rather than guessing", async () => {
  const r = fake({ fail: "_submissions._tcp.a.test" });
  await assertRejects(() => discover("a.test", r));
});

Deno.test("names that are not domains are refused", async () => {
  for (const bad of ["", ".", "a b.test", "a.test/x", "[127.0.0.1]", "a..test"]) {
    await assertRejects(() => discover(bad, fake({})), JSON.stringify(bad));
  }
});

Deno.test("SRV weights: zero weights first, heavier ones more likely (RFC 2782)", () => {
  const recs = [srv("b", 1, 0, 90), srv("a", 1, 0, 10), srv("z", 1, 0, 0), srv("p", 1, 1, 0)];
  // random 0 picks the first in the running sum: the zero-weight record, then "a".
  assertEquals(orderSrv(recs, first).map((r) => r.name), ["z", "a", "b", "p"]);
  // Just below 1 picks the end of the running sum: "b" (weight 90) first.
  assertEquals(orderSrv(recs, () => 0.999).map((r) => r.name), ["b", "a", "z", "p"]);
  // Over many draws "b" leads about nine times as often as "a".
  let seed = 1;
  const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const leads: Record<string, number> = {};
  for (let i = 0; i < 2000; i++) {
    const lead = orderSrv(recs.slice(0, 2), rand)[0]!.name;
    leads[lead] = (leads[lead] ?? 0) + 1;
  }
  assert(leads.b! > 5 * leads.a!, JSON.stringify(leads));
  // The order of the DNS answer does not matter, only the random numbers.
  assertEquals(orderSrv([...recs].reverse(), first), orderSrv(recs, first));
});

Deno.test("MX: by preference, ties in random order", () => {
  const recs: MxRecord[] = [
    { exchange: "c", priority: 10 },
    { exchange: "a", priority: 10 },
    { exchange: "low", priority: 1 },
  ];
  assertEquals(orderMx(recs, first).map((r) => r.exchange), ["low", "a", "c"]);
  assertEquals(orderMx(recs, () => 0.99).map((r) => r.exchange), ["low", "c", "a"]);
});

netTest("makeResolver against dnsmasq: records, and no record is an empty list", async () => {
  const dns = await startDnsmasq([
    "--srv-host=_submissions._tcp.a.test,mail.a.test,2465,0,0",
    "--mx-host=a.test,mx.a.test,10",
    "--host-record=mail.a.test,127.0.0.1",
  ]);
  try {
    const r = makeResolver([`127.0.0.1:${dns.port}`]);
    assertEquals(await r.srv("_submissions._tcp.a.test"), [
      { name: "mail.a.test", port: 2465, priority: 0, weight: 0 },
    ]);
    assertEquals(await r.mx("a.test"), [{ exchange: "mx.a.test", priority: 10 }]);
    assertEquals(await r.a("mail.a.test"), ["127.0.0.1"]);
    // NXDOMAIN and NODATA are answers, not errors.
    assertEquals(await r.srv("_submission._tcp.nowhere.test"), []);
    assertEquals(await r.mx("mail.a.test"), []);
    assertEquals(await r.a("nowhere.a.test"), []);
  } finally {
    await dns.stop();
  }
});

netTest("makeResolver: an unreachable server is an error, not an empty answer", async () => {
  const port = await freePort();
  const r = makeResolver([`127.0.0.1:${port}`], { timeoutMs: 200, tries: 1 });
  await assertRejects(() => r.srv("_submissions._tcp.a.test"));
  // A malformed server address is refused at once.
  assert((() => {
    try {
      makeResolver(["not an address"]);
      return false;
    } catch {
      return true;
    }
  })());
});

netTest("discover against dnsmasq, then a verified TLS session with the target", async () => {
  const certs = await makeCerts();
  const server = await startServer({
    tls: "implicit",
    cert: certs.cert,
    key: certs.key,
    lmtp: true,
    extensions: ["AUTH STOKEN", "STOKEN"],
  });
  const dns = await startDnsmasq([
    `--srv-host=_submissions._tcp.a.test,mail.a.test,${server.port},0,0`,
    "--srv-host=_submission._tcp.a.test,.",
    "--mx-host=a.test,mx1.a.test,20",
    "--mx-host=a.test,mail.a.test,10",
    "--host-record=mail.a.test,127.0.0.1",
    "--mx-host=c.test,mx.c.test,10",
  ]);
  try {
    const resolver = makeResolver([`127.0.0.1:${dns.port}`]);
    const targets = await discover("a.test", resolver, { random: first });
    assertEquals(brief(targets), [
      `submissions-srv mail.a.test:${server.port} implicit`,
      "mx mail.a.test:465 implicit",
      "mx mail.a.test:587 starttls",
      "mx mx1.a.test:465 implicit",
      "mx mx1.a.test:587 starttls",
    ]);
    assertEquals(brief(await discover("c.test", resolver)), [
      "mx mx.c.test:465 implicit",
      "mx mx.c.test:587 starttls",
    ]);
    assertEquals(await discover("b.test", resolver), []);

    // The caller resolves the name with the same resolver and verifies the certificate
    // against the target's name (PROTOCOL.md §8).
    const t = targets[0]!;
    const [ip] = await resolver.a(t.host);
    const client = await SmtpClient.open({
      host: ip!,
      port: t.port,
      tls: t.tls,
      servername: t.host,
      ca: certs.ca,
      lmtp: true,
      helo: "client.example",
      timeoutMs: 5000,
    });
    assert(client.secure);
    assert(client.extensions.has("STOKEN"));
    await client.quit();
  } finally {
    await dns.stop();
    await server.close();
  }
});

Deno.test("DiscoveryCache keeps answers per domain for the TTL, not failures", async () => {
  const { DiscoveryCache } = await import("../../src/client/discovery.ts");
  const state = { now: 0, calls: 0, fail: false };
  const cache = new DiscoveryCache(
    (d) => {
      state.calls++;
      if (state.fail) return Promise.reject(new Error("SERVFAIL"));
      return Promise.resolve([
        { host: `mail.${d}`, port: 465, tls: "implicit" as const, source: "mx" as const },
      ]);
    },
    1000,
    () => state.now,
  );
  await cache.discover("a.test");
  await cache.discover("A.test");
  const afterTwo = state.calls;
  state.now = 1000;
  state.fail = true;
  const failed = await cache.discover("a.test").then(() => false, () => true);
  state.fail = false;
  await cache.discover("a.test");
  if (afterTwo !== 1 || !failed || state.calls !== 3) {
    throw new Error(`lookups: ${afterTwo} then ${state.calls}, failed ${failed}`);
  }
});
