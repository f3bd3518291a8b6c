// Outbound connections for the SMTP/LMTP client, on node:net / node:tls (the same on Deno 2
// and Bun): plain TCP, implicit TLS (RFC 8314 §3) and the client side of STARTTLS (RFC 3207).
// Certificates are always verified: against `ca` when given, else the system roots, and the
// host name against `servername` (RFC 8314 §3, RFC 6125).
import * as net from "node:net";
import * as tls from "node:tls";
import { clearTimeout, setTimeout } from "node:timers";
import { SocketReader } from "./socket_reader.ts";
import type { Conn, TlsSource } from "./types.ts";

export interface ConnectOptions {
  host: string;
  port: number;
  /** Implicit TLS: the handshake happens before the first byte of SMTP. */
  tls: boolean;
  /** Name the certificate must match (and SNI); defaults to host unless host is an IP address. */
  servername?: string;
  /** PEM CA certificates to trust instead of the system roots. */
  ca?: string;
  /** Bound on the TCP connect plus, for implicit TLS, the handshake. */
  timeoutMs: number;
}

export interface StartTlsOptions {
  servername: string;
  ca?: string;
  timeoutMs: number;
}

export type ConnectFailure = "timeout" | "network" | "tls";

/** Why a connection or TLS upgrade failed, with the kind of failure for the caller to act on. */
export class ConnectError extends Error {
  override name = "ConnectError";
  readonly kind: ConnectFailure;

  constructor(kind: ConnectFailure, message: string) {
    super(message);
    this.kind = kind;
  }
}

function describe(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function checkTimeout(timeoutMs: number): void {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`Invalid timeout "${timeoutMs}"`);
  }
}

/**
 * Secure contexts by trusted CA text: parsing the CA and building a context for every
 * connection cost about 1.5 ms of CPU per token delivery. Without a CA the runtime's
 * default (its root store) is left as it is.
 */
const contexts = new Map<string, tls.SecureContext>();

function contextFor(ca: string): tls.SecureContext {
  let ctx = contexts.get(ca);
  if (ctx === undefined) {
    ctx = tls.createSecureContext({ ca });
    if (contexts.size >= 16) contexts.clear();
    contexts.set(ca, ctx);
  }
  return ctx;
}

function tlsOptions(servername: string | undefined, ca: string | undefined): tls.ConnectionOptions {
  // rejectUnauthorized and the default checkServerIdentity: an unverified peer is never used.
  const o: tls.ConnectionOptions = { rejectUnauthorized: true };
  if (servername !== undefined) o.servername = servername;
  if (ca !== undefined) o.secureContext = contextFor(ca);
  return o;
}

/**
 * Waits for `event` on a connecting socket. Errors before the TCP connection is up are
 * network failures; after it (during a TLS handshake) they are TLS failures.
 */
function established(
  sock: net.Socket,
  event: "connect" | "secureConnect",
  tcpUp: boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  // A late error (after this settled) must never be unhandled: it would end the process.
  sock.on("error", () => {});
  return new Promise<void>((resolve, reject) => {
    let connected = tcpUp;
    const onConnect = () => {
      connected = true;
    };
    const done = (err: ConnectError | null) => {
      clearTimeout(timer);
      sock.removeListener("connect", onConnect);
      sock.removeListener(event, onOk);
      sock.removeListener("error", onError);
      sock.removeListener("close", onClose);
      if (err === null) {
        resolve();
      } else {
        sock.destroy();
        reject(err);
      }
    };
    const onOk = () => done(null);
    const onError = (e: Error) => {
      const tlsStage = connected && event === "secureConnect";
      const kind = tlsStage ? "tls" : "network";
      const prefix = tlsStage ? `TLS handshake with ${what} failed` : `Cannot connect to ${what}`;
      done(new ConnectError(kind, `${prefix}: ${e.message}`));
    };
    const onClose = () => {
      const kind = connected && event === "secureConnect" ? "tls" : "network";
      done(new ConnectError(kind, `Connection to ${what} closed during setup`));
    };
    const timer = setTimeout(
      () => done(new ConnectError("timeout", `Connecting to ${what} timed out`)),
      timeoutMs,
    );
    if (event === "secureConnect") sock.once("connect", onConnect);
    sock.once(event, onOk);
    sock.once("error", onError);
    sock.once("close", onClose);
  });
}

/** Opens a TCP connection, with implicit TLS when opts.tls (RFC 8314 §3). */
export async function connect(opts: ConnectOptions): Promise<Conn> {
  checkTimeout(opts.timeoutMs);
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) {
    throw new RangeError(`Invalid port "${opts.port}"`);
  }
  const what = `"${describe(opts.host, opts.port)}"`;
  let sock: net.Socket;
  if (opts.tls) {
    // Without a servername node checks the certificate against host itself (an IP address
    // then has to be in the certificate's IP SANs) and sends no SNI for an IP.
    const servername = opts.servername ??
      (net.isIP(opts.host) === 0 ? opts.host : undefined);
    sock = tls.connect({ host: opts.host, port: opts.port, ...tlsOptions(servername, opts.ca) });
  } else {
    sock = net.connect({ host: opts.host, port: opts.port });
  }
  await established(sock, opts.tls ? "secureConnect" : "connect", false, opts.timeoutMs, what);
  return new ClientConn(sock, opts.tls, sock.remoteAddress ?? opts.host, sock.remotePort ?? 0);
}

/**
 * Client side of STARTTLS (RFC 3207): call it after reading the server's 220 to the
 * STARTTLS command. Every byte received and not yet read is discarded first: the server
 * (or an attacker in the path) may have sent plaintext after its 220, and nothing sent in
 * clear may be taken as a reply after the handshake (RFC 3207 §4.2, the client-side twin of
 * CVE-2011-0411). The returned Conn replaces `conn`, which is unusable afterwards.
 */
export function startTlsClient(conn: Conn, opts: StartTlsOptions): Promise<Conn> {
  return ClientConn.upgrade(conn, opts);
}

/** A client connection, pull-based like the server's (SocketReader). */
class ClientConn implements Conn {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly secure: boolean;
  #sock: net.Socket;
  #reader: SocketReader;

  constructor(sock: net.Socket, secure: boolean, remoteAddress: string, remotePort: number) {
    this.#sock = sock;
    this.secure = secure;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
    this.#reader = new SocketReader(sock);
    try {
      sock.setNoDelay(true);
    } catch {
      // Not supported on this socket: only latency is affected.
    }
  }

  static async upgrade(conn: Conn, opts: StartTlsOptions): Promise<Conn> {
    if (!(conn instanceof ClientConn)) {
      throw new TypeError("startTlsClient needs a connection made by connect()");
    }
    checkTimeout(opts.timeoutMs);
    if (conn.#reader.detached) throw new ConnectError("network", "Connection is closed");
    if (conn.secure) throw new ConnectError("tls", "Connection is already secure");
    const sock = conn.#sock;
    conn.#reader.detach();
    sock.on("error", () => {});
    // Drop whatever node has already buffered; later plaintext reaches the TLS layer and
    // fails the handshake, which is the safe outcome.
    while (sock.readableLength > 0 && sock.read() !== null) {
      // Discarded (no 'data' listener is attached any more).
    }
    if (sock.destroyed || !sock.writable) {
      throw new ConnectError("network", "Connection closed before the TLS handshake");
    }
    const what = `"${describe(conn.remoteAddress, conn.remotePort)}"`;
    const t = tls.connect({ socket: sock, ...tlsOptions(opts.servername, opts.ca) });
    try {
      await established(t, "secureConnect", true, opts.timeoutMs, what);
    } catch (e) {
      sock.destroy();
      throw e;
    }
    return new ClientConn(t, true, conn.remoteAddress, conn.remotePort);
  }

  read(): Promise<Uint8Array | null> {
    return this.#reader.read();
  }

  write(data: Uint8Array | string): Promise<void> {
    if (this.#reader.detached || this.#sock.destroyed || !this.#sock.writable) {
      return Promise.reject(new ConnectError("network", "Connection is closed"));
    }
    return new Promise((resolve, reject) => {
      this.#sock.write(
        data,
        (err) =>
          err ? reject(new ConnectError("network", `Write failed: ${err.message}`)) : resolve(),
      );
    });
  }

  startTls(_tls: TlsSource): Promise<Conn> {
    return Promise.reject(new TypeError("A client connection upgrades with startTlsClient()"));
  }

  close(): void {
    if (this.#reader.detached) return;
    this.#reader.detach();
    // The client speaks last (QUIT) or gives up: nothing more is owed to the peer.
    this.#sock.on("error", () => {});
    this.#sock.destroy();
  }
}
