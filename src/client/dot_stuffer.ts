// The DATA body as the client sends it (RFC 5321 §4.1.1.4, §4.5.2). Any byte sequence
// survives: every bare CR and bare LF becomes CRLF (the server side rejects bare line ends,
// PROTOCOL.md §10, and they are the stuff of SMTP smuggling), a "." starting a line is
// doubled, and the body ends with CRLF before the terminating ".\r\n", so nothing in a body
// can ever end the DATA early or leave it open.

const CR = 13;
const LF = 10;
const DOT = 46;

/** Size of the writes stuffedChunks() produces (all but the last are at least this big). */
export const WRITE_SIZE = 64 * 1024;

/** Streaming dot-stuffer: push() body chunks in order, then end() once. */
export class DotStuffer {
  /** The next byte starts a line (true at the very start: a leading "." is stuffed too). */
  #lineStart = true;
  /** The last byte was a CR whose CRLF is not written yet: an LF may follow in the next chunk. */
  #cr = false;
  #ended = false;

  /** The stuffed, CRLF-normalised form of chunk (a new array; chunk is not kept). */
  push(chunk: Uint8Array): Uint8Array {
    if (this.#ended) throw new Error("DotStuffer used after end()");
    // Worst case every byte doubles ("\n" -> "\r\n", "." at a line start -> ".."), plus the
    // CRLF of a CR held from the previous chunk.
    const out = new Uint8Array(chunk.length * 2 + 2);
    let o = 0;
    let lineStart = this.#lineStart;
    let cr = this.#cr;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (cr) {
        cr = false;
        out[o++] = CR;
        out[o++] = LF;
        lineStart = true;
        // CR LF is one line end; after a bare CR, b starts the next line.
        if (b === LF) continue;
      }
      if (b === CR) {
        cr = true;
      } else if (b === LF) {
        // Bare LF.
        out[o++] = CR;
        out[o++] = LF;
        lineStart = true;
      } else {
        if (lineStart && b === DOT) out[o++] = DOT;
        out[o++] = b;
        lineStart = false;
      }
    }
    this.#lineStart = lineStart;
    this.#cr = cr;
    return out.subarray(0, o);
  }

  /** The last bytes: the CRLF that ends the last line if needed, then "." CRLF. */
  end(): Uint8Array {
    if (this.#ended) throw new Error("DotStuffer used after end()");
    this.#ended = true;
    const needCRLF = this.#cr || !this.#lineStart;
    return needCRLF ? new Uint8Array([CR, LF, DOT, CR, LF]) : new Uint8Array([DOT, CR, LF]);
  }
}

async function* pieces(
  body: Uint8Array | AsyncIterable<Uint8Array>,
  size: number,
): AsyncGenerator<Uint8Array> {
  if (body instanceof Uint8Array) {
    for (let i = 0; i < body.length; i += size) yield body.subarray(i, i + size);
    return;
  }
  for await (const chunk of body) {
    for (let i = 0; i < chunk.length; i += size) yield chunk.subarray(i, i + size);
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * The stuffed body plus the terminator as a sequence of writes of at least `writeSize` bytes
 * (only the last may be smaller), so a large body is never held whole and small input chunks
 * do not become many small writes.
 */
export async function* stuffedChunks(
  body: Uint8Array | AsyncIterable<Uint8Array>,
  writeSize = WRITE_SIZE,
): AsyncGenerator<Uint8Array> {
  const stuffer = new DotStuffer();
  let parts: Uint8Array[] = [];
  let total = 0;
  for await (const piece of pieces(body, writeSize)) {
    const out = stuffer.push(piece);
    if (out.length === 0) continue;
    parts.push(out);
    total += out.length;
    if (total >= writeSize) {
      yield concat(parts, total);
      parts = [];
      total = 0;
    }
  }
  const tail = stuffer.end();
  parts.push(tail);
  yield concat(parts, total + tail.length);
}
