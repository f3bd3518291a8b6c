// Command-line framing for SMTP/LMTP: only CR LF ends a line (RFC 5321 §2.3.8, §4.1.1),
// and a line over the limit (RFC 5321 §4.5.3.1.4) is reported once and then skipped
// without ever being held in memory.

const CR = 13;
const LF = 10;

export type Line =
  | { kind: "line"; /** latin1-decoded, without CRLF */ text: string }
  | { kind: "too_long" };

const TOO_LONG: Line = Object.freeze({ kind: "too_long" });

// WHATWG "latin1" is windows-1252: right for ASCII, wrong for 0x80-0x9F. Input is
// almost always ASCII, so decode with it and fall back to an exact mapping otherwise.
const windows1252 = new TextDecoder("latin1");
const NON_ASCII = /[\x80-\uffff]/;

/** Exact ISO-8859-1 decoding: byte n becomes U+00nn, so string offsets are byte offsets. */
export function latin1(bytes: Uint8Array): string {
  const fast = windows1252.decode(bytes);
  if (!NON_ASCII.test(fast)) return fast;
  let out = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    out += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  return out;
}

/** The inverse of latin1() for strings whose characters are all below U+0100. */
function latin1Bytes(s: string, out: Uint8Array, at: number): number {
  for (let i = 0; i < s.length; i++) out[at + i] = s.charCodeAt(i);
  return at + s.length;
}

// A line over the limit, in the queue. Its text is kept only while a complete line waits
// ahead of it: that line may be DATA, and then this one is message content (takeRest).
interface TooLong {
  readonly raw: string | undefined;
}

type Item = string | TooLong;

/**
 * Splits pushed bytes into CRLF-terminated lines.
 *
 * Each pushed chunk is decoded once; complete lines wait in a queue as slices of that
 * text until next() takes them. At most one partial line is kept, as bytes. A line
 * longer than maxLine is reported as "too_long" once, as soon as nothing waits ahead of
 * it, and from then on the rest of it, up to and including its CRLF, is dropped as it
 * arrives. So when the caller takes lines as they come, the reader never holds more than
 * maxLine + 1 bytes between pushes, however long the line. Bytes are only ever dropped
 * when no complete line waits ahead, so takeRest() right after a line is always exact.
 */
export class LineReader {
  readonly #maxLine: number;
  #queue: (Item | undefined)[] = [];
  #head = 0;
  #queuedBytes = 0;
  // How many complete lines (not TooLong) wait in the queue.
  #linesWaiting = 0;
  // The partial line (no CRLF yet), possibly ending with the CR of a CRLF still to come.
  // Kept as a copy so that no pushed chunk stays referenced while a client idles. It only
  // grows past maxLine + 1 while a line waits ahead of it.
  #partial: Uint8Array;
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

  /** Bytes currently held: queued lines (with their CRLF) plus the partial line. */
  get buffered(): number {
    return this.#queuedBytes + this.#partialLen;
  }

  /** Appends input. The chunk is not kept: what is needed is copied. */
  push(chunk: Uint8Array): void {
    const n = chunk.length;
    if (n === 0) return;
    let i = 0;

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
      if (i >= n) return;
    }

    if (this.#partialLen > 0) {
      i = this.#completePartial(chunk, i);
      if (i < 0 || i >= n) return;
    }

    // Whole lines in the rest of the chunk: one decoding, then slices of it.
    const text = latin1(i === 0 ? chunk : chunk.subarray(i));
    let k = 0;
    for (;;) {
      const cr = text.indexOf("\r\n", k);
      if (cr < 0) break;
      if (cr - k > this.#maxLine) this.#enqueueTooLong(() => text.slice(k, cr));
      else this.#enqueueLine(text.slice(k, cr));
      k = cr + 2;
    }
    if (k < text.length) this.#growPartial(chunk, i + k, n);
  }

  /** The next complete line, or null when more input is needed. */
  next(): Line | null {
    if (this.#head >= this.#queue.length) {
      // A partial line kept past the limit while lines waited ahead: its turn has come.
      if (this.#partialContentLen() > this.#maxLine) {
        this.#startDiscarding(this.#partial[this.#partialLen - 1] === CR);
        return TOO_LONG;
      }
      return null;
    }
    const item = this.#queue[this.#head];
    this.#queue[this.#head] = undefined;
    this.#head++;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    }
    if (item === undefined) return null; // not reached: the queue holds no holes ahead
    if (typeof item !== "string") {
      if (item.raw !== undefined) this.#queuedBytes -= item.raw.length + 2;
      return TOO_LONG;
    }
    this.#queuedBytes -= item.length + 2;
    this.#linesWaiting--;
    return { kind: "line", text: item };
  }

  /**
   * Removes and returns every buffered byte not yet taken by next(), for the switch to
   * DATA; the reader starts over. Exact when called right after next() returned a line.
   */
  takeRest(): Uint8Array {
    const out = new Uint8Array(this.buffered);
    let o = 0;
    for (let j = this.#head; j < this.#queue.length; j++) {
      const item = this.#queue[j];
      const line = typeof item === "string" ? item : item?.raw;
      if (line === undefined) continue;
      o = latin1Bytes(line, out, o);
      out[o++] = CR;
      out[o++] = LF;
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
    this.#linesWaiting = 0;
    this.#dropPartial();
    this.#discarding = false;
    this.#discardCR = false;
  }

  #enqueueLine(line: string): void {
    this.#queue.push(line);
    this.#queuedBytes += line.length + 2;
    this.#linesWaiting++;
  }

  // raw() is called only when the text must be kept: a line waits ahead.
  #enqueueTooLong(raw: () => string): void {
    if (this.#linesWaiting === 0) {
      this.#queue.push({ raw: undefined });
      return;
    }
    const text = raw();
    this.#queue.push({ raw: text });
    this.#queuedBytes += text.length + 2;
  }

  // Continues the partial line with chunk[i..]. Returns where the unread rest of the
  // chunk starts, or -1 when the whole chunk was used up.
  #completePartial(chunk: Uint8Array, i: number): number {
    const len = this.#partialLen;
    let crAt: number; // the line's content ends before chunk[crAt]; its LF is at crAt + 1
    if (this.#partial[len - 1] === CR && chunk[i] === LF) {
      crAt = i - 1;
    } else {
      crAt = findCRLF(chunk, i);
      if (crAt < 0) {
        this.#growPartial(chunk, i, chunk.length);
        return -1;
      }
    }
    const contentLen = len + crAt - i; // crAt = i - 1 drops the partial's own CR
    const text = () => {
      const head = latin1(this.#partial.subarray(0, Math.min(len, contentLen)));
      return crAt > i ? head + latin1(chunk.subarray(i, crAt)) : head;
    };
    if (contentLen > this.#maxLine) this.#enqueueTooLong(text);
    else this.#enqueueLine(text());
    this.#dropPartial();
    return crAt + 2;
  }

  // Appends chunk[from..to] (which holds no CRLF) to the partial line. Once it cannot fit
  // (a trailing CR may still be the start of the CRLF) and no line waits ahead, it is
  // reported at once and dropped.
  #growPartial(chunk: Uint8Array, from: number, to: number): void {
    const total = this.#partialLen + to - from;
    const endsWithCR = chunk[to - 1] === CR;
    if (total - (endsWithCR ? 1 : 0) > this.#maxLine && this.#linesWaiting === 0) {
      this.#queue.push({ raw: undefined });
      this.#startDiscarding(endsWithCR);
      return;
    }
    if (total > this.#partial.length) {
      const bigger = new Uint8Array(Math.max(total, 2 * this.#partial.length));
      bigger.set(this.#partial.subarray(0, this.#partialLen));
      this.#partial = bigger;
    }
    this.#partial.set(chunk.subarray(from, to), this.#partialLen);
    this.#partialLen = total;
  }

  #partialContentLen(): number {
    const len = this.#partialLen;
    return len > 0 && this.#partial[len - 1] === CR ? len - 1 : len;
  }

  #startDiscarding(lastWasCR: boolean): void {
    this.#dropPartial();
    this.#discarding = true;
    this.#discardCR = lastWasCR;
  }

  #dropPartial(): void {
    this.#partialLen = 0;
    if (this.#partial.length > this.#maxLine + 1) this.#partial = new Uint8Array(this.#maxLine + 1);
  }
}

/** Index of the CR of the first CR LF in bytes at or after from, or -1. */
function findCRLF(bytes: Uint8Array, from: number): number {
  let lf = bytes.indexOf(LF, from);
  while (lf >= 0) {
    if (lf > from && bytes[lf - 1] === CR) return lf - 1;
    lf = bytes.indexOf(LF, lf + 1);
  }
  return -1;
}
