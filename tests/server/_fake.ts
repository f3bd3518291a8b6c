// A stand-in session for server tests, and a log capture to wait on server events.
import { type Reply, reply } from "../../src/protocol/reply.ts";
import type { Output, SessionInfo } from "../../src/session/session.ts";
import { Logger } from "../../src/server/log.ts";
import type { ServerSession } from "../../src/server/server.ts";

/** Shared by every session of one test: lets the test hold a command and count sessions. */
export class Control {
  readonly sessions: FakeSession[] = [];
  #gate = Promise.withResolvers<void>();
  #entered = Promise.withResolvers<void>();

  /** Resolves when some session is inside a SLOW command. */
  get slowEntered(): Promise<void> {
    return this.#entered.promise;
  }
  /** Let SLOW commands finish. */
  release(): void {
    this.#gate.resolve();
  }
  enterSlow(): Promise<void> {
    this.#entered.resolve();
    return this.#gate.promise;
  }
}

const dec = new TextDecoder();

/**
 * Line commands: STARTTLS, QUIT, DATA (body until "."), SLOW (waits for Control.release),
 * BOOM (throws); anything else is echoed as "250 2.0.0 echo <line> tls=<secure>".
 */
export class FakeSession implements ServerSession {
  readonly info: SessionInfo;
  secure: boolean;
  inData = false;
  ended = 0;
  #buf = "";
  #control: Control;

  constructor(info: SessionInfo, control: Control) {
    this.info = info;
    this.secure = info.secure;
    this.#control = control;
    control.sessions.push(this);
  }

  greeting(): Reply {
    return reply(220, undefined, `test ${this.info.listener} ready`);
  }

  async feed(chunk: Uint8Array): Promise<Output> {
    this.#buf += dec.decode(chunk);
    const replies: Reply[] = [];
    for (let i = this.#buf.indexOf("\r\n"); i >= 0; i = this.#buf.indexOf("\r\n")) {
      const line = this.#buf.slice(0, i);
      this.#buf = this.#buf.slice(i + 2);
      if (this.inData) {
        if (line === ".") {
          this.inData = false;
          replies.push(reply(250, "2.0.0", "Message accepted"));
        }
        continue;
      }
      switch (line) {
        case "STARTTLS":
          // Like the real session: input after STARTTLS is never acted on (RFC 3207 §4.2).
          this.#buf = "";
          replies.push(reply(220, "2.0.0", "Ready to start TLS"));
          return { replies, after: "starttls" };
        case "QUIT":
          replies.push(reply(221, "2.0.0", "Bye"));
          return { replies, after: "close" };
        case "DATA":
          this.inData = true;
          replies.push(reply(354, undefined, "Go ahead"));
          break;
        case "SLOW":
          await this.#control.enterSlow();
          replies.push(reply(250, "2.0.0", "Slow command done"));
          break;
        case "BOOM":
          throw new Error("boom");
        default:
          replies.push(reply(250, "2.0.0", `echo ${line} tls=${this.secure}`));
      }
    }
    return { replies, after: "none" };
  }

  tlsStarted(): void {
    this.secure = true;
    this.#buf = "";
  }

  end(): Promise<void> {
    this.ended++;
    this.inData = false;
    return Promise.resolve();
  }
}

export type LogLine = Record<string, unknown> & { event: string; level: string };

/** A Logger whose lines are kept (parsed) so tests can wait for an event. */
export class LogCapture {
  readonly lines: LogLine[] = [];
  readonly raw: string[] = [];
  #waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  readonly logger = new Logger("debug", { write: (s) => this.#add(s) });

  #add(s: string): void {
    this.raw.push(s);
    const line = JSON.parse(s) as LogLine;
    this.lines.push(line);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.match(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  /** The `n`-th line (1-based, counted from the start) with this event. */
  waitFor(event: string, n = 1): Promise<LogLine> {
    let seen = 0;
    const match = (l: LogLine) => l.event === event && ++seen === n;
    for (const l of this.lines) if (match(l)) return Promise.resolve(l);
    return new Promise((resolve) => this.#waiters.push({ match, resolve }));
  }

  events(event: string): LogLine[] {
    return this.lines.filter((l) => l.event === event);
  }
}
