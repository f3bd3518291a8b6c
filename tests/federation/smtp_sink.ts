// A recording smarthost for the federation scenario: accepts SMTP on loopback (no TLS, no
// AUTH: stoken's relay is configured with tls "none"), answers 250 to everything sensible,
// and keeps each message's envelope and exact bytes, in memory and as files in a directory
// (<n>.json with the envelope, <n>.eml with the message) for a human looking at a failure.
import { join } from "node:path";

export interface SinkMessage {
  readonly from: string;
  readonly rcpts: readonly string[];
  /** The message as received, dot-unstuffed, without the terminating ".". */
  readonly data: Uint8Array;
  /** The same bytes as text (latin1, so every byte maps to one character). */
  readonly text: string;
}

const CRLF_DOT_CRLF = "\r\n.\r\n";

export class SmtpSink {
  readonly messages: SinkMessage[] = [];
  readonly #listener: Deno.TcpListener;
  readonly #dir: string;
  readonly #conns = new Set<Deno.TcpConn>();
  readonly #sessions = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  #closed = false;

  private constructor(listener: Deno.TcpListener, dir: string) {
    this.#listener = listener;
    this.#dir = dir;
    this.#accepting = this.#accept();
  }

  /** Listens on 127.0.0.1 (a free port) and records into `dir`. */
  static async start(dir: string): Promise<SmtpSink> {
    await Deno.mkdir(dir, { recursive: true });
    return new SmtpSink(Deno.listen({ hostname: "127.0.0.1", port: 0 }), dir);
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  /** Messages whose Subject header is exactly `subject`. */
  withSubject(subject: string): SinkMessage[] {
    return this.messages.filter((m) => subjectOf(m.text) === subject);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* already closed by the session */ }
    }
    await this.#accepting;
    await Promise.all(this.#sessions);
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // listener closed
      }
      this.#conns.add(conn);
      const s = this.#session(conn).catch(() => {}).finally(() => {
        this.#conns.delete(conn);
        this.#sessions.delete(s);
        try {
          conn.close();
        } catch { /* closed */ }
      });
      this.#sessions.add(s);
    }
  }

  async #session(conn: Deno.TcpConn): Promise<void> {
    const enc = new TextEncoder();
    const write = async (s: string) => {
      const b = enc.encode(s);
      for (let off = 0; off < b.length;) off += await conn.write(b.subarray(off));
    };
    let buf = "";
    let from: string | null = null;
    let rcpts: string[] = [];
    let inData = false;
    await write("220 sink.test ESMTP recording sink\r\n");
    const chunk = new Uint8Array(65536);
    for (;;) {
      if (inData) {
        const end = buf.startsWith(".\r\n") ? 0 : buf.indexOf(CRLF_DOT_CRLF);
        if (end >= 0) {
          const raw = end === 0 ? "" : buf.slice(0, end + 2);
          buf = buf.slice(end === 0 ? 3 : end + CRLF_DOT_CRLF.length);
          inData = false;
          // RFC 5321 §4.5.2: remove one leading dot from every line.
          const text = raw.replace(/(^|\r\n)\./g, "$1");
          await this.#record(from ?? "", rcpts, text);
          from = null;
          rcpts = [];
          await write(`250 2.0.0 Ok: queued as ${this.messages.length}\r\n`);
          continue;
        }
      } else {
        const eol = buf.indexOf("\r\n");
        if (eol >= 0) {
          const line = buf.slice(0, eol);
          buf = buf.slice(eol + 2);
          const verb = line.slice(0, 4).toUpperCase();
          if (verb === "EHLO") await write("250-sink.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
          else if (verb === "HELO") await write("250 sink.test\r\n");
          else if (verb === "MAIL") {
            from = /<([^>]*)>/.exec(line)?.[1] ?? "";
            rcpts = [];
            await write("250 2.1.0 Ok\r\n");
          } else if (verb === "RCPT") {
            rcpts.push(/<([^>]*)>/.exec(line)?.[1] ?? "");
            await write("250 2.1.5 Ok\r\n");
          } else if (verb === "DATA") {
            if (from === null || rcpts.length === 0) await write("503 5.5.1 Bad sequence\r\n");
            else {
              inData = true;
              await write("354 End data with <CR><LF>.<CR><LF>\r\n");
            }
          } else if (verb === "RSET") {
            from = null;
            rcpts = [];
            await write("250 2.0.0 Ok\r\n");
          } else if (verb === "NOOP") await write("250 2.0.0 Ok\r\n");
          else if (verb === "QUIT") {
            await write("221 2.0.0 Bye\r\n");
            return;
          } else await write("502 5.5.2 Not implemented\r\n");
          continue;
        }
      }
      const n = await conn.read(chunk);
      if (n === null) return;
      buf += latin1(chunk.subarray(0, n));
    }
  }

  async #record(from: string, rcpts: string[], text: string): Promise<void> {
    const data = Uint8Array.from(text, (c) => c.charCodeAt(0));
    this.messages.push({ from, rcpts: [...rcpts], data, text });
    const n = this.messages.length;
    await Deno.writeTextFile(join(this.#dir, `${n}.json`), JSON.stringify({ from, rcpts }) + "\n");
    await Deno.writeFile(join(this.#dir, `${n}.eml`), data);
  }
}

/**
 * One character per byte (code points 0-255), so the bytes can be rebuilt exactly. Not
 * TextDecoder("latin1"): that is windows-1252, which maps 0x80-0x9F elsewhere.
 */
function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

/** The unfolded value of the first Subject header of a message given as text. */
export function subjectOf(text: string): string | null {
  const end = text.indexOf("\r\n\r\n");
  const head = (end < 0 ? text : text.slice(0, end + 2)).replace(/\r\n[ \t]+/g, " ");
  return /^Subject:[ \t]*(.*?)[ \t]*$/im.exec(head)?.[1] ?? null;
}

/** Every header field named `name` (case-insensitive) in the head of `text`, unfolded. */
export function headerValues(text: string, name: string): string[] {
  const end = text.indexOf("\r\n\r\n");
  const head = (end < 0 ? text : text.slice(0, end + 2)).replace(/\r\n[ \t]+/g, " ");
  const out: string[] = [];
  for (const line of head.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name.toLowerCase()) {
      out.push(line.slice(colon + 1).trim());
    }
  }
  return out;
}
