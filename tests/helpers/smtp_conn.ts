// A raw SMTP/LMTP client connection for end-to-end tests: write exact bytes, read replies.
// Used where a stock client cannot do what a test needs (smuggling, oversized lines, SIGTERM
// in the middle of DATA). TLS does not verify the server's self-signed certificate.
import net from "node:net";
import tls from "node:tls";

export interface SmtpReply {
  code: number;
  /** Every line of the reply, without CRLF. */
  lines: string[];
  /** The text after the code of every line, joined with "\n". */
  text: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export class SmtpConn {
  #socket: net.Socket;
  #buf = new Uint8Array(0);
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#attach(socket);
  }

  /** Plain TCP to 127.0.0.1:port. */
  static tcp(port: number, host = "127.0.0.1"): Promise<SmtpConn> {
    return SmtpConn.#connected(net.connect({ port, host }), "connect");
  }

  /** Plain connection to a unix socket. */
  static unix(path: string): Promise<SmtpConn> {
    return SmtpConn.#connected(net.connect({ path }), "connect");
  }

  /** Implicit TLS (RFC 8314) to 127.0.0.1:port. */
  static tls(port: number, host = "127.0.0.1"): Promise<SmtpConn> {
    return SmtpConn.#connected(
      tls.connect({ port, host, rejectUnauthorized: false }),
      "secureConnect",
    );
  }

  static #connected(socket: net.Socket, event: string): Promise<SmtpConn> {
    return new Promise((resolve, reject) => {
      socket.once("error", reject);
      socket.once(event, () => {
        socket.off("error", reject);
        resolve(new SmtpConn(socket));
      });
    });
  }

  /** Bytes received and not yet consumed by a read. */
  get buffered(): Uint8Array {
    return this.#buf;
  }

  /** True once the server closed the connection (end of stream seen). */
  get ended(): boolean {
    return this.#ended;
  }

  /** Client side of STARTTLS: call after the server's 220 reply. */
  async startTls(): Promise<void> {
    const plain = this.#socket;
    plain.removeAllListeners("data");
    plain.removeAllListeners("end");
    plain.removeAllListeners("close");
    plain.removeAllListeners("error");
    const secure = tls.connect({ socket: plain, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", () => resolve());
      secure.once("error", reject);
    });
    this.#socket = secure;
    this.#attach(secure);
  }

  write(data: string | Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#socket.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Write one command line (CRLF added) and read its reply. */
  async command(line: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<SmtpReply> {
    await this.write(line + "\r\n");
    return await this.readReply(timeoutMs);
  }

  /** Read one complete (possibly multi-line) reply; rejects on timeout or end of stream. */
  async readReply(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<SmtpReply> {
    const deadline = Date.now() + timeoutMs;
    const lines: string[] = [];
    for (;;) {
      const line = await this.#readLine(deadline);
      lines.push(line);
      const m = /^(\d{3})([ -])/.exec(line);
      if (!m) throw new Error(`Malformed reply line: ${JSON.stringify(line)}`);
      if (m[2] === " " || line.length === 3) {
        return {
          code: Number(m[1]),
          lines,
          text: lines.map((l) => l.slice(4)).join("\n"),
        };
      }
    }
  }

  /** Resolves true when the server closes the connection within the time, false otherwise. */
  async closedByPeer(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#ended) {
      if (!(await this.#waitData(deadline))) return false;
      this.#buf = new Uint8Array(0);
    }
    return true;
  }

  close(): void {
    this.#socket.destroy();
  }

  #attach(socket: net.Socket): void {
    socket.on("data", (chunk: Uint8Array) => {
      const next = new Uint8Array(this.#buf.length + chunk.length);
      next.set(this.#buf);
      next.set(chunk, this.#buf.length);
      this.#buf = next;
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (e: Error) => {
      this.#error = e;
      this.#ended = true;
      this.#notify();
    });
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  /** Wait for more data or end of stream; false on timeout. */
  #waitData(deadline: number): Promise<boolean> {
    const left = deadline - Date.now();
    if (left <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = null;
        resolve(false);
      }, left);
      this.#wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }

  async #readLine(deadline: number): Promise<string> {
    for (;;) {
      const i = indexOfCrlf(this.#buf);
      if (i >= 0) {
        const line = new TextDecoder().decode(this.#buf.subarray(0, i));
        this.#buf = this.#buf.slice(i + 2);
        return line;
      }
      if (this.#ended) {
        const why = this.#error ? `: ${this.#error.message}` : "";
        throw new Error(`Connection closed before a complete reply${why}`);
      }
      if (!(await this.#waitData(deadline))) {
        throw new Error(
          `Timed out waiting for a reply (have ${
            JSON.stringify(new TextDecoder().decode(this.#buf.subarray(0, 200)))
          })`,
        );
      }
    }
  }
}

function indexOfCrlf(b: Uint8Array): number {
  for (let i = 0; i + 1 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10) return i;
  }
  return -1;
}
