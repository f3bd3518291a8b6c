// Server replies as the client reads them (RFC 5321 §4.2, enhanced codes RFC 2034 / 3463).
// Nothing from the peer is trusted: a line over MAX_REPLY_LINE octets, a reply of more than
// MAX_REPLY_LINES lines, a malformed code or a code that changes inside one reply is a
// protocol error, and no amount of input is ever held beyond those bounds.
import { LineReader } from "../protocol/line_reader.ts";
import { ClientError } from "./errors.ts";

export interface ClientReply {
  code: number;
  /** Enhanced status code such as "2.1.5", when the first line starts with one. */
  enhanced?: string;
  /** The lines joined by "\n", without the code and enhanced code prefixes. */
  text: string;
  /** One entry per line, without the prefixes. */
  lines: string[];
}

/** Longest reply line accepted, CRLF excluded (RFC 5321 §4.5.3.1.5 says 512; be lenient). */
export const MAX_REPLY_LINE = 4096;
/** Most lines accepted in one reply (an EHLO list is the longest seen in practice). */
export const MAX_REPLY_LINES = 100;

// Reply-code = %x32-35 %x30-35 %x30-39, then SP or "-" or the end of the line (RFC 5321 §4.2);
// "." stops at a bare CR or LF, so a line holding one is malformed.
const REPLY_LINE = /^([2-5][0-5][0-9])(?:([ -])(.*))?$/;
// status-code = class "." subject "." detail, class 2, 4 or 5 (RFC 3463 §2).
const ENHANCED = /^([245]\.[0-9]{1,3}\.[0-9]{1,3})(?: |$)/;

/** First characters of a bad line, for the error message: enough to recognise, never a secret. */
function start(line: string): string {
  return JSON.stringify(line.slice(0, 4));
}

/** Assembles reply lines (without CRLF) into replies. */
export class ReplyParser {
  #code = 0;
  #lines: string[] = [];

  /** Takes one line; returns the reply when this was its last line, else null. */
  push(line: string): ClientReply | null {
    const m = REPLY_LINE.exec(line);
    if (m === null) {
      throw new ClientError("protocol", `Malformed reply line starting ${start(line)}`);
    }
    const code = Number(m[1]);
    if (this.#lines.length > 0 && code !== this.#code) {
      throw new ClientError(
        "protocol",
        `Reply code changed from ${this.#code} to ${code} mid-reply`,
      );
    }
    if (this.#lines.length >= MAX_REPLY_LINES) {
      throw new ClientError("protocol", `Reply has more than ${MAX_REPLY_LINES} lines`);
    }
    this.#code = code;
    this.#lines.push(m[3] ?? "");
    if (m[2] === "-") return null;
    const lines = this.#lines;
    this.#lines = [];
    return makeReply(code, lines);
  }

  /** Drops a partly read reply. */
  reset(): void {
    this.#lines = [];
  }
}

function makeReply(code: number, raw: string[]): ClientReply {
  const e = ENHANCED.exec(raw[0] ?? "")?.[1];
  // The enhanced code's class must be the reply's own (RFC 3463 §2); otherwise it is text.
  if (e === undefined || e[0] !== String(code)[0]) {
    return { code, text: raw.join("\n"), lines: raw };
  }
  // Servers repeat it on every line (RFC 2034 §4); strip it wherever it appears.
  const lines = raw.map((l) => (l === e ? "" : l.startsWith(e + " ") ? l.slice(e.length + 1) : l));
  return { code, enhanced: e, text: lines.join("\n"), lines };
}

/** Bytes in, replies out: CRLF framing (LineReader) plus ReplyParser, with no I/O. */
export class ReplyReader {
  readonly #lines = new LineReader(MAX_REPLY_LINE);
  readonly #parser = new ReplyParser();

  push(chunk: Uint8Array): void {
    this.#lines.push(chunk);
  }

  /** The next complete reply, or null when more input is needed. Throws ClientError. */
  next(): ClientReply | null {
    for (;;) {
      const line = this.#lines.next();
      if (line === null) return null;
      if (line.kind === "too_long") {
        throw new ClientError("protocol", `Reply line longer than ${MAX_REPLY_LINE} octets`);
      }
      const r = this.#parser.push(line.text);
      if (r !== null) return r;
    }
  }

  /** Forgets everything buffered: after STARTTLS nothing read in clear may be used. */
  clear(): void {
    this.#lines.clear();
    this.#parser.reset();
  }

  /** Bytes buffered and not yet returned in a reply line. */
  get buffered(): number {
    return this.#lines.buffered;
  }
}

/** "250 2.1.5 OK" style summary of the first line, for logs. */
export function summary(r: ClientReply): string {
  const first = r.lines[0] ?? "";
  return r.enhanced === undefined ? `${r.code} ${first}` : `${r.code} ${r.enhanced} ${first}`;
}
