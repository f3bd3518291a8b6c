// Listeners and connections on node:net / node:tls, which behave the same on Deno 2 and Bun.
// Deno has no server-side startTls, but a node:tls TLSSocket wraps an accepted node:net socket
// on both runtimes, so plain, STARTTLS and implicit-TLS connections share one code path.
import * as net from "node:net";
import * as tls from "node:tls";
import { Buffer } from "node:buffer";
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { chmod, lstat, readFile, unlink } from "node:fs/promises";
import process from "node:process";
import { clearTimeout, setImmediate, setTimeout } from "node:timers";
import { SocketReader } from "./socket_reader.ts";
import type { Conn, Listener, ListenSpec, TlsCredentials, TlsSource } from "./types.ts";

/** Longest a TLS handshake may take before the connection is dropped. */
const HANDSHAKE_TIMEOUT_MS = 30_000;
/**
 * After close(), how long incoming bytes are read and thrown away before the socket is
 * destroyed. Closing with unread input makes the kernel send RST, which can make the peer
 * lose our last reply (a 421 or 221); lingering lets it read the reply first.
 */
const LINGER_MS = 2_000;

function ignore(): void {}

// One secure context per credentials object: built once, so a reload (a new object from the
// TlsSource) takes effect for new handshakes while open connections keep theirs.
const contexts = new WeakMap<TlsCredentials, tls.SecureContext>();

function secureContextFor(source: TlsSource): tls.SecureContext {
  const creds = source();
  let ctx = contexts.get(creds);
  if (ctx === undefined) {
    ctx = tls.createSecureContext({ cert: creds.cert, key: creds.key });
    contexts.set(creds, ctx);
  }
  return ctx;
}

/** "::ffff:192.0.2.1" (an IPv4 client on a dual-stack socket) is reported as "192.0.2.1". */
function clientAddress(a: string | undefined): string {
  if (a === undefined) return "";
  return a.toLowerCase().startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a;
}

/** Server side of a TLS handshake over `sock`; resolves with the secured socket. */
function serverHandshake(
  sock: net.Socket,
  source: TlsSource,
  timeoutMs = HANDSHAKE_TIMEOUT_MS,
): { socket: tls.TLSSocket; done: Promise<tls.TLSSocket> } {
  const t = new tls.TLSSocket(sock, { isServer: true, secureContext: secureContextFor(source) });
  const done = new Promise<tls.TLSSocket>((resolve, reject) => {
    const fail = (e: Error) => {
      clearTimeout(timer);
      t.removeListener("secure", ok);
      t.destroy();
      reject(e);
    };
    const onError = (e: Error) => fail(new Error(`TLS handshake failed: ${e.message}`));
    const onClose = () => fail(new Error("TLS handshake failed: connection closed"));
    const ok = () => {
      clearTimeout(timer);
      t.removeListener("error", onError);
      t.removeListener("close", onClose);
      resolve(t);
    };
    const timer = setTimeout(() => fail(new Error("TLS handshake timed out")), timeoutMs);
    t.once("secure", ok);
    t.once("error", onError);
    t.once("close", onClose);
  });
  // The socket may error after the handshake promise settled; never let that be unhandled.
  t.on("error", ignore);
  return { socket: t, done };
}

/**
 * A Conn over a node socket, pull-based (SocketReader): a slow session applies TCP
 * back-pressure instead of buffering without bound.
 */
export class NodeConn implements Conn {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly secure: boolean;
  #sock: net.Socket;
  #reader: SocketReader;
  /** Number of write() calls so far; chunks are marked with it as they arrive. */
  #writes = 0;
  /** A TLS upgrade in progress: close() must abort it too. */
  #upgrading: tls.TLSSocket | null = null;

  constructor(sock: net.Socket, secure: boolean, remoteAddress: string, remotePort: number) {
    this.#sock = sock;
    this.secure = secure;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
    this.#reader = new SocketReader(sock);
    try {
      sock.setNoDelay(true);
    } catch {
      // Not a TCP socket (unix): nothing to set.
    }
    // Node emits 'error' on the next tick after a failed write destroyed the socket, possibly
    // after close() detached the reader: an 'error' without a listener would crash the process.
    sock.on("error", ignore);
  }

  read(): Promise<Uint8Array | null> {
    return this.#reader.read();
  }

  write(data: Uint8Array | string): Promise<void> {
    if (this.#reader.detached || this.#sock.destroyed || !this.#sock.writable) {
      return Promise.reject(new Error("Connection is closed"));
    }
    // Take in whatever the socket has buffered, so that startTls() can tell input that
    // arrived before this write from input that arrived after it (see startTls).
    this.#reader.drainBuffered();
    this.#reader.mark = ++this.#writes;
    return new Promise((resolve, reject) => {
      this.#sock.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  async startTls(source: TlsSource): Promise<Conn> {
    if (this.#reader.detached) throw new Error("Connection is closed");
    const sock = this.#sock;
    sock.pause();
    // RFC 3207 §4.2 / §6: plaintext sent after STARTTLS but before our 220 reply must never be
    // used after the handshake (command injection). Everything received before the last write
    // (the 220) is dropped. Bytes received after it are the client's TLS handshake and go to
    // the TLS layer; plaintext there only makes the handshake fail.
    const after = this.#reader.unreadWithMark(this.#writes);
    this.#reader.detach();
    if (after.length > 0) sock.unshift(Buffer.concat(after));
    try {
      const { socket, done } = serverHandshake(sock, source);
      this.#upgrading = socket;
      const secured = await done;
      return new NodeConn(secured, true, this.remoteAddress, this.remotePort);
    } catch (e) {
      sock.destroy();
      throw e;
    } finally {
      this.#upgrading = null;
    }
  }

  close(): void {
    if (this.#upgrading) {
      // Closing during the handshake aborts it; startTls() then rejects.
      this.#upgrading.destroy();
      this.#sock.destroy();
      return;
    }
    if (this.#reader.detached) return;
    this.#reader.detach();
    lingeringClose(this.#sock);
  }
}

/** Send FIN after pending writes, discard further input, destroy once the peer is gone. */
function lingeringClose(sock: net.Socket): void {
  if (sock.destroyed) return;
  sock.on("data", ignore);
  const timer = setTimeout(() => sock.destroy(), LINGER_MS);
  // A lingering socket must not keep the process alive after shutdown.
  timer.unref();
  sock.unref();
  sock.once("close", () => clearTimeout(timer));
  sock.resume();
  sock.end();
}

function describe(spec: ListenSpec): string {
  if (spec.kind === "unix") return `unix:${spec.path}`;
  return spec.host.includes(":") ? `[${spec.host}]:${spec.port}` : `${spec.host}:${spec.port}`;
}

/** Remove a socket file left behind by a crashed process, but never one that is still served. */
async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`Refusing to replace "${path}": not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(path);
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
  if (alive) throw new Error(`Socket "${path}" is in use by another process`);
  await unlink(path);
}

class NodeListener implements Listener {
  readonly addr: string;
  readonly port: number;
  #server: net.Server;
  #ready: Conn[] = [];
  #takers: ((r: IteratorResult<Conn>) => void)[] = [];
  #handshakes = new Set<net.Socket>();
  #closed = false;

  constructor(server: net.Server, spec: ListenSpec) {
    this.#server = server;
    const a = server.address();
    this.port = typeof a === "object" && a !== null ? a.port : 0;
    this.addr = spec.kind === "unix" ? describe(spec) : describe({ ...spec, port: this.port });
    server.on("connection", (sock: net.Socket) => this.#onConnection(sock, spec));
    // Accept errors (EMFILE, ECONNABORTED) are transient and per connection: keep listening.
    server.on("error", ignore);
  }

  #onConnection(sock: net.Socket, spec: ListenSpec): void {
    if (this.#closed) {
      sock.destroy();
      return;
    }
    const ip = spec.kind === "unix" ? "unix" : clientAddress(sock.remoteAddress);
    const port = spec.kind === "unix" ? 0 : sock.remotePort ?? 0;
    if (spec.kind === "unix" || spec.tls === undefined) {
      this.#push(new NodeConn(sock, false, ip, port));
      return;
    }
    // Implicit TLS (RFC 8314): yield the connection only once the handshake succeeded;
    // a failed handshake costs the listener nothing.
    sock.on("error", ignore);
    let done: Promise<tls.TLSSocket>;
    try {
      done = serverHandshake(sock, spec.tls).done;
    } catch {
      // Unusable credentials (the TlsSource threw or the PEM is bad): refuse this client only.
      sock.destroy();
      return;
    }
    this.#handshakes.add(sock);
    done.then(
      (t) => this.#push(new NodeConn(t, true, ip, port)),
      () => sock.destroy(),
    ).finally(() => this.#handshakes.delete(sock));
  }

  #push(conn: Conn): void {
    if (this.#closed) {
      conn.close();
      return;
    }
    const taker = this.#takers.shift();
    if (taker) taker({ value: conn, done: false });
    else this.#ready.push(conn);
  }

  accept(): AsyncIterable<Conn> {
    const next = (): Promise<IteratorResult<Conn>> => {
      const conn = this.#ready.shift();
      if (conn) return Promise.resolve({ value: conn, done: false });
      if (this.#closed) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => this.#takers.push(resolve));
    };
    return { [Symbol.asyncIterator]: () => ({ next }) };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Stops accepting at once; the callback would wait for open connections, which stay open.
    this.#server.close();
    for (const t of this.#takers.splice(0)) t({ value: undefined, done: true });
    for (const c of this.#ready.splice(0)) c.close();
    for (const s of this.#handshakes) s.destroy();
    this.#handshakes.clear();
    // The runtime removes a unix socket file on close. Removing it here as well could delete
    // the socket of a new instance that bound the path in between.
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Bind a listener. Rejects with the address in the message if the bind fails. */
export async function listen(spec: ListenSpec): Promise<Listener> {
  if (spec.kind === "unix") await removeStaleSocket(spec.path);
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      const opts = spec.kind === "unix"
        ? { path: spec.path }
        : { host: spec.host, port: spec.port };
      server.listen(opts, () => {
        server.removeListener("error", reject);
        resolve();
      });
    });
  } catch (e) {
    throw new Error(`Cannot listen on "${describe(spec)}": ${(e as Error).message}`);
  }
  if (spec.kind === "unix") {
    // The local MTA's group may connect; nobody else (LMTP has no authentication).
    try {
      await chmod(spec.path, 0o660);
    } catch (e) {
      server.close();
      throw new Error(`Cannot set the mode of "${spec.path}": ${(e as Error).message}`);
    }
  }
  return new NodeListener(server, spec);
}

export type Signal = "SIGTERM" | "SIGINT" | "SIGHUP";

/** Run `fn` each time the process receives `sig`. */
export function onSignal(sig: Signal, fn: () => void): void {
  process.on(sig, fn);
}

/**
 * Read a PEM certificate chain and key, and check them now, so a bad file fails at start
 * and not at the first handshake.
 */
export async function readTlsCredentials(
  certPath: string,
  keyPath: string,
): Promise<TlsCredentials> {
  const read = async (path: string, what: string) => {
    try {
      return await readFile(path, "utf8");
    } catch (e) {
      throw new Error(`Cannot read TLS ${what} "${path}": ${(e as Error).message}`);
    }
  };
  const cert = await read(certPath, "certificate");
  const key = await read(keyPath, "key");
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new Error(`Invalid TLS certificate "${certPath}": ${(e as Error).message}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    throw new Error(`Invalid TLS key "${keyPath}": ${(e as Error).message}`);
  }
  // Deno's createSecureContext does not compare the two, so check the pair ourselves.
  if (!x509.checkPrivateKey(privateKey)) {
    throw new Error(`TLS certificate "${certPath}" and key "${keyPath}" do not fit together`);
  }
  try {
    tls.createSecureContext({ cert, key });
  } catch (e) {
    throw new Error(`Cannot use TLS certificate "${certPath}": ${(e as Error).message}`);
  }
  return { cert, key };
}
