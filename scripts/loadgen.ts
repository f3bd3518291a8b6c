// stoken's own load generator (issue 6, workloads T1/T2): smtp-source has no TLS and no
// AUTH, so token deliveries are driven from here. Each worker speaks the Remote Client's
// side of the draft itself over node:tls (LHLO, AUTH STOKEN, MAIL, RCPT STOKEN=, DATA) and
// reports msgs/s and per-delivery latency. It is a benchmark tool, not product code: it
// speaks the protocol directly so the figures measure the server, not src/client.
//
//   deno run -A scripts/loadgen.ts --port 2465 --to bench@example.test \
//     --from sender@remote.test --token TOKEN [--concurrency 10] [--messages 2000] \
//     [--size 1024] [--per-connection] [--tls implicit|none] [--json]
//
// --tls none with no --token speaks plain LMTP (the L1 dialog) so the client's own cost
// can be compared with smtp-source on the same listener. --client stoken drives the same
// deliveries through src/client's SmtpClient instead (what the Remote Client really sends:
// certificate checked against --ca, MAIL/RCPT/DATA pipelined).
// Loopback only: the host must be a loopback address (this tool generates load).
import { readFileSync } from "node:fs";
import { connect as tcpConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import process from "node:process";
import { parseArgs } from "node:util";
import { SmtpClient } from "../src/client/mod.ts";

interface Options {
  host: string;
  port: number;
  tls: "implicit" | "none";
  from: string;
  to: string;
  token: string;
  concurrency: number;
  messages: number;
  size: number;
  perConnection: boolean;
  pipeline: boolean;
  client: "raw" | "stoken";
  /** PEM of the CA that signs the server's certificate (--client stoken). */
  ca: string;
  timeoutS: number;
  json: boolean;
}

const USAGE = `usage: loadgen.ts --port PORT --to RCPT [--from SENDER] [--token TOKEN]
  [--host 127.0.0.1] [--tls implicit|none] [--concurrency 10] [--messages 2000]
  [--size 1024] [--per-connection] [--pipeline] [--client raw|stoken] [--ca FILE]
  [--timeout 120] [--json]`;

function options(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string" },
      tls: { type: "string", default: "implicit" },
      from: { type: "string", default: "sender@remote.test" },
      to: { type: "string" },
      token: { type: "string", default: "" },
      concurrency: { type: "string", default: "10" },
      messages: { type: "string", default: "2000" },
      size: { type: "string", default: "1024" },
      "per-connection": { type: "boolean", default: false },
      pipeline: { type: "boolean", default: false },
      client: { type: "string", default: "raw" },
      ca: { type: "string" },
      timeout: { type: "string", default: "120" },
      json: { type: "boolean", default: false },
    },
    strict: true,
  });
  const num = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      throw new Error(`--${name} must be a whole number >= ${min}: "${v}"`);
    }
    return n;
  };
  if (!values.port || !values.to) throw new Error(USAGE);
  if (values.tls !== "implicit" && values.tls !== "none") {
    throw new Error(`--tls must be implicit or none: "${values.tls}"`);
  }
  if (values.client !== "raw" && values.client !== "stoken") {
    throw new Error(`--client must be raw or stoken: "${values.client}"`);
  }
  if (values.client === "stoken" && values.tls === "implicit" && !values.ca) {
    throw new Error("--client stoken with TLS needs --ca (the server certificate is verified)");
  }
  // Load goes to this machine only.
  if (!/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(values.host)) {
    throw new Error(`--host must be a loopback address: "${values.host}"`);
  }
  return {
    host: values.host,
    port: num("port", values.port, 1),
    tls: values.tls,
    from: values.from,
    to: values.to,
    token: values.token,
    concurrency: num("concurrency", values.concurrency, 1),
    messages: num("messages", values.messages, 1),
    size: num("size", values.size, 0),
    perConnection: values["per-connection"],
    pipeline: values.pipeline,
    client: values.client,
    ca: values.ca ? readFileSync(values.ca, "utf8") : "",
    timeoutS: num("timeout", values.timeout, 1),
    json: values.json,
  };
}

interface Reply {
  code: number;
  text: string;
}

/** One SMTP/LMTP conversation: write lines, read whole (multi-line) replies in order. */
class Wire {
  #buf = "";
  #replies: Reply[] = [];
  #lines: string[] = [];
  #waiters: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  #error: Error | null = null;

  constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.setEncoding("latin1");
    socket.on("data", (s: string) => this.#onData(s));
    socket.on("error", (e: Error) => this.#fail(e));
    socket.on("close", () => this.#fail(new Error("Connection closed by the server")));
  }

  static open(o: Options): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const s = o.tls === "implicit"
        ? tlsConnect({ host: o.host, port: o.port, rejectUnauthorized: false }, () => {
          s.off("error", reject);
          resolve(new Wire(s));
        })
        : tcpConnect({ host: o.host, port: o.port }, () => {
          s.off("error", reject);
          resolve(new Wire(s));
        });
      s.once("error", reject);
    });
  }

  #onData(s: string): void {
    this.#buf += s;
    for (let i = this.#buf.indexOf("\r\n"); i >= 0; i = this.#buf.indexOf("\r\n")) {
      const line = this.#buf.slice(0, i);
      this.#buf = this.#buf.slice(i + 2);
      this.#lines.push(line);
      if (line.length < 4 || line[3] === " ") {
        const r = { code: Number(line.slice(0, 3)), text: this.#lines.join("\n") };
        this.#lines = [];
        const w = this.#waiters.shift();
        if (w) w.resolve(r);
        else this.#replies.push(r);
      }
    }
  }

  #fail(e: Error): void {
    this.#error ??= e;
    for (const w of this.#waiters.splice(0)) w.reject(this.#error);
  }

  reply(): Promise<Reply> {
    const r = this.#replies.shift();
    if (r) return Promise.resolve(r);
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  write(s: string): void {
    this.socket.write(s, "latin1");
  }

  /** Send one command and require a reply of the given class. */
  async command(line: string, want: number): Promise<Reply> {
    this.write(line + "\r\n");
    return expect(await this.reply(), want, line.split(" ")[0]!);
  }

  close(): void {
    this.socket.destroy();
  }
}

function expect(r: Reply, want: number, what: string): Reply {
  if (Math.floor(r.code / 100) !== want) {
    throw new Error(`Unexpected reply to ${what}: "${r.text.split("\n").at(-1)}"`);
  }
  return r;
}

/** A message of `size` body bytes in 76-character lines, with a unique Message-ID. */
function message(o: Options, n: number, worker: number): string {
  const line = "x".repeat(76) + "\r\n";
  let body = line.repeat(Math.floor(o.size / line.length));
  body += "y".repeat(o.size % line.length) + (o.size % line.length ? "\r\n" : "");
  return `From: <${o.from}>\r\nTo: <${o.to}>\r\nSubject: loadgen ${n}\r\n` +
    `Date: ${new Date().toUTCString()}\r\n` +
    `Message-ID: <${Date.now()}.${worker}.${n}.loadgen@bench.invalid>\r\n\r\n${body}`;
}

/** One delivery session, whichever client speaks it. */
interface Delivering {
  deliver(msg: string): Promise<void>;
  quit(): Promise<void>;
  close(): void;
}

/** The raw client: one command per write unless --pipeline, no certificate check. */
class Session implements Delivering {
  constructor(readonly wire: Wire, readonly o: Options) {}

  static async open(o: Options): Promise<Session> {
    const wire = await Wire.open(o);
    try {
      expect(await wire.reply(), 2, "greeting");
      await wire.command("LHLO loadgen.bench.invalid", 2);
      if (o.token) {
        // Draft §7.3: the initial response is base64 of recipient NUL token.
        const ir = new TextEncoder().encode(`${o.to}\0${o.token}`).toBase64();
        await wire.command(`AUTH STOKEN ${ir}`, 2);
      }
      return new Session(wire, o);
    } catch (e) {
      wire.close();
      throw e;
    }
  }

  async deliver(msg: string): Promise<void> {
    const { wire, o } = this;
    const rcpt = o.token ? `RCPT TO:<${o.to}> STOKEN=${o.token}` : `RCPT TO:<${o.to}>`;
    if (o.pipeline) {
      // RFC 2920: MAIL, RCPT and DATA in one write; replies come in order.
      wire.write(`MAIL FROM:<${o.from}>\r\n${rcpt}\r\nDATA\r\n`);
      expect(await wire.reply(), 2, "MAIL");
      expect(await wire.reply(), 2, "RCPT");
      expect(await wire.reply(), 3, "DATA");
    } else {
      await wire.command(`MAIL FROM:<${o.from}>`, 2);
      await wire.command(rcpt, 2);
      await wire.command("DATA", 3);
    }
    // The generated body has no line starting with ".": no dot-stuffing needed.
    wire.write(msg + ".\r\n");
    expect(await wire.reply(), 2, "end of data");
  }

  async quit(): Promise<void> {
    try {
      await this.wire.command("QUIT", 2);
    } catch {
      // The server may close first; nothing to learn here.
    }
    this.wire.close();
  }

  close(): void {
    this.wire.close();
  }
}

const encoder = new TextEncoder();

/** src/client's SmtpClient, as the Remote Client uses it (PROTOCOL.md §8). */
class ClientSession implements Delivering {
  private constructor(readonly c: SmtpClient, readonly o: Options) {}

  static async open(o: Options): Promise<ClientSession> {
    const c = await SmtpClient.open({
      host: o.host,
      port: o.port,
      tls: o.tls,
      lmtp: true,
      helo: "loadgen.bench.invalid",
      servername: "localhost",
      ...(o.ca ? { ca: o.ca } : {}),
      timeoutMs: o.timeoutS * 1000,
    });
    try {
      if (o.token) {
        const r = await c.authStoken(o.to, o.token);
        if (r.code !== 235) throw new Error(`AUTH STOKEN refused: ${r.code}`);
      }
      return new ClientSession(c, o);
    } catch (e) {
      c.close();
      throw e;
    }
  }

  async deliver(msg: string): Promise<void> {
    const { o } = this;
    const params = o.token ? { STOKEN: o.token } : undefined;
    const r = await this.c.send(
      o.from,
      [{ address: o.to, ...(params ? { params } : {}) }],
      encoder.encode(msg),
    );
    const d = r.data[0];
    if (!d || d.code < 200 || d.code >= 300) {
      throw new Error(`Delivery refused: ${d ? d.code : r.rcpts[0]?.code ?? r.mail.code}`);
    }
  }

  quit(): Promise<void> {
    return this.c.quit();
  }

  close(): void {
    this.c.close();
  }
}

function openSession(o: Options): Promise<Delivering> {
  return o.client === "stoken" ? ClientSession.open(o) : Session.open(o);
}

interface Result {
  messages: number;
  errors: number;
  seconds: number;
  rate: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  first_error?: string;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

export async function run(o: Options): Promise<Result> {
  const latencies = new Float64Array(o.messages);
  let next = 0;
  let done = 0;
  let errors = 0;
  let firstError: string | undefined;
  const deadline = performance.now() + o.timeoutS * 1000;
  const note = (e: unknown) => {
    errors++;
    firstError ??= (e as Error).message;
  };

  async function worker(w: number): Promise<void> {
    let s: Delivering | null = null;
    while (next < o.messages && performance.now() < deadline) {
      const n = next++;
      const msg = message(o, n, w);
      // T2 measures from before the TCP connect: the handshake is part of the delivery.
      const t0 = performance.now();
      try {
        s ??= await openSession(o);
        await s.deliver(msg);
        latencies[done++] = performance.now() - t0;
      } catch (e) {
        note(e);
        s?.close();
        s = null;
        // A server that refuses everything must not spin this loop hot.
        if (errors > o.messages / 10 + 10) break;
        continue;
      }
      if (o.perConnection) {
        await s.quit();
        s = null;
      }
    }
    if (s) await s.quit();
  }

  const t0 = performance.now();
  await Promise.all(Array.from({ length: o.concurrency }, (_, i) => worker(i)));
  const seconds = (performance.now() - t0) / 1000;
  const sorted = latencies.slice(0, done).sort();
  return {
    messages: done,
    errors,
    seconds,
    rate: done / seconds,
    p50_ms: percentile(sorted, 0.5),
    p99_ms: percentile(sorted, 0.99),
    max_ms: percentile(sorted, 1),
    ...(firstError === undefined ? {} : { first_error: firstError }),
  };
}

if (import.meta.main) {
  let o: Options;
  try {
    o = options(process.argv.slice(2));
  } catch (e) {
    console.error((e as Error).message);
    process.exit(2);
  }
  const r = await run(o);
  if (o.json) console.log(JSON.stringify(r));
  else {
    console.log(
      `${r.messages} messages in ${r.seconds.toFixed(2)} s: ${r.rate.toFixed(0)} msgs/s, ` +
        `p50 ${r.p50_ms.toFixed(2)} ms, p99 ${r.p99_ms.toFixed(2)} ms, max ${
          r.max_ms.toFixed(2)
        } ms` +
        (r.errors ? `, ${r.errors} errors (first: ${r.first_error})` : ""),
    );
  }
  process.exit(r.errors > 0 && r.messages === 0 ? 1 : 0);
}
