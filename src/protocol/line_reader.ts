// Command-line framing for SMTP/LMTP: only CR LF ends a line (RFC 5321 §2.3.8, §4.1.1),
// and a line over the limit (RFC 5321 §4.5.3.1.4) is reported once and then skipped
// without ever being held in memory.

const CR = 13;
const LF = 10;

export type Line =
  | { kind: "line"; /** latin1-decoded, without CRLF */ text: string }
  | { kind: "too_long" };

const TOO_LONG: Line = Object.freeze({ kind: "too_long" });

// WHATWG "latin1" is windows-1252: right for ASCII, wrong for 0x80-0x9F. Lines are
// almost always ASCII, so decode with it and fall back to an exact mapping otherwise.
const windows1252 = new TextDecoder("latin1");
const NON_ASCII = /[\x80-\uffff]/;

/** Exact ISO-8859-1 decoding: byte n becomes U+00nn. */
export function latin1(bytes: Uint8Array): string {
  const fast = windows1252.decode(bytes);
  if (!NON_ASCII.test(fast)) return fast;
  let out = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    out += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  return out;
}

/**
 * Splits pushed bytes into CRLF-terminated lines.
 *
 * Complete lines wait in a queue (as views of one copy per pushed chunk) until next()
 * takes them; at most one partial line is kept, never longer than maxLine + 1 bytes.
 * A partial line that grows past maxLine is queued as "too_long" at once and the rest
 * of it, up to and including its CRLF, is dropped as it arrives.
 */
export class LineReader {
  readonly #maxLine: number;
  // Queued items: a Uint8Array is one complete line including its CRLF; null is "too_long".
  #queue: (Uint8Array | null)[] = [];
  #head = 0;
  #queuedBytes = 0;
  // The partial line (no CRLF yet), possibly ending with the CR of a CRLF still to come.
  readonly #partial: Uint8Array;
  #partialLen = 0;
  // Dropping the rest of an over-long line; #discardCR: the last dropped byte was a CR.
  #discarding = false;
  #discardCR = false;

  constructor(maxLine: number) {
    if (!Number.isInteger(maxLine) || maxLine < 1) {
      throw new RangeError(`Invalid maximum line length "${maxLine}"`);
    }
    this.#maxLine = maxLine;
    this.#partial = new Uint8Array(maxLine + 1);
  }

  /** Bytes currently held: queued complete lines plus the partial line. */
  get buffered(): number {
    return this.#queuedBytes + this.#partialLen;
  }

  /** Appends input. The chunk is not kept: what is needed is copied. */
  push(chunk: Uint8Array): void {
    const n = chunk.length;
    let i = 0;
    if (n === 0) return;

    if (this.#discarding) {
      if (this.#discardCR && chunk[0] === LF) {
        i = 1;
      } else {
        const cr = findCRLF(chunk, 0);
        if (cr < 0) {
          this.#discardCR = chunk[n - 1] === CR;
          return;
        }
        i = cr + 2;
      }
      this.#discarding = false;
      this.#discardCR = false;
    }

    if (this.#partialLen > 0 && i < n) {
      i = this.#completePartial(chunk, i);
      if (i < 0) return;
    }
    if (i >= n) return;

    // One copy of the rest of the chunk; complete lines become views into it.
    const copy = chunk.slice(i);
    const m = copy.length;
    let k = 0;
    for (;;) {
      const cr = findCRLF(copy, k);
      if (cr < 0) break;
      if (cr - k > this.#maxLine) this.#enqueue(null);
      else this.#enqueue(copy.subarray(k, cr + 2));
      k = cr + 2;
    }
    if (k < m) this.#startPartial(copy, k, m);
  }

  /** The next complete line, or null when more input is needed. */
  next(): Line | null {
    if (this.#head >= this.#queue.length) return null;
    const item = this.#queue[this.#head];
    this.#queue[this.#head] = null;
    this.#head++;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    }
    if (item === null || item === undefined) return TOO_LONG;
    this.#queuedBytes -= item.length;
    return { kind: "line", text: latin1(item.subarray(0, item.length - 2)) };
  }

  /**
   * Removes and returns every buffered byte not yet taken by next(), for the switch to
   * DATA. Queued "too_long" markers have no bytes left to return; the reader starts over.
   */
  takeRest(): Uint8Array {
    const out = new Uint8Array(this.buffered);
    let o = 0;
    for (let j = this.#head; j < this.#queue.length; j++) {
      const item = this.#queue[j];
      if (item) {
        out.set(item, o);
        o += item.length;
      }
    }
    out.set(this.#partial.subarray(0, this.#partialLen), o);
    this.clear();
    return out;
  }

  /** Drops everything buffered; after STARTTLS nothing sent in clear may run (RFC 3207 §4.2). */
  clear(): void {
    this.#queue = [];
    this.#head = 0;
    this.#queuedBytes = 0;
    this.#partialLen = 0;
    this.#discarding = false;
    this.#discardCR = false;
  }

  #enqueue(line: Uint8Array | null): void {
    this.#queue.push(line);
    if (line) this.#queuedBytes += line.length;
  }

  // Continues the partial line with chunk[i..]. Returns where the unread rest of the
  // chunk starts, or -1 when the whole chunk was used up.
  #completePartial(chunk: Uint8Array, i: number): number {
    const n = chunk.length;
    const len = this.#partialLen;
    let end: number; // index in chunk just after the LF that ends the line
    if (this.#partial[len - 1] === CR && chunk[i] === LF) {
      end = i + 1;
    } else {
      const cr = findCRLF(chunk, i);
      if (cr < 0) {
        this.#growPartial(chunk, i, n);
        return -1;
      }
      end = cr + 2;
    }
    const total = len + end - i;
    if (total - 2 > this.#maxLine) {
      this.#enqueue(null);
    } else {
      const line = new Uint8Array(total);
      line.set(this.#partial.subarray(0, len));
      line.set(chunk.subarray(i, end), len);
      this.#enqueue(line);
    }
    this.#partialLen = 0;
    return end;
  }

  #startPartial(bytes: Uint8Array, from: number, to: number): void {
    this.#partialLen = 0;
    this.#growPartial(bytes, from, to);
  }

  // Appends bytes[from..to] (which hold no CRLF) to the partial line, or gives up on the
  // line as soon as it cannot fit: a trailing CR may still be the start of the CRLF.
  #growPartial(bytes: Uint8Array, from: number, to: number): void {
    const total = this.#partialLen + to - from;
    const endsWithCR = bytes[to - 1] === CR;
    if (total - (endsWithCR ? 1 : 0) > this.#maxLine) {
      this.#enqueue(null);
      this.#partialLen = 0;
      this.#discarding = true;
      this.#discardCR = endsWithCR;
      return;
    }
    this.#partial.set(bytes.subarray(from, to), this.#partialLen);
    this.#partialLen = total;
  }
}

/** Index of the CR of the first CR LF in bytes at or after from, or -1. */
export function findCRLF(bytes: Uint8Array, from: number): number {
  let lf = bytes.indexOf(LF, from);
  while (lf >= 0) {
    if (lf > from && bytes[lf - 1] === CR) return lf - 1;
    lf = bytes.indexOf(LF, lf + 1);
  }
  return -1;
}
