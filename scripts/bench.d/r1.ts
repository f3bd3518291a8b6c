// R1 (issue 6): real-time delivery between two stoken instances on loopback. A serves
// a.test (alice), B serves b.test (bob); a dnsmasq publishes their SRV and A records, their
// certificates come from a test CA that each trusts through remote.ca_file, and B's relay is
// a recording sink that must stay empty. B holds a token for (alice, bob) first: A mints a
// temporary one (`stoken token gen temp bob@b.test alice@a.test`) and the MTA's way of
// handing it over is reproduced, a Submission-Token header in a message to B's LMTP
// listener (PROTOCOL.md §9). Then bob submits to alice over one persistent authenticated
// session on B's submission port (STARTTLS); B delivers each message to A by token before
// it answers DATA (PROTOCOL.md §7–§8), over a fresh TLS connection per message.
//
// Measured per message: from the client's write of the final "." to B's 250 reply. B's 250
// comes after A's 250, and A's after the file and new/ are fsync'd, so the file is in
// alice's Maildir when the 250 arrives: that is checked after every message (exactly one new
// file). Also recorded, as an upper bound of the first moment the file is there: "." to the
// inotify event for the rename into new/ (the watcher adds ~0.5–1 ms of its own).
import { watch } from "node:fs";
import { access, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { Resolver } from "node:dns/promises";
import { join } from "node:path";
import process from "node:process";
import { type ClientReply, ReplyReader } from "../../src/client/reply_parser.ts";
import { connect, startTlsClient } from "../../src/net/connect.ts";
import type { Conn } from "../../src/net/types.ts";
import { dnsmasqArgs, dnsmasqBinary, freeDnsPort } from "../../tests/federation/dnsmasq.ts";
import { type Ca, makeCa, makeServerCert } from "../../tests/federation/pki.ts";
import { headerValues, SmtpSink, subjectOf } from "../../tests/federation/smtp_sink.ts";
import { REPO } from "./peers.ts";
import { freePort, must, type Proc, start, stop, waitGreeting } from "./procs.ts";

export const ALICE = "alice@a.test";
export const BOB = "bob@b.test";
const TOKEN_RE = /^[A-Za-z0-9_-]{20,64}$/;
/** Bound on every connect, handshake and reply of the bench's own client. */
const TIMEOUT_MS = 30_000;

/** The target of issue 6 for R1, in milliseconds ("." to 250, fresh TLS handshake included). */
export const R1_TARGET_P99_MS = 20;

export interface R1Sample {
  /** Messages measured (all of them delivered by token, checked). */
  readonly messages: number;
  /** Messages whose file the watcher had not reported by the 250 (checked by a listing). */
  readonly listings: number;
  /** "." to 250. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** "." to the inotify event of the rename into alice's new/ (upper bound, see above). */
  readonly fileP50Ms: number;
  readonly fileP99Ms: number;
  /** CPU time (user + system, all threads) per message of each instance, from /proc. */
  readonly cpuMsA: number;
  readonly cpuMsB: number;
  /** Per-message latencies of "." to 250, in order (for the JSON results). */
  readonly latenciesMs?: readonly number[];
  readonly error?: string;
}

export interface Instance {
  readonly name: "A" | "B";
  readonly domain: string;
  /** Host name in its certificate, SRV and A records. */
  readonly host: string;
  readonly user: string;
  readonly password: string;
  readonly dir: string;
  readonly config: string;
  readonly ports: { submission: number; submissions: number; lmtp: number };
  /** The user's Maildir/new. */
  readonly newDir: string;
  readonly log: string;
  proc: Proc | null;
}

export interface R1Options {
  readonly logLevel: string;
  /** Extra `deno run` flags per instance (the profile adds --inspect). */
  readonly denoFlags?: { readonly A?: readonly string[]; readonly B?: readonly string[] };
  /** Wrap the server command (the profile's strace): returns [cmd, ...args]. */
  readonly wrap?: (name: "A" | "B", cmd: string, args: string[]) => [string, string[]];
}

/** Everything R1 started; `close()` stops it all. */
export interface R1Setup {
  readonly a: Instance;
  readonly b: Instance;
  readonly ca: Ca;
  readonly sink: SmtpSink;
  readonly dnsPort: number;
  /** bob's persistent authenticated submission session on B. */
  readonly session: Submission;
  close(): Promise<void>;
}

function cli(args: string[]): Promise<string> {
  return must(process.execPath, ["run", "--allow-all", "mod.ts", ...args], { cwd: REPO });
}

// ---- a small SMTP dialog on src/net (certificate verified) --------------------------------

/** One SMTP/LMTP conversation, one command at a time; replies parsed by src/client. */
export class Dialog {
  #conn: Conn;
  readonly #replies = new ReplyReader();

  private constructor(conn: Conn) {
    this.#conn = conn;
  }

  static async open(port: number): Promise<Dialog> {
    const d = new Dialog(
      await connect({ host: "127.0.0.1", port, tls: false, timeoutMs: TIMEOUT_MS }),
    );
    await d.expect(await d.reply(), 2, "greeting");
    return d;
  }

  /** The next reply; a server silent for TIMEOUT_MS fails the run instead of hanging it. */
  async reply(): Promise<ClientReply> {
    for (;;) {
      const r = this.#replies.next();
      if (r) return r;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((res) => timer = setTimeout(() => res("late"), TIMEOUT_MS));
      const chunk = await Promise.race([this.#conn.read(), late]);
      clearTimeout(timer);
      if (chunk === "late") {
        this.#conn.close();
        throw new Error(`No reply within ${TIMEOUT_MS} ms`);
      }
      if (chunk === null) throw new Error("Connection closed by the server");
      this.#replies.push(chunk);
    }
  }

  write(s: string): Promise<void> {
    return this.#conn.write(s);
  }

  expect(r: ClientReply, want: number, what: string): ClientReply {
    if (Math.floor(r.code / 100) !== want) {
      throw new Error(`Unexpected reply to ${what}: "${r.code} ${r.lines.at(-1) ?? ""}"`);
    }
    return r;
  }

  async command(line: string, want: number, what = line.split(" ")[0]!): Promise<ClientReply> {
    await this.write(line + "\r\n");
    return this.expect(await this.reply(), want, what);
  }

  /** RFC 3207: STARTTLS, then a verified handshake; nothing read in clear is kept. */
  async startTls(servername: string, ca: string): Promise<void> {
    await this.command("STARTTLS", 2);
    this.#replies.clear();
    this.#conn = await startTlsClient(this.#conn, { servername, ca, timeoutMs: TIMEOUT_MS });
  }

  async quit(): Promise<void> {
    try {
      await this.command("QUIT", 2);
    } catch {
      // The server may close first.
    }
    this.#conn.close();
  }

  close(): void {
    this.#conn.close();
  }
}

/** A 1 KB message in 76-character lines with a unique Message-ID (the dedupe key, §7). */
export function r1Message(subject: string, size = 1024): string {
  const line = "x".repeat(76) + "\r\n";
  const body = line.repeat(Math.max(1, Math.floor(size / line.length)));
  return `From: <${BOB}>\r\nTo: <${ALICE}>\r\nSubject: ${subject}\r\n` +
    `Date: ${new Date().toUTCString()}\r\n` +
    `Message-ID: <${crypto.randomUUID()}@r1.bench.invalid>\r\n\r\n${body}`;
}

/** bob's submission session on B: EHLO, STARTTLS (certificate checked), EHLO, AUTH PLAIN. */
export class Submission {
  private constructor(readonly d: Dialog) {}

  static async open(b: Instance, ca: string): Promise<Submission> {
    const d = await Dialog.open(b.ports.submission);
    try {
      await d.command("EHLO client.bench.invalid", 2);
      await d.startTls(b.host, ca);
      await d.command("EHLO client.bench.invalid", 2);
      const plain = new TextEncoder().encode(`\0${b.user}\0${b.password}`).toBase64();
      // The AUTH line carries the password: never part of an error message.
      await d.command(`AUTH PLAIN ${plain}`, 2, "AUTH PLAIN");
      return new Submission(d);
    } catch (e) {
      d.close();
      throw e;
    }
  }

  /** One message; returns the time of the final "." write and of the 250, and the reply. */
  async send(msg: string): Promise<{ t0: number; t1: number; reply: ClientReply }> {
    const d = this.d;
    await d.command(`MAIL FROM:<${BOB}>`, 2);
    await d.command(`RCPT TO:<${ALICE}>`, 2);
    await d.command("DATA", 3);
    // The generated message has no line starting with ".": no dot-stuffing needed. The body
    // and the final "." go in one write; t0 is taken right before it (1 KB on loopback).
    const t0 = performance.now();
    await d.write(msg + ".\r\n");
    const reply = await d.reply();
    const t1 = performance.now();
    return { t0, t1, reply };
  }

  quit(): Promise<void> {
    return this.d.quit();
  }
}

// ---- setup ------------------------------------------------------------------------------

async function prepare(
  base: string,
  name: "A" | "B",
  domain: string,
  user: string,
): Promise<Instance> {
  const dir = join(base, name);
  const host = `mail.${domain}`;
  const out = await cli([
    "init",
    "--dir",
    dir,
    "--domain",
    domain,
    "--hostname",
    host,
    "--user",
    user,
  ]);
  const password = /^Password:\s+(\S+)\s*$/m.exec(out)?.[1];
  if (!password) throw new Error(`stoken init printed no password for "${user}"`);
  const [local] = user.split("@") as [string];
  return {
    name,
    domain,
    host,
    user,
    password,
    dir,
    config: join(dir, "stoken.json"),
    ports: { submission: await freePort(), submissions: await freePort(), lmtp: await freePort() },
    newDir: join(dir, "mail", domain, local, "Maildir", "new"),
    log: join(dir, "serve.log"),
    proc: null,
  };
}

async function configure(
  i: Instance,
  cert: { cert: string; key: string },
  ca: Ca,
  dnsPort: number,
  sinkPort: number,
  logLevel: string,
): Promise<void> {
  const json = JSON.parse(await readFile(i.config, "utf8"));
  json.hostname = i.host;
  json.tls = { cert: cert.cert, key: cert.key };
  json.mail_root = "mail";
  json.listen = {
    submission: [`127.0.0.1:${i.ports.submission}`],
    submissions: [`127.0.0.1:${i.ports.submissions}`],
    lmtp: [`127.0.0.1:${i.ports.lmtp}`],
  };
  json.relay = { host: "127.0.0.1", port: sinkPort, tls: "none", timeout_s: 20 };
  json.remote = {
    enabled: true,
    dns_servers: [`127.0.0.1:${dnsPort}`],
    timeout_s: 20,
    ca_file: ca.cert,
  };
  json.delivery = { ...json.delivery, fsync: true };
  json.log = { level: logLevel };
  await writeFile(i.config, JSON.stringify(json, null, 2) + "\n");
}

async function launch(i: Instance, o: R1Options): Promise<void> {
  const args = [
    "run",
    ...(o.denoFlags?.[i.name] ?? []),
    "--allow-all",
    "mod.ts",
    "serve",
    "--config",
    i.config,
  ];
  const [cmd, argv] = o.wrap ? o.wrap(i.name, process.execPath, args) : [process.execPath, args];
  i.proc = await start(`stoken-${i.name}`, cmd, argv, { cwd: REPO, log: i.log });
  await waitGreeting(i.ports.lmtp, i.proc);
}

/** tests/federation/dnsmasq.ts's command line, started through procs.ts (pid file). */
async function startDnsmasq(work: string, port: number, servers: Instance[]): Promise<Proc> {
  const bin = await dnsmasqBinary();
  const args = dnsmasqArgs(
    port,
    servers.map((s) => ({
      domain: s.domain,
      host: s.host,
      submissions: s.ports.submissions,
      submission: s.ports.submission,
    })),
  );
  const proc = await start("dnsmasq", bin, args, { log: join(work, "dnsmasq.log") });
  const r = new Resolver({ timeout: 500, tries: 1 });
  r.setServers([`127.0.0.1:${port}`]);
  const deadline = performance.now() + 10_000;
  for (;;) {
    try {
      if ((await r.resolve4(servers[0]!.host)).includes("127.0.0.1")) return proc;
    } catch { /* not answering yet */ }
    if (performance.now() > deadline) {
      await stop(proc);
      throw new Error("dnsmasq did not answer within 10 s");
    }
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** The MTA's hand-over of a message carrying `token` to B's LMTP listener (§9). */
async function handOver(b: Instance, token: string): Promise<void> {
  const d = await Dialog.open(b.ports.lmtp);
  try {
    await d.command("LHLO mta.bench.invalid", 2);
    await d.command(`MAIL FROM:<${ALICE}>`, 2);
    await d.command(`RCPT TO:<${BOB}>`, 2);
    await d.command("DATA", 3);
    const msg = r1Message("r1 first contact").replace(
      "\r\n\r\n",
      `\r\nSubmission-Token: ${token}\r\n\r\n`,
    ).replace(`From: <${BOB}>\r\nTo: <${ALICE}>`, `From: <${ALICE}>\r\nTo: <${BOB}>`);
    await d.write(msg + ".\r\n");
    d.expect(await d.reply(), 2, "end of data (LMTP)");
  } finally {
    await d.quit();
  }
}

export async function startR1(work: string, o: R1Options): Promise<R1Setup> {
  const base = join(work, `r1-${Math.random().toString(36).slice(2, 8)}`);
  await mkdir(base, { recursive: true });
  const started: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const f of started.reverse()) await f().catch(() => {});
  };
  try {
    const ca = await makeCa(base, "r1-ca");
    const [certA, certB] = await Promise.all([
      makeServerCert(base, ca, "mail.a.test"),
      makeServerCert(base, ca, "mail.b.test"),
    ]);
    const sink = await SmtpSink.start(join(base, "sink"));
    started.push(() => sink.close());
    const dnsPort = await freeDnsPort();
    const a = await prepare(base, "A", "a.test", ALICE);
    const b = await prepare(base, "B", "b.test", BOB);
    const dns = await startDnsmasq(base, dnsPort, [a, b]);
    started.push(() => stop(dns));
    await configure(a, certA, ca, dnsPort, sink.port, o.logLevel);
    await configure(b, certB, ca, dnsPort, sink.port, o.logLevel);
    for (const i of [a, b]) {
      await launch(i, o);
      started.push(() => i.proc ? stop(i.proc) : Promise.resolve());
    }
    const token = (await cli(["token", "gen", "temp", BOB, ALICE, "--config", a.config])).trim();
    if (!TOKEN_RE.test(token)) throw new Error("stoken token gen printed no token");
    await handOver(b, token);
    const session = await Submission.open(b, await readFile(ca.cert, "utf8"));
    started.push(() => session.quit());
    return { a, b, ca, sink, dnsPort, session, close };
  } catch (e) {
    await close();
    throw e;
  }
}

// ---- one repetition ---------------------------------------------------------------------

/** utime + stime of a process (all its threads) in milliseconds, from /proc/<pid>/stat. */
async function cpuMs(p: Proc | null): Promise<number> {
  if (!p) return NaN;
  try {
    const stat = await readFile(`/proc/${p.pid}/stat`, "utf8");
    // Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** USER_HZ: 100 on every Linux this runs on (sysconf(_SC_CLK_TCK)). */
const CLOCK_TICKS = 100;

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

/** Names in `dir` (alice's new/) — the Maildir grows by exactly one file per message. */
async function names(dir: string): Promise<Set<string>> {
  try {
    return new Set(await readdir(dir));
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return new Set();
    throw e;
  }
}

/**
 * `messages` submissions by bob to alice, one after the other. Each must be answered 250,
 * add exactly one file to alice's new/ by the time the 250 arrives, and arrive by token: the
 * file's trace header says B delivered it over LMTPSA, and the relay sink got nothing.
 */
export async function r1Run(s: R1Setup, messages: number, label: string): Promise<R1Sample> {
  const lat: number[] = [];
  const fileLat: number[] = [];
  const renamed = new Map<string, number>();
  // The Maildir exists from the first delivery on (the warm-up): before it, no watcher.
  // (Deno's watch reports a missing directory asynchronously, as an uncaught error.)
  let watcher: { close(): void } = { close() {} };
  if (await access(s.a.newDir).then(() => true, () => false)) {
    watcher = watch(s.a.newDir, (_event, name) => {
      if (typeof name === "string" && !renamed.has(name)) renamed.set(name, performance.now());
    });
  }
  const sinkBefore = s.sink.messages.length;
  const files = new Map<string, string>();
  const before = await names(s.a.newDir);
  /** Every file of alice's new/ accounted for: there before, or one message's. */
  const known = new Set(before);
  let listings = 0;
  const cpu0 = [await cpuMs(s.a.proc), await cpuMs(s.b.proc)];
  try {
    for (let n = 0; n < messages; n++) {
      const subject = `r1 ${label} ${n}`;
      const { t0, t1, reply } = await s.session.send(r1Message(subject));
      if (reply.code !== 250) {
        throw new Error(`message ${n}: "${reply.code} ${reply.lines.at(-1) ?? ""}"`);
      }
      lat.push(t1 - t0);
      // The file must be in new/ when the 250 is read: one rename seen by the watcher
      // before t1 proves it; when the watcher lags, a listing must show exactly one new file.
      let added = [...renamed].filter(([f, t]) => !known.has(f) && t <= t1).map(([f]) => f);
      if (added.length !== 1) {
        listings++;
        added = [...await names(s.a.newDir)].filter((f) => !known.has(f));
      }
      if (added.length !== 1) {
        throw new Error(
          `message ${n}: ${added.length} new files in alice's Maildir at the 250, not 1`,
        );
      }
      known.add(added[0]!);
      files.set(subject, added[0]!);
      const tf = renamed.get(added[0]!);
      if (tf !== undefined) fileLat.push(tf - t0);
    }
  } catch (e) {
    watcher.close();
    return fail(e);
  }
  const cpu1 = [await cpuMs(s.a.proc), await cpuMs(s.b.proc)];
  watcher.close();
  // Exactly once, by token: every file is its message, carried by B over LMTPSA, and the
  // relay saw nothing.
  try {
    if (s.sink.messages.length !== sinkBefore) {
      throw new Error(`${s.sink.messages.length - sinkBefore} messages went through the relay`);
    }
    const after = (await names(s.a.newDir)).size - before.size;
    if (after !== messages) throw new Error(`${after} new files for ${messages} messages`);
    for (const [subject, name] of files) {
      const text = await readFile(join(s.a.newDir, name), "latin1");
      if (subjectOf(text) !== subject) throw new Error(`"${name}" is not "${subject}"`);
      const trace = headerValues(text, "Received")[0] ?? "";
      if (!/^from mail\.b\.test .* with LMTPSA id /.test(trace)) {
        throw new Error(`"${subject}" did not arrive by token: Received "${trace.slice(0, 80)}"`);
      }
    }
  } catch (e) {
    return fail(e);
  }
  const sorted = [...lat].sort((x, y) => x - y);
  const fsorted = [...fileLat].sort((x, y) => x - y);
  return {
    messages: lat.length,
    listings,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxMs: percentile(sorted, 1),
    fileP50Ms: percentile(fsorted, 0.5),
    fileP99Ms: percentile(fsorted, 0.99),
    cpuMsA: (cpu1[0]! - cpu0[0]!) / lat.length,
    cpuMsB: (cpu1[1]! - cpu0[1]!) / lat.length,
    latenciesMs: lat.map((x) => Math.round(x * 1000) / 1000),
  };

  function fail(e: unknown): R1Sample {
    return {
      messages: lat.length,
      listings,
      p50Ms: NaN,
      p99Ms: NaN,
      maxMs: NaN,
      fileP50Ms: NaN,
      fileP99Ms: NaN,
      cpuMsA: NaN,
      cpuMsB: NaN,
      error: (e as Error).message,
    };
  }
}

/** Token-path events in B's log (info level): every send by token, none failed. */
export async function tokenPathEvents(
  b: Instance,
): Promise<{ token: number; relay: number; failed: number } | null> {
  let text: string;
  try {
    text = await readFile(b.log, "utf8");
  } catch {
    return null;
  }
  const out = { token: 0, relay: 0, failed: 0 };
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const e = JSON.parse(line) as { event?: string; path?: string };
      if (e.event === "sent" && e.path === "token") out.token++;
      if (e.event === "sent" && e.path === "relay") out.relay++;
      if (e.event === "token_path_failed") out.failed++;
    } catch { /* not a log line */ }
  }
  return out;
}
