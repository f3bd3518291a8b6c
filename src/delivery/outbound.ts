// Where a user's message to another domain goes (PROTOCOL.md §7–§8): straight to the
// recipient's Token Server when we hold a token for the pair, else through the smarthost.
// Synchronous: the caller waits until the next hop has the message (or refused it).
import { fieldsNamed } from "../protocol/headers.ts";
import { type Head, headWithout, replaceHead } from "../protocol/message_view.ts";
import type { RemoteDelivery, RemoteResult, SpooledMessage } from "../session/deps.ts";

/** The part of an SMTP/LMTP client this module needs (src/client/smtp_client.ts). */
export interface ClientReply {
  readonly code: number;
  readonly enhanced?: string | undefined;
  readonly text: string;
}

export interface OutboundClient {
  readonly extensions: ReadonlyMap<string, string>;
  authPlain(user: string, password: string): Promise<ClientReply>;
  authStoken(recipient: string, token: string): Promise<ClientReply>;
  send(
    from: string,
    rcpts: { address: string; params?: Record<string, string> }[],
    body: AsyncIterable<Uint8Array>,
  ): Promise<{ mail: ClientReply; rcpts: ClientReply[]; data: (ClientReply | null)[] }>;
  quit(): Promise<void>;
  close(): void;
}

export interface OpenOptions {
  host: string;
  port: number;
  tls: "implicit" | "starttls" | "none";
  lmtp: boolean;
  helo: string;
  servername: string;
  ca?: string;
  timeoutMs: number;
}

export interface Target {
  /** Host name the certificate must match. */
  readonly host: string;
  /**
   * Address to connect to when our own resolver found it (remote.dns_servers); without it
   * the system resolver looks `host` up, which never asks the configured DNS servers.
   */
  readonly address?: string;
  readonly port: number;
  readonly tls: "implicit" | "starttls";
}

export interface RelayTarget {
  readonly host: string;
  readonly port: number;
  readonly tls: "implicit" | "starttls" | "none";
  readonly username: string;
  readonly password: string;
  readonly ca?: string;
  readonly timeoutMs: number;
}

/** Tokens held for other Token Servers (src/store/held_tokens.ts). */
export interface HeldTokenAccess {
  get(remote: string, local: string): Promise<{ token: string } | null>;
  put(
    remote: string,
    local: string,
    token: string,
    opts: { source: "reply"; overwriteWorking: boolean },
  ): Promise<unknown>;
  markSuccess(remote: string, local: string): Promise<unknown>;
  drop(remote: string, local: string): Promise<unknown>;
}

/** Our own tokens: the temporary one each relayed copy carries, the permanent one we hand over. */
export interface OwnTokens {
  generateTemp(remote: string, local: string): Promise<string>;
  getOrCreatePerm(remote: string, local: string): Promise<{ token: string }>;
}

export interface OutboundOptions {
  readonly hostname: string;
  readonly relay: RelayTarget | null;
  readonly remote: { readonly enabled: boolean; readonly timeoutMs: number; readonly ca?: string };
  readonly tokens: OwnTokens;
  readonly held: HeldTokenAccess;
  discover(domain: string): Promise<Target[]>;
  open(opts: OpenOptions): Promise<OutboundClient>;
  log(event: string, fields: Record<string, string | number | boolean | undefined>): void;
}

type TokenAttempt =
  | { ok: true; detail: string }
  | { ok: false; cause: string; dropToken: boolean };

const TOKEN_RE = /^[A-Za-z0-9_-]{20,64}$/;

export class Outbound implements RemoteDelivery {
  readonly #o: OutboundOptions;

  constructor(opts: OutboundOptions) {
    this.#o = opts;
  }

  async routable(local: string, recipient: string): Promise<boolean> {
    if (this.#o.relay) return true;
    if (!this.#o.remote.enabled) return false;
    return (await this.#o.held.get(lower(recipient), local)) !== null;
  }

  async deliver(
    from: string,
    local: string,
    recipient: string,
    msg: SpooledMessage,
    head: Head,
  ): Promise<RemoteResult> {
    const o = this.#o;
    const remote = lower(recipient);
    if (o.remote.enabled) {
      let held: { token: string } | null = null;
      try {
        held = await o.held.get(remote, local);
      } catch (e) {
        o.log("store_error", { op: "held_get", cause: (e as Error).message });
      }
      if (held) {
        const attempt = await this.#withDeadline(
          (track) => this.#tokenDelivery(from, local, recipient, held.token, msg, head, track),
        );
        if (attempt.ok) return { ok: true, path: "token", detail: attempt.detail };
        o.log("token_path_failed", {
          rcpt: remote,
          cause: attempt.cause,
          dropped: attempt.dropToken,
        });
        if (attempt.dropToken) {
          await o.held.drop(remote, local).catch((e) =>
            o.log("store_error", { op: "held_drop", cause: (e as Error).message })
          );
        }
      }
    }
    if (!o.relay) {
      return { ok: false, permanent: false, cause: "token delivery failed and no relay" };
    }
    return await this.#relay(from, local, recipient, msg, head, o.relay);
  }

  /** PROTOCOL.md §8: the whole token attempt is bounded; a late answer is a failure. */
  async #withDeadline(
    run: (track: (c: OutboundClient) => void) => Promise<TokenAttempt>,
  ): Promise<TokenAttempt> {
    let client: OutboundClient | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<TokenAttempt>((resolve) => {
      timer = setTimeout(() => {
        client?.close();
        resolve({ ok: false, cause: "timeout", dropToken: false });
      }, this.#o.remote.timeoutMs);
    });
    try {
      return await Promise.race([
        run((c) => (client = c)).catch((e): TokenAttempt => ({
          ok: false,
          cause: (e as Error).message,
          dropToken: false,
        })),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #tokenDelivery(
    from: string,
    local: string,
    recipient: string,
    token: string,
    msg: SpooledMessage,
    head: Head,
    track: (c: OutboundClient) => void,
  ): Promise<TokenAttempt> {
    const o = this.#o;
    const remote = lower(recipient);
    const domain = remote.slice(remote.lastIndexOf("@") + 1);
    const targets = await o.discover(domain);
    if (targets.length === 0) {
      return { ok: false, cause: "no Token Server found", dropToken: false };
    }
    let client: OutboundClient | null = null;
    let lastError = "";
    for (const t of targets) {
      try {
        client = await o.open({
          host: t.address ?? t.host,
          port: t.port,
          tls: t.tls,
          lmtp: true,
          helo: o.hostname,
          servername: t.host,
          ...(o.remote.ca === undefined ? {} : { ca: o.remote.ca }),
          timeoutMs: o.remote.timeoutMs,
        });
        track(client);
        break;
      } catch (e) {
        lastError = `${t.host}:${t.port}: ${(e as Error).message}`;
        // Only the last failure becomes the attempt's cause: say why each target failed.
        o.log("token_connect_failed", {
          host: t.host,
          port: t.port,
          tls: t.tls,
          cause: (e as Error).message,
        });
      }
    }
    if (!client) return { ok: false, cause: lastError, dropToken: false };
    try {
      // Draft §7.3: without STOKEN in the LHLO reply, give up on this path at once.
      if (!client.extensions.has("STOKEN")) {
        return { ok: false, cause: "STOKEN not offered", dropToken: false };
      }
      const auth = await client.authStoken(recipient, token);
      if (auth.code !== 235) {
        return { ok: false, cause: `AUTH STOKEN: ${auth.code}`, dropToken: auth.code === 535 };
      }
      const params: Record<string, string> = { STOKEN: token };
      try {
        params["MYSTOKEN"] = (await o.tokens.getOrCreatePerm(remote, local)).token;
      } catch (e) {
        o.log("store_error", { op: "mystoken", cause: (e as Error).message });
      }
      const body = replaceHead(withoutSubmissionTokens(head), msg, head.length);
      const res = await client.send(from, [{ address: recipient, params }], body);
      if (res.mail.code !== 250) {
        return { ok: false, cause: `MAIL: ${res.mail.code}`, dropToken: false };
      }
      const r = res.rcpts[0];
      if (!r || r.code !== 250) {
        const refused = r?.code === 550 && r.enhanced === "5.7.1";
        return { ok: false, cause: `RCPT: ${r?.code}`, dropToken: refused };
      }
      const d = res.data[0];
      if (!d || d.code !== 250) return { ok: false, cause: `DATA: ${d?.code}`, dropToken: false };
      await this.#learn(remote, local, d);
      return { ok: true, detail: `${d.code} ${d.enhanced ?? ""} ${deliveryId(d)}` };
    } finally {
      client.quit().catch(() => {});
    }
  }

  /** Draft §7.4.1: 2.1.13 carries a new permanent token for us; 2.1.12 confirms ours. */
  async #learn(remote: string, local: string, d: ClientReply): Promise<void> {
    const o = this.#o;
    try {
      if (d.enhanced === "2.1.13") {
        const token = d.text.split(/\s+/)[1] ?? "";
        if (TOKEN_RE.test(token)) {
          await o.held.put(remote, local, token, { source: "reply", overwriteWorking: true });
        }
      }
      await o.held.markSuccess(remote, local);
    } catch (e) {
      o.log("store_error", { op: "held_learn", cause: (e as Error).message });
    }
  }

  /**
   * The ordinary path: one transaction per recipient, because each copy carries its own
   * `Submission-Token` header (draft §6.2) and recipients never see each other's tokens.
   */
  async #relay(
    from: string,
    local: string,
    recipient: string,
    msg: SpooledMessage,
    head: Head,
    relay: RelayTarget,
  ): Promise<RemoteResult> {
    const o = this.#o;
    let headText = withoutSubmissionTokens(head);
    try {
      const temp = await o.tokens.generateTemp(lower(recipient), local);
      headText = `Submission-Token: ${temp}\r\n${headText}`;
    } catch (e) {
      // The message still goes; the recipient just cannot answer in real time.
      o.log("store_error", { op: "temp_token", cause: (e as Error).message });
    }
    let client: OutboundClient;
    try {
      client = await o.open({
        host: relay.host,
        port: relay.port,
        tls: relay.tls,
        lmtp: false,
        helo: o.hostname,
        servername: relay.host,
        ...(relay.ca === undefined ? {} : { ca: relay.ca }),
        timeoutMs: relay.timeoutMs,
      });
    } catch (e) {
      return { ok: false, permanent: false, cause: `relay: ${(e as Error).message}` };
    }
    try {
      if (relay.username !== "") {
        const a = await client.authPlain(relay.username, relay.password);
        if (a.code !== 235) return { ok: false, permanent: false, cause: `relay AUTH: ${a.code}` };
      }
      const res = await client.send(
        from,
        [{ address: recipient }],
        replaceHead(headText, msg, head.length),
      );
      const refused = [res.mail, res.rcpts[0], res.data[0]].find((r) => !r || r.code >= 300);
      if (refused !== undefined) {
        return {
          ok: false,
          permanent: refused !== null && refused.code >= 500,
          cause: `relay: ${refused ? `${refused.code} ${refused.enhanced ?? ""}` : "no reply"}`,
        };
      }
      return {
        ok: true,
        path: "relay",
        detail: `${res.data[0]!.code} ${res.data[0]!.text}`.slice(0, 200),
      };
    } catch (e) {
      return { ok: false, permanent: false, cause: `relay: ${(e as Error).message}` };
    } finally {
      client.quit().catch(() => {});
    }
  }
}

function lower(address: string): string {
  return address.toLowerCase();
}

function withoutSubmissionTokens(head: Head): string {
  if (fieldsNamed(head.fields, "Submission-Token").length === 0 && head.length > 0) {
    return headWithout(head, () => false);
  }
  return headWithout(head, (f) => f.name.toLowerCase() === "submission-token");
}

function deliveryId(d: ClientReply): string {
  const words = d.text.split(/\s+/);
  return (d.enhanced === "2.1.13" ? words[2] : words[1]) ?? "";
}
