// Transcript harness: drive a Session with C: lines and compare its replies with S: lines.
// No sockets: the session is pure, so these run in microseconds.
import type {
  AuthGuard,
  DeliveryResult,
  HeldTokenStore,
  LocalUser,
  SessionDeps,
  SpooledMessage,
  TokenService,
} from "../../src/session/deps.ts";
import { formatReply } from "../../src/protocol/reply.ts";
import { type ListenerKind, Session } from "../../src/session/session.ts";
import { AssertionError } from "../assert.ts";

export interface Delivered {
  user: string;
  prefix: string;
  body: string;
}

export interface Fake {
  deps: SessionDeps;
  held: { remote: string; local: string; token: string; source: string }[];
  /** Remote copies handed to the (fake) outbound side. */
  sent: { from: string; local: string; rcpt: string; body: string }[];
  /** Remote recipients the fake outbound side can route, and how sending to them ends. */
  routes: Map<string, "ok" | "temporary" | "permanent">;
  delivered: Delivered[];
  logs: { event: string; fields: Record<string, unknown> }[];
  sleeps: number[];
  failures: Map<string, number>;
  /** Make the next deliveries to these users fail ("temporary" or "quota"). */
  failFor: Map<string, "temporary" | "quota">;
}

const USERS: Record<string, { password: string; aliases: string[] }> = {
  "alice@example.test": { password: "alice-secret", aliases: ["al@example.test"] },
  "bob@example.test": { password: "bob-secret", aliases: [] },
  "postmaster@example.test": { password: "pm-secret", aliases: [] },
};

function lookup(address: string): LocalUser | null {
  let a = address.toLowerCase();
  if (a === "postmaster") a = "postmaster@example.test";
  for (const [primary, u] of Object.entries(USERS)) {
    if (primary === a || u.aliases.includes(a)) return { address: primary };
  }
  return null;
}

class MemoryMessage implements SpooledMessage {
  parts: Uint8Array[] = [];
  size = 0;
  discarded = false;
  write(chunk: Uint8Array): Promise<void> {
    this.parts.push(chunk.slice());
    this.size += chunk.length;
    return Promise.resolve();
  }
  async *chunks(): AsyncIterable<Uint8Array> {
    for (const p of this.parts) yield p;
  }
  discard(): Promise<void> {
    this.discarded = true;
    this.parts = [];
    return Promise.resolve();
  }
}

export interface FakeOptions {
  maxMessageSize?: number;
  maxRecipients?: number;
  authLimit?: number;
  /** A real TokenService (the engine) instead of the tokenless default. */
  tokens?: TokenService;
  harvest?: { enabled: boolean; requireAuthPass: boolean };
}

/** Without a token engine every token check fails: enough for the non-token transcripts. */
const NO_TOKENS: TokenService = {
  generateTemp: () => Promise.reject(new Error("no token engine")),
  getOrCreatePerm: () => Promise.reject(new Error("no token engine")),
  revoke: () => Promise.reject(new Error("no token engine")),
  checkLocal: () => false,
  verify: () => Promise.resolve({ ok: false }),
  afterDelivery: () => Promise.resolve(null),
};

export function fakeDeps(opts: FakeOptions = {}): Fake {
  const held: Fake["held"] = [];
  const sent: Fake["sent"] = [];
  const routes: Fake["routes"] = new Map();
  const recent = new Map<string, Set<string>>();
  const heldTokens: HeldTokenStore = {
    put: (remote, local, token, o) => {
      held.push({ remote, local, token, source: o.source });
      return Promise.resolve();
    },
  };
  const delivered: Delivered[] = [];
  const logs: Fake["logs"] = [];
  const sleeps: number[] = [];
  const failures = new Map<string, number>();
  const failFor = new Map<string, "temporary" | "quota">();
  let ids = 0;
  const limit = opts.authLimit ?? 3;
  const authGuard: AuthGuard = {
    failureDelayMs: 1000,
    blocked: (ip) => (failures.get(ip) ?? 0) >= limit,
    fail: (ip) => {
      const n = (failures.get(ip) ?? 0) + 1;
      failures.set(ip, n);
      return n >= limit;
    },
  };
  const deps: SessionDeps = {
    hostname: "mx.example.test",
    isLocalDomain: (d) => d === "example.test",
    users: {
      lookup: (a) => Promise.resolve(lookup(a)),
      verifyPassword: (u, p) => {
        const user = USERS[u.toLowerCase()];
        return Promise.resolve(user && user.password === p ? { address: u.toLowerCase() } : null);
      },
      owns: (user, a) => Promise.resolve(lookup(a)?.address === user.address),
    },
    spool: { create: () => Promise.resolve(new MemoryMessage()) },
    mailboxes: {
      async deliver(user, prefix, msg): Promise<DeliveryResult> {
        const f = failFor.get(user.address);
        if (f) return { ok: false, kind: f, cause: "injected" };
        let body = "";
        const dec = new TextDecoder("latin1");
        for await (const c of msg.chunks()) body += dec.decode(c);
        delivered.push({ user: user.address, prefix, body });
        return { ok: true, path: `/maildir/${user.address}/${delivered.length}` };
      },
    },
    authGuard,
    tokens: opts.tokens ?? NO_TOKENS,
    heldTokens,
    remote: {
      routable: (_local, rcpt) => Promise.resolve(routes.has(rcpt)),
      async deliver(from, local, rcpt, msg) {
        const how = routes.get(rcpt.toLowerCase());
        if (how !== "ok") return { ok: false, permanent: how === "permanent", cause: "injected" };
        let body = "";
        const dec = new TextDecoder("latin1");
        for await (const c of msg.chunks()) body += dec.decode(c);
        sent.push({ from, local, rcpt, body });
        return { ok: true, path: "relay", detail: "250 fake" };
      },
    },
    recent: {
      delivered: (sender, id) => Promise.resolve(new Set(recent.get(`${sender} ${id}`) ?? [])),
      record: (sender, id, rcpt) => {
        const k = `${sender} ${id}`;
        recent.set(k, (recent.get(k) ?? new Set()).add(rcpt));
        return Promise.resolve();
      },
    },
    harvest: opts.harvest ?? { enabled: true, requireAuthPass: false },
    limits: {
      maxMessageSize: opts.maxMessageSize ?? 10240,
      maxRecipients: opts.maxRecipients ?? 3,
    },
    now: () => new Date(Date.UTC(2026, 10, 28, 12, 0, 0)),
    newId: () => `ID${String(++ids).padStart(8, "0")}`,
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
    log: (event, fields) => logs.push({ event, fields }),
  };
  return { deps, held, sent, routes, delivered, logs, sleeps, failures, failFor };
}

export function newSession(
  fake: Fake,
  listener: ListenerKind = "submission",
  secure = listener === "submissions",
  remoteAddress = "192.0.2.7",
): Session {
  return new Session(fake.deps, { listener, remoteAddress, secure });
}

const enc = new TextEncoder();

/**
 * Run a transcript. Lines:
 *   "S: text"  expected reply line (the greeting first, if the script starts with S:)
 *   "C: text"  client line; consecutive C: lines are sent in one chunk (pipelining)
 *   "TLS"      the server asked for STARTTLS: the handshake "happens" here
 *   "CLOSED"   the server closed the connection after the previous replies
 * In an expected line, "*" matches any run of characters.
 */
export async function transcript(session: Session, script: string): Promise<string[]> {
  const lines = script.split("\n").map((l) => l.replace(/^\s+/, "")).filter((l) => l !== "");
  const actual: string[] = [];
  const expected: string[] = [];
  let pending: string[] = [];
  let closed = false;
  let lastAfter: string = "none";

  const flush = async () => {
    if (pending.length === 0) return;
    if (closed) throw new AssertionError(`client wrote after close: ${pending[0]}`);
    const chunk = enc.encode(pending.map((l) => l + "\r\n").join(""));
    pending = [];
    const out = await session.feed(chunk);
    for (const r of out.replies) {
      actual.push(...formatReply(r).split("\r\n").filter((l) => l !== ""));
    }
    lastAfter = out.after;
    if (out.after === "close") closed = true;
  };

  let first = true;
  for (const l of lines) {
    if (first && l.startsWith("S:")) {
      actual.push(...formatReply(session.greeting()).split("\r\n").filter((x) => x !== ""));
    }
    first = false;
    if (l.startsWith("C:")) {
      pending.push(l.slice(3));
    } else if (l.startsWith("S:")) {
      await flush();
      expected.push(l.slice(3));
    } else if (l === "TLS") {
      await flush();
      if (lastAfter !== "starttls") {
        throw new AssertionError("TLS expected but server did not ask for it");
      }
      session.tlsStarted();
    } else if (l === "CLOSED") {
      await flush();
      if (!closed) {
        throw new AssertionError(`expected close; replies so far:\n${actual.join("\n")}`);
      }
    } else {
      throw new AssertionError(`bad transcript line: ${l}`);
    }
  }
  await flush();
  const ok = actual.length === expected.length &&
    expected.every((e, i) => glob(e).test(actual[i]!));
  if (!ok) {
    throw new AssertionError(
      `transcript mismatch\n--- expected\n${expected.join("\n")}\n--- actual\n${actual.join("\n")}`,
    );
  }
  return actual;
}

export function b64(s: string): string {
  return btoa(s);
}

function glob(pattern: string): RegExp {
  const escaped = pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${escaped.join(".*")}$`);
}

/** EHLO after TLS, the capability lines matched loosely (capabilities_test.ts checks them). */
export const EHLO_AFTER_TLS = `
  C: EHLO client.example
  S: 250-*
  S: 250-*
  S: 250-*
  S: 250-*
  S: 250-*
  S: 250 AUTH PLAIN LOGIN
`;

/** EHLO after TLS, then alice logs in with AUTH PLAIN. */
export const LOGIN_ALICE = `${EHLO_AFTER_TLS}
  C: AUTH PLAIN ${btoa("\0alice@example.test\0alice-secret")}
  S: 235 2.7.0 Authentication successful
`;
