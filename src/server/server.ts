// Runs the listeners and drives one session per connection: limits, timeouts, STARTTLS,
// graceful shutdown. Sessions do no I/O; this loop reads chunks and writes their replies.
import { listen } from "../net/mod.ts";
import type { Conn, Listener, ListenSpec, TlsSource } from "../net/mod.ts";
import { formatReply, type Reply, reply } from "../protocol/reply.ts";
import type { ListenerKind, Output, SessionInfo } from "../session/session.ts";
import type { Logger } from "./log.ts";

/** What the server needs from a session (src/session/session.ts implements it). */
export interface ServerSession {
  greeting(): Reply;
  /** Every complete command in `chunk`; replies of pipelined commands come batched (RFC 2920). */
  feed(chunk: Uint8Array): Promise<Output>;
  /** After a successful STARTTLS handshake (RFC 3207 §4.2: the session forgets its state). */
  tlsStarted(): void;
  /** A DATA transfer is in progress. */
  readonly inData: boolean;
  /** The connection is gone: discard anything half-received. */
  end(): Promise<void>;
}

export interface ServerLimits {
  /** Connections at once over all listeners; 0 means no limit. */
  readonly maxConnections: number;
  /** Connections at once from one client address ("unix" for unix-socket peers); 0: no limit. */
  readonly maxConnectionsPerIp: number;
  /** Wait for a command at most this long (RFC 5321 §4.5.3.2.7: at least 5 minutes); 0: forever. */
  readonly idleTimeoutS: number;
  /** Wait for the next DATA bytes at most this long (RFC 5321 §4.5.3.2.6); 0: forever. */
  readonly dataTimeoutS: number;
  /** On shutdown, commands in progress get this long to finish before connections are cut. */
  readonly shutdownTimeoutS: number;
}

export interface ServerOptions {
  readonly listeners: readonly { readonly kind: ListenerKind; readonly spec: ListenSpec }[];
  /** `log` carries the connection's fields (session id, listener, client address). */
  makeSession(info: SessionInfo, log: Logger): ServerSession;
  /** Credentials for STARTTLS (implicit-TLS listeners carry their own in the ListenSpec). */
  readonly tls: TlsSource;
  readonly limits: ServerLimits;
  readonly log: Logger;
}

// RFC 5321 §3.8 / §4.2.2: 421 tells the client to try again later; the server then closes.
const TOO_MANY = reply(421, "4.7.0", "Too many connections");
const IDLE = reply(421, "4.4.2", "Idle timeout");
const SHUTTING_DOWN = reply(421, "4.3.2", "Service shutting down");
const SESSION_ERROR = reply(421, "4.3.0", "Temporary server error");

/** Bound for writing a refusal to a client we are not going to serve. */
const REFUSAL_WRITE_MS = 10_000;

type ReadResult =
  | { readonly kind: "data"; readonly chunk: Uint8Array }
  | { readonly kind: "eof" }
  | { readonly kind: "timeout" }
  | { readonly kind: "stop" };

const EOF: ReadResult = Object.freeze({ kind: "eof" });
const TIMED_OUT: ReadResult = Object.freeze({ kind: "timeout" });
const STOP: ReadResult = Object.freeze({ kind: "stop" });

type WriteResult = "ok" | "failed" | "timeout";

/** setTimeout takes a signed 32-bit delay; a longer one fires at once. Longer waits re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The one timer of a connection. A read or a write sets a deadline; the timer is moved only
 * when the new deadline is earlier than the moment it is set for, and when it fires before
 * the current deadline (the wait it was set for is long over) it is set again for the rest.
 * So a connection makes a new timer about once per timeout period, not one per read and one
 * per write, and every deadline is still kept to the millisecond.
 */
class ConnTimer {
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the timer fires (performance.now() ms); Infinity when it is not set. */
  #at = Infinity;
  #deadline = Infinity;
  #onTimeout: (() => void) | null = null;
  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#at = Infinity;
    const f = this.#onTimeout;
    if (f === null) return;
    if (performance.now() < this.#deadline) {
      this.#arm();
      return;
    }
    this.#onTimeout = null;
    f();
  };

  /** Call `onTimeout` once `ms` have passed, unless clear() or set() comes first; 0: never. */
  set(ms: number, onTimeout: () => void): void {
    if (ms <= 0) {
      this.clear();
      return;
    }
    this.#deadline = performance.now() + ms;
    this.#onTimeout = onTimeout;
    if (this.#deadline < this.#at) this.#arm();
  }

  /** The wait is over. The timer itself stays set: the next wait most likely reuses it. */
  clear(): void {
    this.#onTimeout = null;
    this.#deadline = Infinity;
  }

  /** The connection is gone. */
  dispose(): void {
    this.clear();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = Infinity;
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#at = this.#deadline;
    const ms = Math.min(Math.max(0, this.#deadline - performance.now()), MAX_TIMER_MS);
    this.#timer = setTimeout(this.#fire, ms);
  }
}

interface Client {
  conn: Conn;
  readonly ip: string;
  readonly kind: ListenerKind;
  readonly log: Logger;
  /** Set on shutdown while the client waits for a command: its reads give up at once. */
  stopped: boolean;
  /** Ends the read in progress (null: none), so shutdown need not wait for the client. */
  endRead: ((r: ReadResult) => void) | null;
  /** Bounds the read or write in progress (idle, data and write timeouts). */
  readonly timer: ConnTimer;
  /** Waiting for the next command (not in DATA, not running a command). */
  idle: boolean;
  bytesIn: number;
  bytesOut: number;
}

const encoder = new TextEncoder();

function sessionId(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  // 248 = 4 * 62: rejecting bytes above it keeps every character equally likely.
  let id = "";
  while (id.length < 12) {
    for (const b of crypto.getRandomValues(new Uint8Array(16))) {
      if (b < 248 && id.length < 12) id += alphabet[b % 62];
    }
  }
  return id;
}

/** Shutdown: the client's reads, the one in progress included, end with "stop". */
function stopClient(c: Client): void {
  c.stopped = true;
  c.endRead?.(STOP);
}

/** Resolves with `p`'s value, or with `onTimeout` after `ms` (0: no timeout); for one-off waits. */
function within<T, U>(p: Promise<T>, ms: number, onTimeout: U): Promise<T | U> {
  if (ms <= 0) return p;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<U>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export class Server {
  readonly #opts: ServerOptions;
  readonly #log: Logger;
  #listeners: { readonly kind: ListenerKind; readonly listener: Listener }[] = [];
  #acceptLoops: Promise<void>[] = [];
  readonly #clients = new Set<Client>();
  readonly #perIp = new Map<string, number>();
  #started = false;
  #stopping = false;
  #shutdown: Promise<void> | null = null;
  /** Called when the last connection is gone during shutdown. */
  #onEmpty: (() => void) | null = null;

  constructor(opts: ServerOptions) {
    this.#opts = opts;
    this.#log = opts.log;
  }

  /** Bind every listener, then start accepting. If one bind fails, none stay bound. */
  async start(): Promise<void> {
    if (this.#started || this.#stopping) throw new Error("Server already started");
    this.#started = true;
    const bound: { kind: ListenerKind; listener: Listener }[] = [];
    for (const { kind, spec } of this.#opts.listeners) {
      try {
        bound.push({ kind, listener: await listen(spec) });
      } catch (e) {
        await Promise.allSettled(bound.map((b) => b.listener.close()));
        // listen()'s message names the address.
        throw new Error(`Cannot start the ${kind} listener: ${(e as Error).message}`);
      }
    }
    this.#listeners = bound;
    for (const { kind, listener } of bound) {
      this.#log.info("listening", { listener: kind, addr: listener.addr });
      this.#acceptLoops.push(this.#acceptLoop(kind, listener));
    }
  }

  /**
   * Bound ports by listener kind ("submission", "submissions", "lmtp"); a second listener of
   * the same kind is "submission_2", and so on. Unix-socket listeners report 0.
   */
  ports(): Record<string, number> {
    const out: Record<string, number> = {};
    const seen = new Map<string, number>();
    for (const { kind, listener } of this.#listeners) {
      const n = (seen.get(kind) ?? 0) + 1;
      seen.set(kind, n);
      out[n === 1 ? kind : `${kind}_${n}`] = listener.port;
    }
    return out;
  }

  /** Connections currently served (for tests and metrics). */
  get connections(): number {
    return this.#clients.size;
  }

  /**
   * Graceful stop: refuse new connections, send 421 4.3.2 to every session waiting for a
   * command, let commands in progress (DATA, a delivery) finish first, and cut whatever is
   * left after shutdownTimeoutS. Resolves when no connection is left open.
   */
  shutdown(): Promise<void> {
    this.#shutdown ??= this.#stop();
    return this.#shutdown;
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    await Promise.allSettled(this.#listeners.map((l) => l.listener.close()));
    await Promise.allSettled(this.#acceptLoops);
    for (const c of this.#clients) if (c.idle) stopClient(c);
    if (this.#clients.size === 0) return;
    const empty = new Promise<"empty">((resolve) => {
      this.#onEmpty = () => resolve("empty");
    });
    const ms = this.#opts.limits.shutdownTimeoutS * 1000;
    const r = await within(empty, Math.max(ms, 1), "timeout" as const);
    if (r === "empty") return;
    this.#log.warn("shutdown_forced", { connections: this.#clients.size });
    // Cutting the sockets ends every read, write and TLS handshake at once. A command stuck
    // inside the session (a delivery that does not return) is not waited for: its socket is
    // closed, which is all a client can observe.
    for (const c of this.#clients) {
      stopClient(c);
      c.conn.close();
    }
  }

  async #acceptLoop(kind: ListenerKind, listener: Listener): Promise<void> {
    try {
      for await (const conn of listener.accept()) {
        this.#serve(kind, conn).catch((e) => {
          // #serve catches everything itself; this is the last line of defence.
          this.#log.error("connection_failed", { listener: kind, cause: e as Error });
        });
      }
    } catch (e) {
      this.#log.error("accept_failed", { listener: kind, addr: listener.addr, cause: e as Error });
    }
  }

  async #serve(kind: ListenerKind, conn: Conn): Promise<void> {
    const ip = conn.remoteAddress;
    if (this.#stopping) {
      await this.#refuse(conn, SHUTTING_DOWN);
      return;
    }
    const { maxConnections, maxConnectionsPerIp } = this.#opts.limits;
    const fromIp = this.#perIp.get(ip) ?? 0;
    if (
      (maxConnections > 0 && this.#clients.size >= maxConnections) ||
      (maxConnectionsPerIp > 0 && fromIp >= maxConnectionsPerIp)
    ) {
      this.#log.warn("refused", {
        listener: kind,
        ip,
        reason: fromIp >= maxConnectionsPerIp ? "per-ip limit" : "connection limit",
      });
      await this.#refuse(conn, TOO_MANY);
      return;
    }
    this.#perIp.set(ip, fromIp + 1);
    const client: Client = {
      conn,
      ip,
      kind,
      log: this.#log.child({ session: sessionId(), listener: kind, ip }),
      stopped: false,
      endRead: null,
      timer: new ConnTimer(),
      idle: false,
      bytesIn: 0,
      bytesOut: 0,
    };
    this.#clients.add(client);
    const started = Date.now();
    let reason = "error";
    let session: ServerSession | null = null;
    try {
      client.log.info("connect", { port: conn.remotePort, secure: conn.secure });
      session = this.#opts.makeSession(
        { listener: kind, remoteAddress: ip, secure: conn.secure },
        client.log,
      );
      reason = await this.#drive(client, session);
    } catch (e) {
      client.log.error("session_error", { cause: e as Error });
      await this.#send(client, [SESSION_ERROR]);
      reason = "session error";
    } finally {
      // Exactly once per connection, whatever happened above.
      const n = (this.#perIp.get(ip) ?? 1) - 1;
      if (n > 0) this.#perIp.set(ip, n);
      else this.#perIp.delete(ip);
      client.conn.close();
      client.timer.dispose();
      if (session !== null) {
        try {
          await session.end();
        } catch (e) {
          client.log.error("session_end_failed", { cause: e as Error });
        }
      }
      this.#clients.delete(client);
      client.log.info("disconnect", {
        duration_ms: Date.now() - started,
        bytes_in: client.bytesIn,
        bytes_out: client.bytesOut,
        reason,
      });
      if (this.#clients.size === 0) this.#onEmpty?.();
    }
  }

  /** The session loop; returns why the connection ends. Session errors propagate. */
  async #drive(c: Client, session: ServerSession): Promise<string> {
    const { idleTimeoutS, dataTimeoutS } = this.#opts.limits;
    if (!(await this.#send(c, [session.greeting()]))) return "write failed";
    for (;;) {
      // A command just finished: during shutdown this is the moment to say goodbye.
      if (this.#stopping && !session.inData) {
        await this.#send(c, [SHUTTING_DOWN]);
        return "shutdown";
      }
      const inData = session.inData;
      c.idle = !inData;
      const r = await this.#read(c, (inData ? dataTimeoutS : idleTimeoutS) * 1000);
      c.idle = false;
      if (r.kind === "eof") return "peer closed";
      if (r.kind === "stop") {
        await this.#send(c, [SHUTTING_DOWN]);
        return "shutdown";
      }
      if (r.kind === "timeout") {
        await this.#send(c, [IDLE]);
        return inData ? "data timeout" : "idle timeout";
      }
      c.bytesIn += r.chunk.length;
      const out = await session.feed(r.chunk);
      if (out.replies.length > 0 && !(await this.#send(c, out.replies))) return "write failed";
      if (out.after === "close") return "closed by session";
      if (out.after === "starttls") {
        try {
          c.conn = await c.conn.startTls(this.#opts.tls);
        } catch (e) {
          c.log.warn("tls_failed", { cause: e as Error });
          return "tls failed";
        }
        session.tlsStarted();
        c.log.info("tls", {});
      }
    }
  }

  /** Next chunk, unless the timeout passes or shutdown stops the wait first. */
  #read(c: Client, timeoutMs: number): Promise<ReadResult> {
    if (c.stopped) return Promise.resolve(STOP);
    return new Promise<ReadResult>((resolve) => {
      let settled = false;
      const done = (r: ReadResult) => {
        // Only the first outcome counts: a read that lost to the timer may still end later.
        if (settled) return;
        settled = true;
        c.timer.clear();
        if (c.endRead === done) c.endRead = null;
        resolve(r);
      };
      c.endRead = done;
      c.timer.set(timeoutMs, () => done(TIMED_OUT));
      // If the timer or shutdown wins, the connection is closed next, so no chunk is lost
      // that anyone would still read.
      c.conn.read().then(
        (chunk) => done(chunk === null ? EOF : { kind: "data", chunk }),
        () => done(EOF),
      );
    });
  }

  /**
   * All replies in one write (RFC 2920: a pipelined batch goes out together). A peer that
   * stops reading cannot hold the connection beyond the idle timeout. False if the write failed.
   */
  async #send(c: Client, replies: readonly Reply[]): Promise<boolean> {
    const bytes = encoder.encode(replies.map(formatReply).join(""));
    const r = await new Promise<WriteResult>((resolve) => {
      let settled = false;
      const done = (r: WriteResult) => {
        if (settled) return;
        settled = true;
        c.timer.clear();
        resolve(r);
      };
      c.timer.set(this.#opts.limits.idleTimeoutS * 1000, () => done("timeout"));
      c.conn.write(bytes).then(() => done("ok"), () => done("failed"));
    });
    if (r !== "ok") {
      c.log.debug("write_failed", { reason: r });
      return false;
    }
    c.bytesOut += bytes.length;
    return true;
  }

  /** Tell a client why it is not served, then hang up; bounded so it cannot pile up. */
  async #refuse(conn: Conn, r: Reply): Promise<void> {
    const write = conn.write(formatReply(r)).catch(() => {});
    await within(write, REFUSAL_WRITE_MS, undefined);
    conn.close();
  }
}
