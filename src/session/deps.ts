// What a session needs from the world, as narrow interfaces passed in (no I/O in src/session).
import type { Head } from "../protocol/message_view.ts";

/** A user of this server, identified by its primary address (lower-case domain). */
export interface LocalUser {
  readonly address: string;
}

export interface UserDirectory {
  /** The user an address (primary or alias, case-insensitive) belongs to, or null. */
  lookup(address: string): Promise<LocalUser | null>;
  /**
   * Check a password. Runs the KDF even for unknown users so timing says nothing
   * about which usernames exist. Returns the user on success.
   */
  verifyPassword(username: string, password: string): Promise<LocalUser | null>;
  /** Whether `user` may use `address` as its MAIL FROM (its primary address or one of its aliases). */
  owns(user: LocalUser, address: string): Promise<boolean>;
}

/** A message body being received, kept in memory and spilled to a spool file when large. */
export interface SpooledMessage {
  readonly size: number;
  write(chunk: Uint8Array): Promise<void>;
  /**
   * All bytes written, in order, as chunks (readable any number of times until discard).
   * With `reuse`, a chunk is only valid until the next one is asked for (large messages are
   * then read back through one buffer); readers that keep chunks must not ask for it.
   */
  chunks(opts?: { readonly reuse?: boolean }): AsyncIterable<Uint8Array>;
  /** Free memory and remove any spool file. Idempotent. */
  discard(): Promise<void>;
}

export interface Spool {
  create(): Promise<SpooledMessage>;
}

export type DeliveryResult =
  | { readonly ok: true; readonly path: string }
  | { readonly ok: false; readonly kind: "temporary" | "quota"; readonly cause: string };

export interface Mailboxes {
  /**
   * Store `prefix` (trace headers) followed by the message into the user's Maildir
   * and return only when it is on stable storage.
   */
  deliver(user: LocalUser, prefix: string, msg: SpooledMessage): Promise<DeliveryResult>;
}

/** Failed-authentication accounting per client address. */
export interface AuthGuard {
  /** True when this key (a client IP, or "local:<address>") has used up its failures. */
  blocked(key: string): boolean;
  /** Record one failure; returns true if the key is now blocked. */
  fail(key: string): boolean;
  /** Minimum duration of a failed attempt, in ms (pacing). */
  readonly failureDelayMs: number;
}

export type LogFields = Record<string, string | number | boolean | undefined>;

/** Recipients a submitted message (sender + Message-ID) already reached, for retries. */
export interface RecentDeliveries {
  delivered(sender: string, messageId: string): Promise<Set<string>>;
  record(sender: string, messageId: string, rcpt: string): Promise<void>;
}

export type RemoteResult =
  | { readonly ok: true; readonly path: "token" | "relay"; readonly detail: string }
  | { readonly ok: false; readonly permanent: boolean; readonly cause: string };

/** Where user submissions to other domains go: the token path, else the smarthost (§7–§8). */
export interface RemoteDelivery {
  /** Whether RCPT may accept this remote recipient: a relay exists or a token is held. */
  routable(local: string, recipient: string): Promise<boolean>;
  /**
   * Deliver one copy of `msg` to `recipient` for our user `local` (MAIL FROM `from`);
   * resolves when the next hop has taken it (or has not).
   */
  deliver(
    from: string,
    local: string,
    recipient: string,
    msg: SpooledMessage,
    head: Head,
  ): Promise<RemoteResult>;
}

export interface SessionDeps {
  readonly hostname: string;
  /** Whether a (lower-case) domain is one of ours. */
  isLocalDomain(domain: string): boolean;
  readonly users: UserDirectory;
  readonly spool: Spool;
  readonly mailboxes: Mailboxes;
  /** Failed AUTH accounting, keyed by client IP (and by "local:<address>" for token checks). */
  readonly authGuard: AuthGuard;
  readonly tokens: TokenService;
  readonly heldTokens: HeldTokenStore;
  readonly remote: RemoteDelivery;
  readonly recent: RecentDeliveries;
  /** Harvesting Submission-Token headers on the LMTP listener (PROTOCOL.md §9). */
  readonly harvest: { readonly enabled: boolean; readonly requireAuthPass: boolean };
  readonly limits: {
    readonly maxMessageSize: number;
    readonly maxRecipients: number;
  };
  /** Current time (injected so transcripts are reproducible). */
  now(): Date;
  /** A fresh delivery id, [A-Za-z0-9]{10,32}. */
  newId(): string;
  sleep(ms: number): Promise<void>;
  log(event: string, fields: LogFields): void;
}

export type TokenKind = "temp" | "perm";

/** The Token Server side of the Submission Token extension (src/tokens/engine.ts implements it). */
export interface TokenService {
  generateTemp(remote: string, local: string): Promise<string>;
  getOrCreatePerm(remote: string, local: string): Promise<{ token: string; created: boolean }>;
  revoke(remote: string, local: string): Promise<void>;
  /** AUTH STOKEN: the token is for `local` with some remote; cheap, no store access. */
  checkLocal(token: string, local: string): boolean;
  /** RCPT STOKEN=: the token is valid for exactly this pair, now. */
  verify(
    token: string,
    remote: string,
    local: string,
  ): Promise<{ ok: true; kind: TokenKind } | { ok: false }>;
  /** After the message is on stable storage: a new or refreshed permanent token, or null to keep. */
  afterDelivery(
    remote: string,
    local: string,
    used: TokenKind,
    token?: string,
  ): Promise<string | null>;
}

/** Tokens this server holds for delivering to other Token Servers (MYSTOKEN, 2.1.13, headers). */
export interface HeldTokenStore {
  put(
    remote: string,
    local: string,
    token: string,
    opts: { source: "mystoken" | "reply" | "header"; expires?: Date; overwriteWorking: boolean },
  ): Promise<unknown>;
}
