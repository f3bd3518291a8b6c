// Test helpers shared by tests/net and tests/server: throwaway certificates and a line client.

export interface TestCert {
  readonly cert: string;
  readonly key: string;
  readonly certPath: string;
  readonly keyPath: string;
}

/** A fresh self-signed P-256 certificate for "localhost", valid one day. */
export async function makeCert(): Promise<TestCert> {
  const dir = await Deno.makeTempDir({ prefix: "stoken-cert-" });
  const certPath = `${dir}/cert.pem`;
  const keyPath = `${dir}/key.pem`;
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      // Without this, openssl marks the certificate as a CA, which rustls (Deno's client)
      // refuses as a server certificate ("CaUsedAsEndEntity").
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-days",
      "1",
      "-keyout",
      keyPath,
      "-out",
      certPath,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`openssl failed: ${new TextDecoder().decode(out.stderr)}`);
  return {
    cert: await Deno.readTextFile(certPath),
    key: await Deno.readTextFile(keyPath),
    certPath,
    keyPath,
  };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A client that speaks CRLF lines over a Deno connection (plain, TLS or unix). */
export class LineClient {
  #conn: Deno.Conn;
  #buf = new Uint8Array(0);

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  static async tcp(port: number, host = "127.0.0.1"): Promise<LineClient> {
    return new LineClient(await Deno.connect({ hostname: host, port }));
  }

  static async tls(port: number, ca: string): Promise<LineClient> {
    const conn = await Deno.connectTls({ hostname: "localhost", port, caCerts: [ca] });
    await conn.handshake();
    return new LineClient(conn);
  }

  static async unix(path: string): Promise<LineClient> {
    return new LineClient(await Deno.connect({ transport: "unix", path }));
  }

  async send(s: string | Uint8Array): Promise<void> {
    const data = typeof s === "string" ? enc.encode(s) : s;
    let off = 0;
    while (off < data.length) off += await this.#conn.write(data.subarray(off));
  }

  /** Upgrade to TLS (client side of STARTTLS). Nothing may be buffered unread. */
  async startTls(ca: string): Promise<void> {
    if (this.#buf.length > 0) throw new Error("Unread bytes before the TLS upgrade");
    const tls = await Deno.startTls(this.#conn as Deno.TcpConn, {
      hostname: "localhost",
      caCerts: [ca],
    });
    await tls.handshake();
    this.#conn = tls;
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(16384);
    let n: number | null;
    try {
      n = await this.#conn.read(chunk);
    } catch {
      n = null; // Reset by peer counts as end of stream here.
    }
    if (n === null) return false;
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
    return true;
  }

  /** The next line without its CRLF, or null at end of stream. */
  async line(): Promise<string | null> {
    for (;;) {
      const i = this.#buf.findIndex((b, j) => b === 13 && this.#buf[j + 1] === 10);
      if (i >= 0) {
        const line = dec.decode(this.#buf.subarray(0, i));
        this.#buf = this.#buf.subarray(i + 2);
        return line;
      }
      if (!(await this.#fill())) return null;
    }
  }

  /** One whole SMTP reply (all its lines joined with "\n"), or null at end of stream. */
  async reply(): Promise<string | null> {
    const lines: string[] = [];
    for (;;) {
      const l = await this.line();
      if (l === null) return lines.length ? lines.join("\n") : null;
      lines.push(l);
      if (l[3] !== "-") return lines.join("\n");
    }
  }

  /** Everything until the server closes. */
  async rest(): Promise<string> {
    while (await this.#fill()) {
      // keep reading
    }
    const s = dec.decode(this.#buf);
    this.#buf = new Uint8Array(0);
    return s;
  }

  closeWrite(): Promise<void> {
    return (this.#conn as Deno.TcpConn).closeWrite();
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }
}

export function bytes(s: string): Uint8Array {
  return enc.encode(s);
}

export function text(b: Uint8Array | null): string | null {
  return b === null ? null : dec.decode(b);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
