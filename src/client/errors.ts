// The one error type of the SMTP/LMTP client. Messages never carry a password, a token or
// message text; a server's reply is attached as data for the caller to log or act on.
import { ConnectError } from "../net/connect.ts";
import type { ClientReply } from "./reply_parser.ts";

export type ClientErrorKind = "timeout" | "protocol" | "network" | "tls";

export class ClientError extends Error {
  override name = "ClientError";
  readonly kind: ClientErrorKind;
  /** The server reply that caused the failure, when there was one. */
  declare readonly reply?: ClientReply;

  constructor(kind: ClientErrorKind, message: string, reply?: ClientReply) {
    super(message);
    this.kind = kind;
    if (reply !== undefined) this.reply = reply;
  }
}

/** Any failure below the client (connect, TLS, socket writes) as a ClientError. */
export function toClientError(e: unknown): ClientError {
  if (e instanceof ClientError) return e;
  if (e instanceof ConnectError) return new ClientError(e.kind, e.message);
  return new ClientError("network", e instanceof Error ? e.message : String(e));
}
