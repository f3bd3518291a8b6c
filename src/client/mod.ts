// The outbound side: the SMTP/LMTP client and Token Server discovery.
export { type OpenOptions, type Recipient, type SendResult, SmtpClient } from "./smtp_client.ts";
export { ClientError, type ClientErrorKind } from "./errors.ts";
export { type ClientReply, summary } from "./reply_parser.ts";
export { discover, type DiscoveryOptions, type Target } from "./discovery.ts";
