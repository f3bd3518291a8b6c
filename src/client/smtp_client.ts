// The SMTP and LMTP client (RFC 5321, RFC 2033): relay to a smarthost, token delivery to a
// Token Server (draft §7, PROTOCOL.md §8), probes. One connection, one call at a time.
// Every read and write is bounded by the step timeout; any failure closes the connection and
// throws a ClientError, while a refusal (4xx/5xx) is an ordinary reply for the caller to judge.
import { connect, startTlsClient } from "../net/connect.ts";
import type { Conn } from "../net/types.ts";
import { stuffedChunks } from "./dot_stuffer.ts";
import { ClientError, toClientError } from "./errors.ts";
import { type ClientReply, ReplyReader, summary } from "./reply_parser.ts";

export type { ClientReply } from "./reply_parser.ts";
export { ClientError } from "./errors.ts";

export interface OpenOptions {
  host: string;
  port: number;
  /** "implicit": TLS from the start (RFC 8314); "starttls": upgrade after EHLO (RFC 3207). */
  tls: "implicit" | "starttls" | "none";
  /** Speak LMTP (LHLO, one reply per recipient after DATA, RFC 2033). */
  lmtp: boolean;
  /** Our name for EHLO/LHLO. */
  helo: string;
  /** Name the server certificate must match; default host. */
  servername?: string;
  /** PEM CA certificates to trust instead of the system roots. */
  ca?: string;
  /** Bound on each step: connect, handshake, every read of a reply, every write. */
  timeoutMs: number;
  /**
   * With "starttls" (default true): fail when the server does not offer STARTTLS. false
   * makes the upgrade opportunistic (the certificate is still verified when it is offered).
   * true together with tls "none" is refused.
   */
  requireTls?: boolean;
}

export interface Recipient {
  address: string;
  /** ESMTP parameters, e.g. { STOKEN: "…", MYSTOKEN: "…" }; "" sends the keyword alone. */
  params?: Record<string, string>;
}

export interface SendResult {
  mail: ClientReply;
  /** One per recipient; the MAIL reply itself when MAIL was refused and RCPT never sent. */
  rcpts: ClientReply[];
  /**
   * Per recipient, the outcome of the message: null when its RCPT (or the MAIL) was refused;
   * otherwise the reply after the final "." (SMTP: the same one for all; LMTP: its own,
   * RFC 2033 §4.2), or the refusal of DATA itself.
   */
  data: (ClientReply | null)[];
  /** The reply to DATA (354 or its refusal); absent when DATA was never sent. */
  dataReply?: ClientReply;
}

/** A failure of the caller's body stream: rethrown as it is, never as a ClientError. */
class BodySourceError {
  constructor(readonly cause: unknown) {}
}

function positive(r: ClientReply): boolean {
  return r.code >= 200 && r.code < 300;
}

// RFC 5321 §4.1.2: esmtp-keyword and esmtp-value. Only these reach the wire, so no parameter
// can add a command (CR LF) or split one.
const PARAM_KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
const PARAM_VALUE = /^[\x21-\x3c\x3e-\x7e]+$/;
// An address is sent between "<" and ">": no control characters, no angle brackets.
// deno-lint-ignore no-control-regex -- the control characters are what it looks for
const BAD_ADDRESS = /[\x00-\x1f\x7f<>]/;
// EHLO/LHLO argument: a domain or address literal, no spaces or controls.
const HELO_NAME = /^[\x21-\x7e]+$/;

function formatParams(params: Record<string, string>): string {
  let out = "";
  for (const [k, v] of Object.entries(params)) {
    if (!PARAM_KEYWORD.test(k)) throw new TypeError(`Invalid ESMTP parameter name "${k}"`);
    // The value may be a token: name the parameter, never quote the value.
    if (v !== "" && !PARAM_VALUE.test(v)) {
      throw new TypeError(`Invalid value for ESMTP parameter "${k}"`);
    }
    out += v === "" ? ` ${k}` : ` ${k}=${v}`;
  }
  return out;
}

function checkAddress(address: string, what: string, allowEmpty: boolean): string {
  if ((!allowEmpty && address === "") || BAD_ADDRESS.test(address)) {
    throw new TypeError(`Invalid ${what} address ${JSON.stringify(address)}`);
  }
  return address;
}

function base64(text: string): string {
  return new TextEncoder().encode(text).toBase64();
}

export class SmtpClient {
  #conn: Conn;
  readonly #replies = new ReplyReader();
  readonly #lmtp: boolean;
  readonly #timeoutMs: number;
  #extensions = new Map<string, string>();
  #greeting: ClientReply | null = null;
  #closed = false;
  #busy = false;

  private constructor(conn: Conn, lmtp: boolean, timeoutMs: number) {
    this.#conn = conn;
    this.#lmtp = lmtp;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Connects, reads the 220 greeting and says EHLO (LHLO for LMTP); for "starttls" then
   * STARTTLS, the verified handshake, and EHLO/LHLO again (RFC 3207 §4.2: nothing learnt
   * before TLS is kept).
   */
  static async open(opts: OpenOptions): Promise<SmtpClient> {
    if (!HELO_NAME.test(opts.helo)) throw new TypeError(`Invalid HELO name "${opts.helo}"`);
    if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) {
      throw new RangeError(`Invalid timeout "${opts.timeoutMs}"`);
    }
    if (opts.tls === "none" && opts.requireTls === true) {
      throw new TypeError('requireTls cannot be met with tls "none"');
    }
    let conn: Conn;
    try {
      conn = await connect({
        host: opts.host,
        port: opts.port,
        tls: opts.tls === "implicit",
        ...(opts.servername === undefined ? {} : { servername: opts.servername }),
        ...(opts.ca === undefined ? {} : { ca: opts.ca }),
        timeoutMs: opts.timeoutMs,
      });
    } catch (e) {
      throw toClientError(e);
    }
    const c = new SmtpClient(conn, opts.lmtp, opts.timeoutMs);
    try {
      const greeting = await c.#read();
      if (greeting.code !== 220) {
        throw new ClientError(
          "protocol",
          `Server refused the session: ${summary(greeting)}`,
          greeting,
        );
      }
      c.#greeting = greeting;
      await c.#hello(opts.helo);
      if (opts.tls === "starttls") {
        if (c.#extensions.has("STARTTLS")) {
          await c.#startTls(opts.servername ?? opts.host, opts.ca);
          await c.#hello(opts.helo);
        } else if (opts.requireTls ?? true) {
          throw new ClientError("tls", "Server does not offer STARTTLS");
        }
      }
      return c;
    } catch (e) {
      c.close();
      throw toClientError(e);
    }
  }

  /** Extensions from the last EHLO/LHLO reply: upper-cased keyword -> rest of the line. */
  get extensions(): ReadonlyMap<string, string> {
    return this.#extensions;
  }

  /** TLS is active (implicit, or after STARTTLS). */
  get secure(): boolean {
    return this.#conn.secure;
  }

  /** The server's 220 greeting. */
  get greeting(): ClientReply {
    return this.#greeting!;
  }

  /** AUTH PLAIN with an initial response (RFC 4954, RFC 4616). The reply is returned as is. */
  async authPlain(user: string, password: string): Promise<ClientReply> {
    if (user.includes("\0") || password.includes("\0")) {
      throw new TypeError("User name and password must not contain NUL");
    }
    return await this.#guard(() => this.#auth("PLAIN", base64(`\0${user}\0${password}`)));
  }

  /** AUTH STOKEN (PROTOCOL.md §3): base64 of recipient, a NUL byte, token. */
  async authStoken(recipient: string, token: string): Promise<ClientReply> {
    if (recipient.includes("\0") || token.includes("\0")) {
      throw new TypeError("Recipient and token must not contain NUL");
    }
    return await this.#guard(() => this.#auth("STOKEN", base64(`${recipient}\0${token}`)));
  }

  /**
   * One command line (without CRLF) and its reply, for commands the client has no method
   * for (GENSTOKEN, NOOP, RSET, …).
   */
  async command(line: string): Promise<ClientReply> {
    if (/[\r\n]/.test(line)) throw new TypeError("A command must be a single line");
    return await this.#guard(() => this.#command(line));
  }

  /**
   * One transaction. MAIL, every RCPT and DATA go in one write when the server offers
   * PIPELINING (RFC 2920), else one at a time, stopping when nothing can succeed. The body
   * is sent only when DATA got 354 and a recipient was accepted.
   */
  async send(
    from: string,
    rcpts: Recipient[],
    body: Uint8Array | AsyncIterable<Uint8Array>,
    mailParams: Record<string, string> = {},
  ): Promise<SendResult> {
    if (rcpts.length === 0) throw new TypeError("No recipients");
    const mail = `MAIL FROM:<${checkAddress(from, "sender", true)}>${formatParams(mailParams)}`;
    const rcptLines = rcpts.map((r) =>
      `RCPT TO:<${checkAddress(r.address, "recipient", false)}>${formatParams(r.params ?? {})}`
    );
    return await this.#guard(() => this.#transaction(mail, rcptLines, body));
  }

  /** QUIT and its 221, errors ignored, then close. */
  async quit(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#command("QUIT");
    } catch {
      // The session is over either way.
    } finally {
      this.close();
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#conn.close();
  }

  async #transaction(
    mailLine: string,
    rcptLines: string[],
    body: Uint8Array | AsyncIterable<Uint8Array>,
  ): Promise<SendResult> {
    let mail: ClientReply;
    const rcpts: ClientReply[] = [];
    let dataReply: ClientReply | undefined;
    if (this.#extensions.has("PIPELINING")) {
      // RFC 2920 §3.1: DATA may end the group; its replies come back in order.
      await this.#write([mailLine, ...rcptLines, "DATA", ""].join("\r\n"));
      mail = await this.#read();
      for (let i = 0; i < rcptLines.length; i++) rcpts.push(await this.#read());
      dataReply = await this.#read();
    } else {
      mail = await this.#command(mailLine);
      if (!positive(mail)) {
        const m = mail;
        return { mail, rcpts: rcptLines.map(() => m), data: rcptLines.map(() => null) };
      }
      for (const line of rcptLines) rcpts.push(await this.#command(line));
      if (rcpts.some(positive)) dataReply = await this.#command("DATA");
    }

    const accepted = rcpts.map((r) => positive(mail) && positive(r));
    const data: (ClientReply | null)[] = rcpts.map(() => null);
    const result = (): SendResult =>
      dataReply === undefined ? { mail, rcpts, data } : { mail, rcpts, data, dataReply };

    if (dataReply === undefined || dataReply.code !== 354) {
      if (dataReply !== undefined) accepted.forEach((ok, i) => ok && (data[i] = dataReply!));
      // A transaction left open would make the next MAIL fail (RFC 5321 §4.1.1.5).
      if (positive(mail)) await this.#reset();
      return result();
    }
    if (!accepted.includes(true)) {
      // RFC 2033 §4.2: an LMTP server must refuse DATA then; there is no reply count to read.
      if (this.#lmtp) throw new ClientError("protocol", "Server accepted DATA with no recipient");
      // RFC 2920 §3.1: a pipelining server may still say 354; end the empty message at once.
      await this.#write(".\r\n");
      await this.#read();
      return result();
    }

    const it = stuffedChunks(body)[Symbol.asyncIterator]();
    for (;;) {
      let step: IteratorResult<Uint8Array>;
      try {
        step = await it.next();
      } catch (e) {
        // Never send the terminator after a broken body: dropping the connection makes the
        // server discard the partial message.
        throw new BodySourceError(e);
      }
      if (step.done) break;
      await this.#write(step.value);
    }

    if (this.#lmtp) {
      // One reply per accepted recipient, in RCPT order (RFC 2033 §4.2).
      for (let i = 0; i < accepted.length; i++) if (accepted[i]) data[i] = await this.#read();
    } else {
      const final = await this.#read();
      accepted.forEach((ok, i) => ok && (data[i] = final));
    }
    return result();
  }

  async #auth(mechanism: string, initial: string): Promise<ClientReply> {
    const r = await this.#command(`AUTH ${mechanism} ${initial}`);
    if (r.code !== 334) return r;
    // The server wants another round although the mechanism has none: cancel (RFC 4954 §4).
    await this.#write("*\r\n");
    return await this.#read();
  }

  async #hello(name: string): Promise<void> {
    const verb = this.#lmtp ? "LHLO" : "EHLO";
    let r = await this.#command(`${verb} ${name}`);
    if (r.code !== 250 && !this.#lmtp) {
      // RFC 5321 §3.2: a server without extensions may only know HELO.
      r = await this.#command(`HELO ${name}`);
      if (r.code === 250) {
        this.#extensions = new Map();
        return;
      }
    }
    if (r.code !== 250) throw new ClientError("protocol", `${verb} refused: ${summary(r)}`, r);
    const ext = new Map<string, string>();
    for (const line of r.lines.slice(1)) {
      const m = /^([A-Za-z0-9][A-Za-z0-9-]*)(?: +(.*))?$/.exec(line.trim());
      if (m) ext.set(m[1]!.toUpperCase(), (m[2] ?? "").trim());
    }
    this.#extensions = ext;
  }

  async #startTls(servername: string, ca: string | undefined): Promise<void> {
    const r = await this.#command("STARTTLS");
    if (r.code !== 220) throw new ClientError("tls", `STARTTLS refused: ${summary(r)}`, r);
    // RFC 3207 §4.2: whatever came after the 220 was sent in clear and is dropped, here and
    // in the connection (startTlsClient); so is everything learnt from the server.
    this.#replies.clear();
    this.#extensions = new Map();
    this.#conn = await startTlsClient(this.#conn, {
      servername,
      ...(ca === undefined ? {} : { ca }),
      timeoutMs: this.#timeoutMs,
    });
  }

  /**
   * Best effort: the refusals already read are the result, so a server gone after its last
   * reply (a 421) only closes the client instead of failing the whole call.
   */
  async #reset(): Promise<void> {
    try {
      await this.#command("RSET");
    } catch {
      this.close();
    }
  }

  async #command(line: string): Promise<ClientReply> {
    await this.#write(line + "\r\n");
    return await this.#read();
  }

  async #read(): Promise<ClientReply> {
    for (;;) {
      const r = this.#replies.next();
      if (r !== null) return r;
      const chunk = await this.#timed(this.#conn.read(), "Waiting for a reply");
      if (chunk === null) throw new ClientError("network", "Connection closed by the server");
      this.#replies.push(chunk);
    }
  }

  #write(data: Uint8Array | string): Promise<void> {
    return this.#timed(this.#conn.write(data), "Sending to the server");
  }

  /** p, or a timeout ClientError after the step timeout. */
  #timed<T>(p: Promise<T>, what: string): Promise<T> {
    // The loser of the race must not become an unhandled rejection once close() fails it.
    p.catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ClientError("timeout", `${what} timed out after ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
    });
    return Promise.race([p, expired]).finally(() => clearTimeout(timer));
  }

  /** Runs one public operation: any failure closes the connection (its state is unknown). */
  async #guard<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new ClientError("network", "Connection is closed");
    if (this.#busy) throw new Error("SmtpClient is busy: await the previous call first");
    this.#busy = true;
    try {
      return await fn();
    } catch (e) {
      this.close();
      if (e instanceof BodySourceError) throw e.cause;
      throw toClientError(e);
    } finally {
      this.#busy = false;
    }
  }
}
