// Pull-based reading of a node socket, shared by server and client connections. The socket
// stays paused except while a read() waits, so input nobody asked for stays in the kernel:
// before a TLS upgrade it can be told apart and dropped (RFC 3207 §4.2), and a slow reader
// never buffers a fast writer's data in memory.
import type * as net from "node:net";

export class SocketReader {
  readonly #sock: net.Socket;
  /** Received chunks nobody read yet, each with the mark current when it arrived. */
  #queue: { chunk: Uint8Array; mark: number }[] = [];
  #waiters: ((chunk: Uint8Array | null) => void)[] = [];
  #eof = false;
  #detached = false;
  /** A tag the owner moves forward (the server counts its writes with it). */
  mark = 0;

  constructor(sock: net.Socket) {
    this.#sock = sock;
    // Pause before adding the 'data' listener, or adding it would switch to flowing mode.
    sock.pause();
    sock.on("data", this.#onData);
    sock.on("end", this.#onEnd);
    sock.on("close", this.#onEnd);
    sock.on("error", this.#onEnd);
  }

  get detached(): boolean {
    return this.#detached;
  }

  #onData = (buf: Uint8Array): void => {
    this.#sock.pause();
    if (this.#detached) return;
    const chunk = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    const waiter = this.#waiters.shift();
    if (waiter) waiter(chunk);
    else this.#queue.push({ chunk, mark: this.mark });
  };

  #onEnd = (): void => {
    this.#eof = true;
    for (const w of this.#waiters.splice(0)) w(null);
  };

  read(): Promise<Uint8Array | null> {
    if (this.#detached) return Promise.resolve(null);
    const next = this.#queue.shift();
    if (next) return Promise.resolve(next.chunk);
    if (this.#eof) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.#sock.resume();
    });
  }

  /** Move whatever node has buffered into the queue (each read() emits 'data'). */
  drainBuffered(): void {
    while (this.#sock.readableLength > 0 && this.#sock.read() !== null) {
      // Queued by #onData.
    }
  }

  /** Unread chunks that arrived while the mark was `mark`. */
  unreadWithMark(mark: number): Uint8Array[] {
    return this.#queue.filter((r) => r.mark === mark).map((r) => r.chunk);
  }

  /** Stop reading: listeners removed, unread input dropped, pending reads get null. */
  detach(): void {
    this.#detached = true;
    this.#queue = [];
    const sock = this.#sock;
    sock.pause();
    sock.removeListener("data", this.#onData);
    sock.removeListener("end", this.#onEnd);
    sock.removeListener("close", this.#onEnd);
    sock.removeListener("error", this.#onEnd);
    for (const w of this.#waiters.splice(0)) w(null);
  }
}
