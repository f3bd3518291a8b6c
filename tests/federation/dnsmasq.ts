// A dnsmasq on a loopback port answering for the test domains only (no upstream, no
// /etc/hosts): SRV records for submission (RFC 6186), MX records and A records.
import { createSocket } from "node:dgram";
import { Resolver } from "node:dns/promises";

export interface DomainRecords {
  /** The mail domain, e.g. "a.test". */
  readonly domain: string;
  /** Its server's host name, e.g. "mail.a.test", resolved to 127.0.0.1. */
  readonly host: string;
  /** Port of `_submissions._tcp` (implicit TLS), if published. */
  readonly submissions?: number;
  /** Port of `_submission._tcp` (STARTTLS), if published. */
  readonly submission?: number;
}

const BINARIES = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"];
const READY_TIMEOUT_MS = 10_000;

/** The command line for a dnsmasq on 127.0.0.1:`port` publishing `domains` and nothing else. */
export function dnsmasqArgs(port: number, domains: readonly DomainRecords[]): string[] {
  const args = [
    "--no-daemon",
    `--port=${port}`,
    "--listen-address=127.0.0.1",
    "--bind-interfaces",
    "--no-resolv",
    "--no-hosts",
    "--no-negcache",
    "--conf-file=/dev/null",
    "--pid-file=",
    "--log-facility=-",
  ];
  for (const d of domains) {
    args.push(`--host-record=${d.host},127.0.0.1`, `--mx-host=${d.domain},${d.host},10`);
    if (d.submissions !== undefined) {
      args.push(`--srv-host=_submissions._tcp.${d.domain},${d.host},${d.submissions},0,0`);
    }
    if (d.submission !== undefined) {
      args.push(`--srv-host=_submission._tcp.${d.domain},${d.host},${d.submission},0,0`);
    }
  }
  return args;
}

export async function dnsmasqBinary(): Promise<string> {
  for (const b of BINARIES) {
    try {
      await Deno.stat(b);
      return b;
    } catch { /* next */ }
  }
  throw new Error(`dnsmasq not found (looked in ${BINARIES.join(", ")})`);
}

/** A port free a moment ago for both UDP and TCP on 127.0.0.1 (DNS answers on both). */
export async function freeDnsPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const udp = createSocket("udp4");
    const port = await new Promise<number>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(0, "127.0.0.1", () => resolve(udp.address().port));
    });
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch {
      // Taken for TCP: try another.
    } finally {
      await new Promise<void>((resolve) => udp.close(() => resolve()));
    }
  }
  throw new Error("No port free for both UDP and TCP");
}

export class Dnsmasq {
  readonly port: number;
  readonly #child: Deno.ChildProcess;
  readonly #output: Promise<string>;

  private constructor(child: Deno.ChildProcess, port: number) {
    this.#child = child;
    this.port = port;
    this.#output = new Response(child.stderr).text();
  }

  /** Starts dnsmasq on 127.0.0.1:`port` and waits until it answers for the first domain. */
  static async start(port: number, domains: readonly DomainRecords[]): Promise<Dnsmasq> {
    const args = dnsmasqArgs(port, domains);
    const child = new Deno.Command(await dnsmasqBinary(), {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const dns = new Dnsmasq(child, port);
    try {
      await dns.#waitReady(domains[0]!.host);
    } catch (e) {
      await dns.stop();
      throw e;
    }
    return dns;
  }

  async #waitReady(host: string): Promise<void> {
    let exited = false;
    this.#child.status.then(() => (exited = true));
    const r = new Resolver({ timeout: 500, tries: 1 });
    r.setServers([`127.0.0.1:${this.port}`]);
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      try {
        if ((await r.resolve4(host)).includes("127.0.0.1")) return;
      } catch { /* not answering yet */ }
      if (exited) throw new Error(`dnsmasq exited before answering:\n${await this.#output}`);
      if (Date.now() > deadline) {
        throw new Error(`dnsmasq did not answer within ${READY_TIMEOUT_MS} ms`);
      }
      await new Promise((res) => setTimeout(res, 50));
    }
  }

  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch { /* already gone */ }
    await this.#child.status;
    await this.#output.catch(() => "");
  }
}
