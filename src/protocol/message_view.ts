// Reading and rewriting the header section of a spooled message without loading the body.
import { headerEnd, type HeaderField, parseHeaderFields } from "./headers.ts";
/** What these functions read: a message that can be iterated any number of times. */
export interface MessageSource {
  readonly size: number;
  chunks(): AsyncIterable<Uint8Array>;
}

/** A header section larger than this is not parsed (it is passed on untouched). */
const MAX_HEAD = 256 * 1024;

const latin1 = new TextDecoder("latin1");

export interface Head {
  /** The header fields, in order. */
  readonly fields: HeaderField[];
  /** Octets of the message taken by the header section, blank line included. */
  readonly length: number;
  /** Whether the header section ended with a blank line (a body follows). */
  readonly blank: boolean;
}

/** The message's header section; empty (length 0) if there is none we can parse. */
export async function readHead(msg: MessageSource): Promise<Head> {
  const parts: Uint8Array[] = [];
  let have = 0;
  for await (const chunk of msg.chunks()) {
    parts.push(chunk);
    have += chunk.length;
    if (have >= MAX_HEAD || headerEnd(join(parts, have)) >= 0) break;
  }
  const buf = join(parts, have);
  let end = headerEnd(buf);
  // A message of header fields only, with no blank line, is all head.
  if (end < 0 && have === msg.size && have <= MAX_HEAD) end = have;
  if (end < 0) return { fields: [], length: 0, blank: false };
  const text = latin1.decode(buf.subarray(0, end));
  return {
    fields: parseHeaderFields(text),
    length: end,
    blank: text === "\r\n" || text.endsWith("\r\n\r\n"),
  };
}

function join(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  parts.splice(0, parts.length, out);
  return out;
}

/** Latin1 text back to the bytes it came from. */
export function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * The message with its first `skip` octets replaced by `head` (typically a rewritten
 * header section, with any blank line the original had).
 */
export async function* replaceHead(
  head: string,
  msg: MessageSource,
  skip: number,
): AsyncIterable<Uint8Array> {
  yield latin1Bytes(head);
  let pos = 0;
  for await (const chunk of msg.chunks()) {
    const end = pos + chunk.length;
    if (end > skip) yield pos >= skip ? chunk : chunk.subarray(skip - pos);
    pos = end;
  }
}

/** Header section text without the fields for which `drop` is true; the blank line kept. */
export function headWithout(h: Head, drop: (f: HeaderField) => boolean): string {
  return h.fields.filter((f) => !drop(f)).map((f) => f.raw).join("") + (h.blank ? "\r\n" : "");
}
