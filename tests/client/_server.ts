// A small scripted SMTP/LMTP server for the client tests: plain, STARTTLS or implicit TLS,
// with or without PIPELINING, and hooks to refuse, misbehave or inject. It records what the
// client sent, and flags client behaviour the protocol forbids (commands sent ahead of a
// reply without PIPELINING, anything sent after DATA or STARTTLS before the reply).
import * as net from "node:net";
import * as tls from "node:tls";
import type { Buffer } from "node:buffer";
import { DataReader } from "../../src/protocol/data_reader.ts";
import { concatBytes, latin1Bytes, latin1Text } from "./_bytes.ts";

export interface ServerOptions {
  tls?: "none" | "starttls" | "implicit";
  cert?: string;
  key?: string;
  lmtp?: boolean;
  /** Announce PIPELINING (default true). */
  pipelining?: boolean;
  /**
   * Answer MAIL and RCPT only once DATA has arrived: a client that waits for each reply
   * instead of pipelining hangs until its timeout.
   */
  holdUntilData?: boolean;
  /** Raw greeting, CRLF included. */
  greeting?: string;
  /** More EHLO/LHLO keywords, offered once TLS is active (or always with tls "none"). */
  extensions?: string[];
  /** Plaintext sent right after the 220 to STARTTLS, in the same write (an injection). */
  injectAfterStartTls?: string;
  /** Reply to AUTH (default "235 2.7.0 OK"); "334 " starts another round. */
  authReply?: string;
  /** Reply to MAIL (default "250 2.1.0 OK"). */
  mail?: (line: string) => string;
  /** Reply to RCPT for an address (default "250 2.1.5 OK"). */
  rcpt?: (address: string) => string;
  /** Reply to DATA when some recipient was accepted (default "354 Go ahead"). */
  data?: string;
  /** Reply to DATA with no accepted recipient (default "554 5.5.1 No valid recipients"). */
  dataNoRcpt?: string;
  /** Final reply: per accepted address for LMTP, once with "" for SMTP. */
  final?: (address: string) => string;
  /** Raw reply (CRLF included) instead of the normal one, closing after a 421; null: say
   * nothing at all. */
  override?: (line: string) => string | null | undefined;
}

export interface Message {
  from: string;
  rcpts: string[];
  body: string;
}

export interface Recorded {
  /** Every command line, in order. */
  commands: string[];
  /** Commands received over TLS. */
  secureCommands: string[];
  messages: Message[];
  /** Decoded AUTH initial responses, latin1. */
  auth: string[];
  /** Protocol violations by the client. */
  violations: string[];
  /** Connections accepted. */
  sessions: number;
}

export interface TestServer {
  port: number;
  rec: Recorded;
  close(): Promise<void>;
}

const CRLF = "\r\n";

function findCRLF(b: Uint8Array): number {
  for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) {
    if (i > 0 && b[i - 1] === 13) return i - 1;
  }
  return -1;
}

export async function startServer(opts: ServerOptions = {}): Promise<TestServer> {
  const rec: Recorded = {
    commands: [],
    secureCommands: [],
    messages: [],
    auth: [],
    violations: [],
    sessions: 0,
  };
  const sockets = new Set<net.Socket>();
  const ctx = opts.tls === undefined || opts.tls === "none"
    ? null
    : tls.createSecureContext({ cert: opts.cert!, key: opts.key! });

  const server = net.createServer((raw) => {
    rec.sessions++;
    sockets.add(raw);
    raw.on("error", () => {});
    raw.setNoDelay(true);
    raw.on("close", () => sockets.delete(raw));
    if (opts.tls === "implicit") {
      const t = new tls.TLSSocket(raw, { isServer: true, secureContext: ctx! });
      t.on("error", () => {});
      t.once("secure", () => new Session(t, true, opts, rec, ctx).start());
    } else {
      new Session(raw, false, opts, rec, ctx).start();
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    rec,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

class Session {
  #sock: net.Socket;
  #secure: boolean;
  #buf: Uint8Array = new Uint8Array(0);
  #mode: "cmd" | "data" | "sasl" = "cmd";
  #reader: DataReader | null = null;
  #body: Uint8Array[] = [];
  #from = "";
  #accepted: string[] = [];
  #held: string[] = [];
  #done = false;

  constructor(
    sock: net.Socket,
    secure: boolean,
    readonly opts: ServerOptions,
    readonly rec: Recorded,
    readonly ctx: tls.SecureContext | null,
  ) {
    this.#sock = sock;
    this.#secure = secure;
  }

  start(): void {
    this.#attach();
    this.#write(
      this.opts.greeting ?? `220 test.example ${this.opts.lmtp ? "LMTP" : "ESMTP"}${CRLF}`,
    );
  }

  #onData = (b: Buffer) => {
    this.#buf = concatBytes([this.#buf, new Uint8Array(b.buffer, b.byteOffset, b.byteLength)]);
    this.#process();
  };

  #attach(): void {
    this.#sock.on("data", this.#onData);
  }

  #write(s: string): void {
    if (!this.#sock.destroyed) this.#sock.write(latin1Bytes(s));
  }

  #process(): void {
    while (!this.#done) {
      if (this.#mode === "data") {
        const step = this.#reader!.push(this.#buf);
        for (const b of step.body) this.#body.push(b.slice());
        this.#buf = this.#buf.subarray(step.consumed);
        if (!step.done) return;
        this.#endData();
        continue;
      }
      const i = findCRLF(this.#buf);
      if (i < 0) return;
      const line = latin1Text(this.#buf.subarray(0, i));
      this.#buf = this.#buf.subarray(i + 2);
      const verb = line.split(" ")[0]!.toUpperCase();
      const ahead = this.#buf.length > 0;
      this.#handle(line);
      if (!ahead || this.#done) continue;
      const pipelining = this.opts.pipelining ?? true;
      if ((this.#mode as string) === "data") {
        // The body came with DATA, before the 354 (RFC 2920 §3.1: DATA ends a group).
        this.rec.violations.push("body sent before 354");
      } else if (!pipelining || verb === "DATA" || verb === "STARTTLS" || verb === "AUTH") {
        // Without PIPELINING nothing may follow a command before its reply (RFC 2920 §3).
        this.rec.violations.push(`sent ahead after ${verb}`);
      }
    }
  }

  #reply(s: string, hold = false): void {
    if (hold && this.opts.holdUntilData) {
      this.#held.push(s + CRLF);
      return;
    }
    this.#write(s + CRLF);
  }

  #handle(line: string): void {
    if (this.#mode === "sasl") {
      this.#mode = "cmd";
      this.rec.commands.push(line);
      this.#reply(line === "*" ? "501 5.7.0 Authentication cancelled" : "535 5.7.8 No");
      return;
    }
    this.rec.commands.push(line);
    if (this.#secure) this.rec.secureCommands.push(line);
    const o = this.opts.override?.(line);
    if (o === null) return;
    if (o !== undefined) {
      this.#write(o);
      // A 421 closes the connection (RFC 5321 §3.8).
      if (o.startsWith("421")) {
        this.#done = true;
        this.#sock.end();
      }
      return;
    }
    const [verb = "", ...rest] = line.split(" ");
    const arg = rest.join(" ");
    switch (verb.toUpperCase()) {
      case "EHLO":
      case "LHLO":
      case "HELO": {
        if ((verb.toUpperCase() === "LHLO") !== (this.opts.lmtp ?? false)) {
          this.#reply("500 5.5.1 Wrong greeting command");
          return;
        }
        const ext: string[] = [];
        if (this.opts.pipelining ?? true) ext.push("PIPELINING");
        ext.push("ENHANCEDSTATUSCODES", "8BITMIME");
        if (this.opts.tls === "starttls" && !this.#secure) ext.push("STARTTLS");
        if (this.#secure || (this.opts.tls ?? "none") === "none") {
          ext.push(...(this.opts.extensions ?? []));
        }
        const lines = ["test.example", ...ext];
        this.#write(
          lines.map((l, i) => `250${i === lines.length - 1 ? " " : "-"}${l}${CRLF}`).join(""),
        );
        return;
      }
      case "STARTTLS":
        if (this.opts.tls !== "starttls" || this.#secure) {
          this.#reply("503 5.5.1 TLS not available");
          return;
        }
        this.#write(`220 2.0.0 Ready to start TLS${CRLF}${this.opts.injectAfterStartTls ?? ""}`);
        this.#upgrade();
        return;
      case "AUTH": {
        const ir = rest[1];
        if (ir !== undefined) this.rec.auth.push(latin1Text(Uint8Array.fromBase64(ir)));
        const r = this.opts.authReply ?? "235 2.7.0 OK";
        if (r.startsWith("334")) this.#mode = "sasl";
        this.#reply(r);
        return;
      }
      case "MAIL":
        this.#from = /<([^>]*)>/.exec(arg)?.[1] ?? "";
        this.#accepted = [];
        this.#reply(this.opts.mail?.(line) ?? "250 2.1.0 OK", true);
        return;
      case "RCPT": {
        const address = /<([^>]*)>/.exec(arg)?.[1] ?? "";
        const r = this.opts.rcpt?.(address) ?? "250 2.1.5 OK";
        if (r.startsWith("2")) this.#accepted.push(address);
        this.#reply(r, true);
        return;
      }
      case "DATA": {
        for (const h of this.#held.splice(0)) this.#write(h);
        const r = this.#accepted.length === 0
          ? this.opts.dataNoRcpt ?? "554 5.5.1 No valid recipients"
          : this.opts.data ?? "354 Go ahead";
        this.#reply(r);
        if (r.startsWith("354")) {
          this.#mode = "data";
          this.#reader = new DataReader(Number.MAX_SAFE_INTEGER);
          this.#body = [];
        }
        return;
      }
      case "RSET":
        this.#accepted = [];
        this.#reply("250 2.0.0 OK");
        return;
      case "NOOP":
        this.#reply("250 2.0.0 OK");
        return;
      case "QUIT":
        this.#reply("221 2.0.0 Bye");
        this.#done = true;
        this.#sock.end();
        return;
      default:
        this.#reply("500 5.5.2 Command not recognized");
    }
  }

  #endData(): void {
    this.#mode = "cmd";
    const bad = this.#reader!.bareNewline;
    this.#reader = null;
    const body = latin1Text(concatBytes(this.#body));
    this.#body = [];
    if (bad) this.rec.violations.push("bare CR or LF in DATA");
    this.rec.messages.push({ from: this.#from, rcpts: [...this.#accepted], body });
    if (this.opts.lmtp) {
      for (const a of this.#accepted) {
        this.#reply(this.opts.final?.(a) ?? `250 2.0.0 <${a}> Saved`);
      }
    } else {
      this.#reply(this.opts.final?.("") ?? "250 2.0.0 Queued");
    }
    this.#accepted = [];
  }

  #upgrade(): void {
    const sock = this.#sock;
    sock.removeListener("data", this.#onData);
    if (this.#buf.length > 0) this.rec.violations.push("sent ahead after STARTTLS");
    this.#buf = new Uint8Array(0);
    const t = new tls.TLSSocket(sock, { isServer: true, secureContext: this.ctx! });
    t.on("error", () => {});
    t.once("secure", () => {
      this.#sock = t;
      this.#secure = true;
      this.#attach();
    });
  }
}
