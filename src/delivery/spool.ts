// Message bodies being received: in memory while small, spilled to a private file in
// the spool directory once they pass `spillBytes`, so a 50 MB message costs a 64 KiB
// write buffer rather than 50 MB of heap. The spool file is scratch space, not the
// durable copy (the Maildir file is fsync'd), so it is not fsync'd unless asked.
import type { FileHandle } from "node:fs/promises";
import { mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Spool, SpooledMessage } from "../session/deps.ts";

const KiB = 1024;
/** Writes to the spool file are coalesced to at least this size. */
const WRITE_BYTES = 64 * KiB;
/** chunks() reads the spool file back in pieces of this size. */
const READ_BYTES = 256 * KiB;

/** Options of SpillingMessage.chunks() beyond the SpooledMessage interface. */
export interface ChunkOptions {
  /** Each chunk is used before the next is asked for, so its buffer may be reused. */
  readonly reuse?: boolean;
}

export class MemorySpillSpool implements Spool {
  /**
   * @param dir where spool files go (created on first spill, mode 0700)
   * @param spillBytes messages larger than this move from memory to a file
   * @param fsync datasync the spool file before it is read back (not needed for safety)
   */
  constructor(
    private readonly dir: string,
    private readonly spillBytes: number = 256 * KiB,
    private readonly fsync: boolean = false,
  ) {}

  create(): Promise<SpooledMessage> {
    return Promise.resolve(new SpillingMessage(this.dir, this.spillBytes, this.fsync));
  }
}

function randomHex(bytes: number): string {
  return crypto.getRandomValues(new Uint8Array(bytes)).toHex();
}

/**
 * Written once, front to back, then read (any number of times, concurrently: one
 * reader per recipient). The first chunks() call seals the message: later writes fail.
 */
class SpillingMessage implements SpooledMessage {
  #size = 0;
  /** Copies of the chunks written so far, while the message is in memory. */
  #memory: Uint8Array[] = [];
  #file: FileHandle | null = null;
  #path: string | null = null;
  /** Bytes already written to the file. */
  #fileBytes = 0;
  #buffer: Uint8Array | null = null;
  #buffered = 0;
  #writing = false;
  #sealed: Promise<void> | null = null;
  #broken: Error | null = null;
  #discarded = false;

  constructor(
    private readonly dir: string,
    private readonly spillBytes: number,
    private readonly fsync: boolean,
  ) {}

  get size(): number {
    return this.#size;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.#usable();
    if (this.#sealed) throw new Error("Spooled message is being read: no more writes");
    if (this.#writing) throw new Error("Spooled message writes must not overlap");
    this.#writing = true;
    try {
      if (this.#file === null && this.#size + chunk.length <= this.spillBytes) {
        // Copy: callers reuse their read buffers.
        this.#memory.push(chunk.slice());
      } else {
        if (this.#file === null) await this.#spill();
        await this.#append(chunk);
      }
      this.#size += chunk.length;
    } catch (e) {
      this.#broken = e as Error;
      throw e;
    } finally {
      this.#writing = false;
    }
  }

  /**
   * With `reuse`, the caller promises to be done with each chunk before it asks for the
   * next: a spooled file is then read back through one buffer, not a fresh one per piece
   * (a 50 MB message would otherwise leave 50 MB of garbage behind, benchmark M2).
   */
  async *chunks(opts: ChunkOptions = {}): AsyncIterable<Uint8Array> {
    this.#usable();
    if (this.#writing) throw new Error("Spooled message is still being written");
    await (this.#sealed ??= this.#seal());
    const file = this.#file;
    if (file === null) {
      yield* this.#memory;
      return;
    }
    const total = this.#fileBytes;
    let shared: Uint8Array | null = null;
    for (let pos = 0; pos < total;) {
      const n = Math.min(READ_BYTES, total - pos);
      // Without reuse, a fresh buffer per piece: the consumer may keep it.
      const piece = opts.reuse
        ? (shared ??= new Uint8Array(Math.min(READ_BYTES, total))).subarray(0, n)
        : new Uint8Array(n);
      for (let got = 0; got < n;) {
        const { bytesRead } = await file.read(piece, got, n - got, pos + got);
        if (bytesRead === 0) throw new Error("Spool file ended early");
        got += bytesRead;
      }
      pos += n;
      yield piece;
    }
  }

  async discard(): Promise<void> {
    if (this.#discarded) return;
    this.#discarded = true;
    this.#memory = [];
    this.#buffer = null;
    const file = this.#file;
    const path = this.#path;
    this.#file = null;
    if (file) await file.close().catch(() => {});
    if (path) await rm(path, { force: true });
  }

  #usable(): void {
    if (this.#discarded) throw new Error("Spooled message was discarded");
    if (this.#broken) throw new Error(`Spooled message is incomplete: ${this.#broken.message}`);
  }

  /** Move what is in memory into a new private spool file. */
  async #spill(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const path = join(this.dir, `${randomHex(12)}.spool`);
    // O_EXCL and 0600: the body is private and the name is never shared.
    this.#file = await open(path, "wx+", 0o600);
    this.#path = path;
    this.#buffer = new Uint8Array(WRITE_BYTES);
    const held = this.#memory;
    this.#memory = [];
    for (const c of held) await this.#append(c);
  }

  /** Add bytes through the coalescing buffer; large pieces go straight to the file. */
  async #append(chunk: Uint8Array): Promise<void> {
    const buffer = this.#buffer!;
    let off = 0;
    while (off < chunk.length) {
      if (this.#buffered === 0 && chunk.length - off >= WRITE_BYTES) {
        await this.#writeAll(chunk.subarray(off));
        return;
      }
      const n = Math.min(WRITE_BYTES - this.#buffered, chunk.length - off);
      buffer.set(chunk.subarray(off, off + n), this.#buffered);
      this.#buffered += n;
      off += n;
      if (this.#buffered === WRITE_BYTES) await this.#flush();
    }
  }

  async #flush(): Promise<void> {
    if (this.#buffered === 0) return;
    const n = this.#buffered;
    this.#buffered = 0;
    await this.#writeAll(this.#buffer!.subarray(0, n));
  }

  /** Positional writes, so concurrent readers (positional too) never move a shared offset. */
  async #writeAll(data: Uint8Array): Promise<void> {
    const file = this.#file!;
    for (let off = 0; off < data.length;) {
      const { bytesWritten } = await file.write(data, off, data.length - off, this.#fileBytes);
      off += bytesWritten;
      this.#fileBytes += bytesWritten;
    }
  }

  async #seal(): Promise<void> {
    if (this.#file === null) return;
    await this.#flush();
    this.#buffer = null;
    if (this.fsync) await this.#file.datasync();
  }
}
