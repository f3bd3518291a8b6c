// `stoken doctor DOMAIN`: can we deliver to DOMAIN's Token Server? Shows the DNS records
// discovery uses (RFC 6186 SRV, MX), then for each place to try: the TLS handshake with a
// verified certificate, whether LHLO lists STOKEN (draft §7.3), and the round-trip time.
import { parseArgs } from "node:util";
import { withAddresses } from "../client/discovery.ts";
import { discover, type Target } from "../client/discovery.ts";
import { ClientError, SmtpClient } from "../client/smtp_client.ts";
import { openContext, readCa } from "./context.ts";

const USAGE = "usage: stoken doctor DOMAIN [--config FILE] [--timeout SECONDS]";

interface Row {
  source: string;
  host: string;
  address: string;
  port: string;
  tls: string;
  result: string;
  stoken: string;
  ms: string;
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: "string" }, timeout: { type: "string", default: "10" } },
    allowPositionals: true,
    strict: true,
  });
  const domain = positionals[0];
  const timeoutMs = Number(values.timeout) * 1000;
  if (domain === undefined || positionals.length > 1 || !(timeoutMs > 0)) {
    console.error(USAGE);
    return 2;
  }
  const ctx = await openContext(values.config);
  try {
    const { config, resolver } = ctx;
    const ca = await readCa(config.remote.ca_file, "remote.ca_file");
    const d = domain.toLowerCase();
    const [s1, s2, mx] = await Promise.all([
      resolver.srv(`_submissions._tcp.${d}`),
      resolver.srv(`_submission._tcp.${d}`),
      resolver.mx(d),
    ]);
    console.log(
      `DNS for ${d}${
        config.remote.dns_servers.length ? ` (via ${config.remote.dns_servers.join(", ")})` : ""
      }:`,
    );
    for (const r of s1) {
      console.log(`  SRV _submissions._tcp  ${r.priority} ${r.weight} ${r.port} ${r.name}`);
    }
    for (const r of s2) {
      console.log(`  SRV _submission._tcp   ${r.priority} ${r.weight} ${r.port} ${r.name}`);
    }
    for (const r of mx) console.log(`  MX  ${r.priority} ${r.exchange}`);
    if (s1.length + s2.length === 0) {
      console.log("  no submission SRV records (the draft §3 requires them for Token Servers)");
    }
    let targets: Target[] = await discover(d, resolver);
    if (config.remote.dns_servers.length > 0) targets = await withAddresses(targets, resolver);
    if (targets.length === 0) {
      console.log(`\nNo place to try: mail to ${d} can only go through the relay.`);
      return 1;
    }
    const rows: Row[] = [];
    for (const t of targets) rows.push(await probe(t, config.hostname, ca, timeoutMs));
    console.log("");
    printTable(rows);
    const ok = rows.some((r) => r.stoken === "yes");
    console.log(
      ok
        ? `\nToken deliveries to ${d} can work.`
        : `\nNo reachable Token Server for ${d}: mail goes through the relay.`,
    );
    return ok ? 0 : 1;
  } finally {
    ctx.close();
  }
}

async function probe(
  t: Target,
  helo: string,
  ca: string | undefined,
  timeoutMs: number,
): Promise<Row> {
  const row: Row = {
    source: t.source,
    host: t.host,
    address: t.address ?? "-",
    port: String(t.port),
    tls: t.tls,
    result: "",
    stoken: "-",
    ms: "-",
  };
  const started = performance.now();
  try {
    const c = await SmtpClient.open({
      host: t.address ?? t.host,
      port: t.port,
      tls: t.tls,
      lmtp: true,
      helo,
      servername: t.host,
      ...(ca === undefined ? {} : { ca }),
      timeoutMs,
    });
    row.ms = (performance.now() - started).toFixed(1);
    row.result = "TLS ok, certificate valid";
    row.stoken = c.extensions.has("STOKEN") ? "yes" : "no";
    await c.quit();
  } catch (e) {
    row.ms = (performance.now() - started).toFixed(1);
    const kind = e instanceof ClientError ? e.kind : "error";
    row.result = `${kind}: ${(e as Error).message}`.slice(0, 80);
  }
  return row;
}

function printTable(rows: Row[]): void {
  const head: Row = {
    source: "SOURCE",
    host: "HOST",
    address: "ADDRESS",
    port: "PORT",
    tls: "TLS",
    result: "RESULT",
    stoken: "STOKEN",
    ms: "MS",
  };
  const cols = Object.keys(head) as (keyof Row)[];
  const width = Object.fromEntries(
    cols.map((c) => [c, Math.max(...[head, ...rows].map((r) => r[c].length))]),
  ) as Record<keyof Row, number>;
  for (const r of [head, ...rows]) {
    console.log(cols.map((c) => r[c].padEnd(width[c])).join("  ").trimEnd());
  }
}
