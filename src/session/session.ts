// The SMTP/LMTP state machine: bytes in, replies out. No I/O of its own; everything it
// needs from the world comes through SessionDeps. The server loop writes the replies.
import { type Command, parseCommand } from "../protocol/command.ts";
import { DataReader } from "../protocol/data_reader.ts";
import { type Line, LineReader } from "../protocol/line_reader.ts";
import type { Param } from "../protocol/params.ts";
import { type Reply, reply } from "../protocol/reply.ts";
import { decodeBase64Strict, decodePlain, decodeStoken } from "../protocol/sasl.ts";
import { normalizeAddress } from "../protocol/address.ts";
import { receivedHeader } from "../protocol/trace.ts";
import type { DeliveryResult, LocalUser, SessionDeps, SpooledMessage, TokenKind } from "./deps.ts";
import { domainAuth, mayHarvest } from "../protocol/auth_results.ts";
import { fieldsNamed } from "../protocol/headers.ts";
import { readHead } from "../protocol/message_view.ts";
import { challenge, R } from "./replies.ts";

export type ListenerKind = "submission" | "submissions" | "lmtp";

export interface SessionInfo {
  readonly listener: ListenerKind;
  readonly remoteAddress: string;
  readonly secure: boolean;
}

export type After = "none" | "starttls" | "close";

export interface Output {
  readonly replies: Reply[];
  readonly after: After;
}

/** RFC 5321 §4.5.3.1.4: 512 octets including CRLF. */
const MAX_COMMAND_LINE = 512;
/** RFC 4954 §4: AUTH lines and SASL responses may be up to 12288 octets. */
const MAX_AUTH_LINE = 12288;

/**
 * What kind of conversation this is, fixed by the greeting verb:
 * "user" = EHLO/HELO on submission, "token" = LHLO on submission, "lmtp" = the local listener.
 */
type Kind = "user" | "token" | "lmtp";

interface Recipient {
  readonly address: string;
  /** Our user, or null for a remote recipient of a user submission. */
  readonly user: LocalUser | null;
  /** Token deliveries: the kind of token that was verified for this recipient, and the token. */
  readonly token?: TokenKind;
  readonly stoken?: string;
  /** Token deliveries: the Remote Client's own token for the reverse pair (draft §7.4). */
  readonly mytoken?: string;
}

interface Transaction {
  readonly from: string;
  readonly rcpts: Recipient[];
}

type SaslState =
  | { readonly mech: "PLAIN" }
  | { readonly mech: "STOKEN" }
  | { readonly mech: "LOGIN"; readonly username: string | undefined };

interface DataState {
  readonly reader: DataReader;
  readonly msg: SpooledMessage;
}

interface Step {
  replies: Reply[];
  after: After;
}

const step = (...replies: Reply[]): Step => ({ replies, after: "none" });
const close = (...replies: Reply[]): Step => ({ replies, after: "close" });

export class Session {
  readonly #deps: SessionDeps;
  readonly #info: SessionInfo;
  readonly #lines = new LineReader(MAX_AUTH_LINE);
  #secure: boolean;
  #kind: Kind | null = null;
  #helo = "";
  #user: LocalUser | null = null;
  /** A token session passed AUTH STOKEN (draft §7.3). */
  #tokenAuthed = false;
  #sasl: SaslState | null = null;
  #txn: Transaction | null = null;
  #data: DataState | null = null;

  constructor(deps: SessionDeps, info: SessionInfo) {
    this.#deps = deps;
    this.#info = info;
    this.#secure = info.secure;
  }

  greeting(): Reply {
    const proto = this.#info.listener === "lmtp" ? "LMTP" : "ESMTP";
    return reply(220, undefined, `${this.#deps.hostname} ${proto} stoken`);
  }

  get inData(): boolean {
    return this.#data !== null;
  }

  /** Process every complete command (and DATA bytes) in `chunk`; replies come batched (RFC 2920). */
  async feed(chunk: Uint8Array): Promise<Output> {
    const replies: Reply[] = [];
    let buf: Uint8Array | null = chunk;
    for (;;) {
      if (this.#data) {
        if (buf === null || buf.length === 0) break;
        const rest = await this.#feedData(buf, replies);
        if (rest === null) break;
        buf = rest;
        continue;
      }
      if (buf !== null) {
        this.#lines.push(buf);
        buf = null;
      }
      const line = this.#lines.next();
      if (line === null) break;
      const s = await this.#onLine(line);
      replies.push(...s.replies);
      if (s.after !== "none") {
        // RFC 3207 §4.2: nothing sent before the handshake may be acted on after it.
        if (s.after === "starttls") this.#lines.clear();
        return { replies, after: s.after };
      }
      if (this.#data) buf = this.#lines.takeRest();
    }
    return { replies, after: "none" };
  }

  /** After the TLS handshake: forget everything learnt in plaintext (RFC 3207 §4.2). */
  tlsStarted(): void {
    this.#secure = true;
    this.#kind = null;
    this.#helo = "";
    this.#user = null;
    this.#tokenAuthed = false;
    this.#sasl = null;
    this.#txn = null;
  }

  async end(): Promise<void> {
    const d = this.#data;
    this.#data = null;
    this.#txn = null;
    if (d) await d.msg.discard();
  }

  // ---- DATA ---------------------------------------------------------------

  /** Feeds message bytes; returns the unconsumed rest once the data has ended, else null. */
  async #feedData(buf: Uint8Array, replies: Reply[]): Promise<Uint8Array | null> {
    const d = this.#data!;
    const s = d.reader.push(buf);
    for (const part of s.body) await d.msg.write(part);
    if (!s.done) return null;
    replies.push(...(await this.#endData(d)));
    return buf.subarray(s.consumed);
  }

  async #endData(d: DataState): Promise<Reply[]> {
    this.#data = null;
    const txn = this.#txn!;
    this.#txn = null;
    try {
      if (d.reader.bareNewline) return this.#forEachRcpt(txn, R.bareNewline);
      if (d.reader.tooLarge) return this.#forEachRcpt(txn, R.sizeExceeded);
      return await this.#deliver(txn, d.msg);
    } finally {
      await d.msg.discard();
    }
  }

  /** LMTP answers once per accepted recipient (RFC 2033 §4.2); SMTP once. */
  #forEachRcpt(txn: Transaction, r: Reply): Reply[] {
    return this.#kind === "user" ? [r] : txn.rcpts.map(() => r);
  }

  async #deliver(txn: Transaction, msg: SpooledMessage): Promise<Reply[]> {
    if (this.#kind === "user") return await this.#deliverSubmission(txn, msg);
    const date = this.#deps.now();
    const results = await Promise.all(txn.rcpts.map(async (rcpt) => {
      const id = this.#deps.newId();
      return { rcpt, id, res: await this.#store(rcpt, rcpt.user!, id, msg, date) };
    }));
    if (this.#kind === "token") {
      return await Promise.all(
        results.map(({ rcpt, id, res }) =>
          this.#tokenResult(txn, rcpt, id, res.ok).then((r) => r ?? failureReply(rcpt, res))
        ),
      );
    }
    if (this.#deps.harvest.enabled) await this.#harvest(txn, msg, results.filter((r) => r.res.ok));
    return results.map(({ rcpt, id, res }) =>
      res.ok ? reply(250, "2.0.0", `<${rcpt.address}> ${id} Saved`) : failureReply(rcpt, res)
    );
  }

  /** One local copy: trace header + message into the user's Maildir, on stable storage. */
  async #store(
    rcpt: Recipient,
    user: LocalUser,
    id: string,
    msg: SpooledMessage,
    date: Date,
  ): Promise<DeliveryResult> {
    const deps = this.#deps;
    const protocol = this.#kind === "user" ? "ESMTPSA" : this.#kind === "token" ? "LMTPSA" : "LMTP";
    const prefix = receivedHeader({
      helo: this.#helo,
      ip: this.#info.remoteAddress,
      host: deps.hostname,
      protocol,
      id,
      rcpt: rcpt.address,
      date,
    });
    const res = await deps.mailboxes.deliver(user, prefix, msg);
    if (res.ok) deps.log("delivered", { id, rcpt: rcpt.address, size: msg.size, protocol });
    else deps.log("delivery_failed", { id, rcpt: rcpt.address, kind: res.kind, cause: res.cause });
    return res;
  }

  /**
   * PROTOCOL.md §7: no queue. 250 only when every recipient has the message on stable
   * storage or its next hop took it. A retry (same Message-ID) skips recipients that
   * already have it, so a 451 never causes duplicates.
   */
  async #deliverSubmission(txn: Transaction, msg: SpooledMessage): Promise<Reply[]> {
    const deps = this.#deps;
    const user = this.#user!;
    const id = deps.newId();
    const date = deps.now();
    const head = await readHead(msg);
    const messageId = fieldsNamed(head.fields, "Message-ID")[0]?.value;
    const sender = remoteOf(txn);
    let already = new Set<string>();
    if (messageId) {
      try {
        already = await deps.recent.delivered(sender, messageId);
      } catch (e) {
        deps.log("store_error", { op: "recent", cause: (e as Error).message });
      }
    }
    const outcomes = await Promise.all(txn.rcpts.map(async (rcpt) => {
      const key = normalizeAddress(rcpt.address) ?? rcpt.address;
      if (already.has(key)) {
        deps.log("duplicate_skipped", { id, rcpt: rcpt.address });
        return { ok: true, permanent: false, key };
      }
      let ok: boolean;
      let permanent = false;
      if (rcpt.user) {
        ok = (await this.#store(rcpt, rcpt.user, id, msg, date)).ok;
      } else {
        const res = await deps.remote.deliver(txn.from, user.address, rcpt.address, msg, head);
        ok = res.ok;
        if (res.ok) {
          deps.log("sent", { id, rcpt: rcpt.address, path: res.path, detail: res.detail });
        } else {
          permanent = res.permanent;
          deps.log("send_failed", { id, rcpt: rcpt.address, permanent, cause: res.cause });
        }
      }
      return { ok, permanent, key };
    }));
    if (outcomes.every((o) => o.ok)) return [reply(250, "2.0.0", `${id} Message accepted`)];
    // The client will retry: remember who has the message so the retry skips them. Only
    // here, not on success (no retry follows a 250), to keep a database write off the
    // common path.
    if (messageId) {
      for (const o of outcomes) {
        if (!o.ok || already.has(o.key)) continue;
        try {
          await deps.recent.record(sender, messageId, o.key);
        } catch (e) {
          deps.log("store_error", { op: "recent", cause: (e as Error).message });
        }
      }
    }
    // Only permanent refusals left: retrying cannot help, so say so (the client bounces).
    if (outcomes.every((o) => o.ok || o.permanent)) return [R.rejectedByNextHop];
    return [R.retryLater];
  }

  /**
   * PROTOCOL.md §9: each Submission-Token header of mail the MTA hands over becomes a
   * token held for (envelope sender, recipient), unless the MTA's Authentication-Results
   * show the sender's domain failed DKIM and SPF. A header never replaces a token that works.
   */
  async #harvest(
    txn: Transaction,
    msg: SpooledMessage,
    delivered: { rcpt: Recipient }[],
  ): Promise<void> {
    const deps = this.#deps;
    const sender = normalizeAddress(txn.from);
    if (sender === null || !sender.includes("@") || delivered.length === 0) return;
    const head = await readHead(msg);
    const tokens = fieldsNamed(head.fields, "Submission-Token").map((f) => f.value)
      .filter(isTokenString);
    if (tokens.length === 0) return;
    const auth = domainAuth(head.fields, sender.slice(sender.lastIndexOf("@") + 1), deps.hostname);
    if (!mayHarvest(auth, deps.harvest.requireAuthPass)) {
      deps.log("harvest_refused", { sender, reason: "authentication results" });
      return;
    }
    for (const { rcpt } of delivered) {
      // Several headers (draft §6.2: one per alias) for one pair: the first valid one.
      try {
        await deps.heldTokens.put(sender, rcpt.user!.address, tokens[0]!, {
          source: "header",
          overwriteWorking: false,
        });
        deps.log("harvested", { sender, local: rcpt.user!.address });
      } catch (e) {
        deps.log("store_error", { op: "harvest", cause: (e as Error).message });
      }
    }
  }

  /**
   * Draft §7.4.1: 2.1.13 hands out a (new) permanent token, 2.1.12 keeps the current one.
   * A permanent token is only handed out once stored; if storing fails the message is
   * still delivered and the client keeps using the token it has (2.1.12).
   */
  async #tokenResult(
    txn: Transaction,
    rcpt: Recipient,
    id: string,
    ok: boolean,
  ): Promise<Reply | null> {
    if (!ok) return null;
    const deps = this.#deps;
    const local = rcpt.user!.address;
    let perm: string | null = null;
    try {
      perm = await deps.tokens.afterDelivery(
        remoteOf(txn),
        local,
        rcpt.token ?? "perm",
        rcpt.stoken,
      );
    } catch (e) {
      deps.log("store_error", { op: "after_delivery", cause: (e as Error).message });
    }
    if (rcpt.mytoken !== undefined) {
      try {
        await deps.heldTokens.put(remoteOf(txn), local, rcpt.mytoken, {
          source: "mystoken",
          overwriteWorking: true,
        });
      } catch (e) {
        deps.log("store_error", { op: "held_token", cause: (e as Error).message });
      }
    }
    return perm === null
      ? reply(250, "2.1.12", `<${rcpt.address}> ${id} Saved`)
      : reply(250, "2.1.13", `<${rcpt.address}> ${perm} ${id} Saved`);
  }

  // ---- commands -----------------------------------------------------------

  #onLine(line: Line): Promise<Step> | Step {
    if (line.kind === "too_long") {
      this.#sasl = null;
      return step(R.lineTooLong);
    }
    if (this.#sasl) return this.#saslResponse(line.text);
    if (line.text.length + 2 > MAX_COMMAND_LINE && !/^AUTH /i.test(line.text)) {
      return step(R.lineTooLong);
    }
    const parsed = parseCommand(line.text);
    if (!parsed.ok) return step(parsed.reply);
    return this.#dispatch(parsed.cmd);
  }

  #dispatch(cmd: Command): Promise<Step> | Step {
    switch (cmd.verb) {
      case "HELO":
      case "EHLO":
      case "LHLO":
        return this.#hello(cmd.verb, cmd.domain);
      case "STARTTLS":
        return this.#startTls();
      case "AUTH":
        return this.#auth(cmd.mechanism, cmd.initial);
      case "MAIL":
        return this.#mail(cmd.address, cmd.params);
      case "RCPT":
        return this.#rcpt(cmd.address, cmd.params);
      case "DATA":
        return this.#dataCommand();
      case "RSET":
        this.#txn = null;
        return step(R.ok);
      case "NOOP":
        return step(R.ok);
      case "QUIT":
        return close(R.bye);
      case "VRFY":
        return step(R.vrfy);
      case "EXPN":
        return step(R.notImplemented);
      case "HELP":
        return step(R.help);
      case "GENSTOKEN":
        return this.#genstoken(cmd.kind, cmd.remote, cmd.local);
      case "REVSTOKEN":
        return this.#revstoken(cmd.remote, cmd.local);
    }
  }

  #hello(verb: "HELO" | "EHLO" | "LHLO", domain: string): Step {
    const lmtpListener = this.#info.listener === "lmtp";
    if (lmtpListener && verb !== "LHLO") return step(R.useLhlo);
    const kind: Kind = lmtpListener ? "lmtp" : verb === "LHLO" ? "token" : "user";
    // A second greeting may not switch an authenticated session to the other kind.
    if ((this.#user || this.#tokenAuthed) && kind !== this.#kind) return step(R.badSequence);
    this.#kind = kind;
    this.#helo = domain;
    this.#txn = null; // RFC 5321 §4.1.4: a new greeting resets the transaction.
    const host = this.#deps.hostname;
    if (verb === "HELO") return step(reply(250, undefined, host));
    return step(reply(250, undefined, host, ...this.#capabilities(kind)));
  }

  /** PROTOCOL.md §2. */
  #capabilities(kind: Kind): string[] {
    const size = `SIZE ${this.#deps.limits.maxMessageSize}`;
    if (kind === "lmtp") return ["PIPELINING", size, "ENHANCEDSTATUSCODES", "8BITMIME"];
    if (kind === "token") {
      // Draft §7.2: STOKEN is never listed before TLS is active.
      return this.#secure
        ? ["PIPELINING", size, "ENHANCEDSTATUSCODES", "8BITMIME", "AUTH STOKEN", "STOKEN"]
        : ["PIPELINING", "ENHANCEDSTATUSCODES", "STARTTLS"];
    }
    return this.#secure
      ? ["PIPELINING", size, "ENHANCEDSTATUSCODES", "8BITMIME", "AUTH PLAIN LOGIN"]
      : ["PIPELINING", size, "ENHANCEDSTATUSCODES", "8BITMIME", "STARTTLS"];
  }

  #startTls(): Step {
    if (this.#info.listener === "lmtp") return step(R.notOnThisListener);
    if (this.#secure) return step(R.tlsActive);
    if (this.#kind === null || this.#txn) return step(R.badSequence);
    return { replies: [R.startTls], after: "starttls" };
  }

  // ---- AUTH (RFC 4954) ----------------------------------------------------

  async #auth(mechanism: string, initial: string | undefined): Promise<Step> {
    if (this.#info.listener === "lmtp") return step(R.notOnThisListener);
    if (this.#kind === null || this.#txn) return step(R.badSequence);
    if (this.#user || this.#tokenAuthed) return step(R.alreadyAuthenticated);
    if (!this.#secure) return step(R.encryptionRequired);
    if (this.#deps.authGuard.blocked(this.#info.remoteAddress)) return close(R.tooManyAuthFailures);
    if (this.#kind === "token") {
      if (mechanism !== "STOKEN") return step(R.unrecognizedAuth);
      if (initial === undefined) {
        this.#sasl = { mech: "STOKEN" };
        return step(challenge(""));
      }
      return await this.#stoken(initial);
    }
    if (mechanism !== "PLAIN" && mechanism !== "LOGIN") return step(R.unrecognizedAuth);
    if (mechanism === "PLAIN") {
      if (initial === undefined) {
        this.#sasl = { mech: "PLAIN" };
        return step(challenge(""));
      }
      return await this.#plain(initial);
    }
    if (initial === undefined) {
      this.#sasl = { mech: "LOGIN", username: undefined };
      return step(challenge("VXNlcm5hbWU6")); // "Username:"
    }
    return this.#loginUsername(initial);
  }

  async #saslResponse(text: string): Promise<Step> {
    const sasl = this.#sasl!;
    this.#sasl = null;
    if (text === "*") return step(R.authCancelled);
    if (sasl.mech === "PLAIN") return await this.#plain(text);
    if (sasl.mech === "STOKEN") return await this.#stoken(text);
    if (sasl.username === undefined) return this.#loginUsername(text);
    const pw = decodeUtf8(decodeResponse(text));
    if (pw === null) return step(R.authMalformed);
    return await this.#checkPassword(sasl.username, pw);
  }

  /**
   * Draft §7.3.1: base64 of "recipient NUL token". The recipient must be ours and the
   * token one of its tokens; the remote is checked per recipient at RCPT. An unknown
   * recipient and a bad token get the same reply and count the same.
   */
  async #stoken(b64: string): Promise<Step> {
    const started = this.#deps.now().getTime();
    const bytes = decodeResponse(b64);
    const creds = bytes === null ? null : decodeStoken(bytes);
    // Draft §7.3.1.1: "AUTH STOKEN abcdefg" is answered 535, like any other bad token.
    if (creds === null) return await this.#authFailed(started, null, R.stokenInvalid);
    const local = normalizeAddress(creds.recipient);
    if (local !== null && this.#deps.authGuard.blocked(`local:${local}`)) {
      return close(R.tooManyAuthFailures);
    }
    let user: LocalUser | null = null;
    try {
      user = local === null ? null : await this.#deps.users.lookup(local);
    } catch (e) {
      this.#deps.log("store_error", { op: "lookup", cause: (e as Error).message });
      return step(R.tempFailure);
    }
    if (user && this.#deps.tokens.checkLocal(creds.token, user.address)) {
      this.#tokenAuthed = true;
      this.#deps.log("auth", { ok: true, mechanism: "STOKEN", local: user.address });
      return step(R.stokenOk);
    }
    return await this.#authFailed(started, local, R.stokenInvalid);
  }

  #loginUsername(b64: string): Step {
    const username = decodeUtf8(decodeResponse(b64));
    if (username === null || username === "") return step(R.authMalformed);
    this.#sasl = { mech: "LOGIN", username };
    return step(challenge("UGFzc3dvcmQ6")); // "Password:"
  }

  async #plain(b64: string): Promise<Step> {
    const bytes = decodeResponse(b64);
    if (bytes === null) return step(R.authMalformed);
    const creds = decodePlain(bytes);
    if (creds === null) return step(R.authMalformed);
    // We do not let one user act for another (RFC 4616 §2: the server decides).
    if (creds.authzid !== "" && creds.authzid.toLowerCase() !== creds.authcid.toLowerCase()) {
      return await this.#authFailed(this.#deps.now().getTime());
    }
    return await this.#checkPassword(creds.authcid, creds.password);
  }

  async #checkPassword(username: string, password: string): Promise<Step> {
    const started = this.#deps.now().getTime();
    const user = await this.#deps.users.verifyPassword(username, password);
    if (!user) return await this.#authFailed(started);
    this.#user = user;
    this.#deps.log("auth", { ok: true, user: user.address });
    return step(R.authOk);
  }

  /** Every failure takes the same minimum time, so timing says nothing (cf. chasquid). */
  async #authFailed(
    started: number,
    local: string | null = null,
    failure: Reply = R.authInvalid,
  ): Promise<Step> {
    const deps = this.#deps;
    const ip = this.#info.remoteAddress;
    let nowBlocked = deps.authGuard.fail(ip);
    if (local !== null) nowBlocked = deps.authGuard.fail(`local:${local}`) || nowBlocked;
    deps.log("auth", { ok: false });
    const wait = started + deps.authGuard.failureDelayMs - deps.now().getTime();
    if (wait > 0) await deps.sleep(wait);
    return nowBlocked ? close(R.tooManyAuthFailures) : step(failure);
  }

  // ---- token management (draft §5.4, PROTOCOL.md §4) -----------------------

  /** Resolves the pair for GENSTOKEN/REVSTOKEN, or the reply that refuses it. */
  async #tokenPair(
    remoteArg: string,
    localArg: string | undefined,
  ): Promise<[string, string] | Reply> {
    if (this.#kind === "token" || this.#kind === "lmtp") return R.badSequence;
    const user = this.#user;
    if (!user) return R.authRequired;
    const remote = normalizeAddress(stripBrackets(remoteArg));
    if (remote === null || !remote.includes("@")) return R.badRemote;
    if (localArg === undefined) return [remote, user.address];
    const local = normalizeAddress(stripBrackets(localArg));
    if (local === null || !local.includes("@")) return R.badLocal;
    const owner = await this.#deps.users.lookup(local);
    if (!owner) return R.badLocal;
    if (owner.address !== user.address) return R.notYourAddress;
    return [remote, owner.address];
  }

  async #genstoken(
    kind: "PERM" | "TEMP",
    remoteArg: string,
    localArg: string | undefined,
  ): Promise<Step> {
    try {
      const pair = await this.#tokenPair(remoteArg, localArg);
      if (!Array.isArray(pair)) return step(pair);
      const [remote, local] = pair;
      const tokens = this.#deps.tokens;
      this.#deps.log("genstoken", { kind, remote, local });
      if (kind === "TEMP") {
        return step(
          reply(
            250,
            "2.1.11",
            `${await tokens.generateTemp(remote, local)} Temporary token generated.`,
          ),
        );
      }
      const { token, created } = await tokens.getOrCreatePerm(remote, local);
      return step(
        reply(250, "2.1.11", `${token} Permanent token ${created ? "generated" : "exists"}.`),
      );
    } catch (e) {
      this.#deps.log("store_error", { op: "genstoken", cause: (e as Error).message });
      return step(R.genFailed);
    }
  }

  async #revstoken(remoteArg: string, localArg: string | undefined): Promise<Step> {
    try {
      const pair = await this.#tokenPair(remoteArg, localArg);
      if (!Array.isArray(pair)) return step(pair);
      await this.#deps.tokens.revoke(pair[0], pair[1]);
      this.#deps.log("revstoken", { remote: pair[0], local: pair[1] });
      return step(R.revoked);
    } catch (e) {
      this.#deps.log("store_error", { op: "revstoken", cause: (e as Error).message });
      return step(R.revokeFailed);
    }
  }

  // ---- mail transaction ---------------------------------------------------

  async #mail(address: string, params: readonly Param[]): Promise<Step> {
    if (this.#kind === null) return step(R.badSequence);
    if (this.#kind === "user" && !this.#user) return step(R.authRequired);
    if (this.#kind === "token" && !this.#tokenAuthed) return step(R.authRequired);
    if (this.#txn) return step(R.badSequence);
    for (const p of params) {
      if (p.keyword === "SIZE") {
        if (p.value === undefined || !/^\d{1,20}$/.test(p.value)) return step(R.badSize);
        if (Number(p.value) > this.#deps.limits.maxMessageSize) return step(R.sizeExceeded);
      } else if (p.keyword === "BODY") {
        const v = p.value?.toUpperCase();
        if (v !== "7BIT" && v !== "8BITMIME") return step(R.badSize);
      } else {
        return step(R.unsupportedParameter);
      }
    }
    if (this.#kind === "user") {
      try {
        if (address === "" || !(await this.#deps.users.owns(this.#user!, address))) {
          return step(R.senderNotOwned);
        }
      } catch (e) {
        this.#deps.log("store_error", { op: "owns", cause: (e as Error).message });
        return step(R.tempFailure);
      }
    }
    // PROTOCOL.md §6: a token delivery always names its remote user.
    if (this.#kind === "token" && (address === "" || !address.includes("@"))) {
      return step(R.badSender);
    }
    this.#txn = { from: address, rcpts: [] };
    return step(R.mailOk);
  }

  async #rcpt(address: string, params: readonly Param[]): Promise<Step> {
    const txn = this.#txn;
    if (!txn) return step(R.badSequence);
    let stoken: string | undefined;
    let mytoken: string | undefined;
    for (const p of params) {
      if (this.#kind !== "token") return step(R.unsupportedParameter);
      if (p.keyword === "STOKEN" && stoken === undefined) stoken = p.value ?? "";
      else if (p.keyword === "MYSTOKEN" && mytoken === undefined) mytoken = p.value ?? "";
      else return step(R.unsupportedParameter);
    }
    if (txn.rcpts.length >= this.#deps.limits.maxRecipients) return step(R.tooManyRecipients);
    const at = address.lastIndexOf("@");
    const domain = at < 0 ? "" : address.slice(at + 1).toLowerCase();
    // RFC 5321 §4.5.1: <postmaster> without a domain must be accepted.
    if (at < 0 && address.toLowerCase() !== "postmaster") return step(R.userUnknown);
    if (at >= 0 && !this.#deps.isLocalDomain(domain)) {
      if (this.#kind !== "user") return step(R.relayDenied);
      return await this.#remoteRcpt(txn, address);
    }
    let user: LocalUser | null;
    try {
      user = await this.#deps.users.lookup(address);
    } catch (e) {
      this.#deps.log("store_error", { op: "lookup", cause: (e as Error).message });
      return step(R.tempFailure);
    }
    if (!user) return step(R.userUnknown);
    if (this.#kind !== "token") {
      txn.rcpts.push({ address, user });
      return step(R.rcptOk);
    }
    return await this.#tokenRcpt(txn, address, user, stoken, mytoken);
  }

  /** A user's recipient in another domain: accepted if a token is held or a relay exists. */
  async #remoteRcpt(txn: Transaction, address: string): Promise<Step> {
    let ok: boolean;
    try {
      ok = await this.#deps.remote.routable(
        this.#user!.address,
        normalizeAddress(address) ?? address,
      );
    } catch (e) {
      this.#deps.log("store_error", { op: "routable", cause: (e as Error).message });
      return step(R.tempFailure);
    }
    if (!ok) return step(R.relayNotConfigured);
    txn.rcpts.push({ address, user: null });
    return step(R.rcptOk);
  }

  /** PROTOCOL.md §6: each recipient of a token delivery needs a token for (MAIL FROM, RCPT TO). */
  async #tokenRcpt(
    txn: Transaction,
    address: string,
    user: LocalUser,
    stoken: string | undefined,
    mytoken: string | undefined,
  ): Promise<Step> {
    const deps = this.#deps;
    if (stoken === undefined) return step(R.tokenRequired);
    if (mytoken !== undefined && !isTokenString(mytoken)) return step(R.badMytoken);
    const ip = this.#info.remoteAddress;
    const localKey = `local:${user.address}`;
    if (deps.authGuard.blocked(ip) || deps.authGuard.blocked(localKey)) {
      return close(R.tooManyAuthFailures);
    }
    let verdict: Awaited<ReturnType<SessionDeps["tokens"]["verify"]>>;
    try {
      verdict = await deps.tokens.verify(stoken, remoteOf(txn), user.address);
    } catch (e) {
      deps.log("store_error", { op: "verify", cause: (e as Error).message });
      return step(R.tempFailure);
    }
    if (!verdict.ok) {
      const byIp = deps.authGuard.fail(ip);
      const byLocal = deps.authGuard.fail(localKey);
      deps.log("token_refused", { local: user.address });
      return byIp || byLocal ? close(R.tooManyAuthFailures) : step(R.tokenInvalid);
    }
    txn.rcpts.push({
      address,
      user,
      token: verdict.kind,
      stoken,
      ...(mytoken === undefined ? {} : { mytoken }),
    });
    return step(R.rcptOk);
  }

  async #dataCommand(): Promise<Step> {
    const txn = this.#txn;
    if (!txn) return step(R.badSequence);
    if (txn.rcpts.length === 0) return step(R.noValidRecipients);
    let msg: SpooledMessage;
    try {
      msg = await this.#deps.spool.create();
    } catch (e) {
      this.#deps.log("spool_error", { cause: (e as Error).message });
      return step(R.tempFailure);
    }
    this.#data = { reader: new DataReader(this.#deps.limits.maxMessageSize), msg };
    return step(R.startData);
  }
}

/** The pair's remote side as the token engine keys it (draft §7.3.1: case-insensitive). */
function remoteOf(txn: Transaction): string {
  return normalizeAddress(txn.from) ?? txn.from;
}

function failureReply(rcpt: Recipient, res: DeliveryResult): Reply {
  if (res.ok) throw new Error("not a failure");
  if (res.kind === "quota") return reply(552, "5.2.2", `<${rcpt.address}> Mailbox full`);
  return reply(451, "4.3.0", `<${rcpt.address}> Temporary failure`);
}

function stripBrackets(s: string): string {
  return s.startsWith("<") && s.endsWith(">") ? s.slice(1, -1) : s;
}

/** PROTOCOL.md §5: token strings are [A-Za-z0-9_-]{20,64}. */
function isTokenString(s: string): boolean {
  return /^[A-Za-z0-9_-]{20,64}$/.test(s);
}

/** A SASL response: strict base64, with "=" meaning an empty response (RFC 4954 §4). */
function decodeResponse(b64: string): Uint8Array | null {
  return b64 === "=" ? new Uint8Array(0) : decodeBase64Strict(b64);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function decodeUtf8(b: Uint8Array | null): string | null {
  if (b === null) return null;
  try {
    const s = utf8.decode(b);
    // deno-lint-ignore no-control-regex -- control characters are exactly what is refused
    return /[\x00-\x1f\x7f]/.test(s) ? null : s;
  } catch {
    return null;
  }
}
