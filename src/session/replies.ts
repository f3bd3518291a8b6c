// Every fixed reply a session sends, in one table (PROTOCOL.md §2–§10).
import { type Reply, reply } from "../protocol/reply.ts";

export const R = {
  ok: reply(250, "2.0.0", "OK"),
  mailOk: reply(250, "2.1.0", "OK"),
  rcptOk: reply(250, "2.1.5", "OK"),
  bye: reply(221, "2.0.0", "Bye"),
  vrfy: reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"),
  help: reply(
    214,
    "2.0.0",
    "Commands: HELO EHLO LHLO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT VRFY HELP GENSTOKEN REVSTOKEN",
  ),
  startData: reply(354, undefined, "End data with <CR><LF>.<CR><LF>"),
  startTls: reply(220, "2.0.0", "Ready to start TLS"),
  authOk: reply(235, "2.7.0", "Authentication successful"),

  unknownCommand: reply(500, "5.5.2", "Command not recognized"),
  lineTooLong: reply(500, "5.5.6", "Line too long"),
  useLhlo: reply(500, "5.5.1", "Use LHLO"),
  badSequence: reply(503, "5.5.1", "Bad sequence of commands"),
  alreadyAuthenticated: reply(503, "5.5.1", "Already authenticated"),
  tlsActive: reply(503, "5.5.1", "TLS already active"),
  notOnThisListener: reply(502, "5.5.1", "Command not available on this listener"),
  notImplemented: reply(502, "5.5.1", "Command not implemented"),
  noValidRecipients: reply(554, "5.5.1", "No valid recipients"),
  unsupportedParameter: reply(555, "5.5.4", "Unsupported parameter"),
  badSize: reply(501, "5.5.4", "Syntax error in parameters"),

  encryptionRequired: reply(
    538,
    "5.7.11",
    "Encryption required for requested authentication mechanism",
  ),
  unrecognizedAuth: reply(504, "5.5.4", "Unrecognized authentication type"),
  authInvalid: reply(535, "5.7.8", "Authentication credentials invalid"),
  authCancelled: reply(501, "5.5.2", "Authentication cancelled"),
  authMalformed: reply(501, "5.5.2", "Malformed authentication data"),
  authRequired: reply(530, "5.7.0", "Authentication required"),
  tooManyAuthFailures: reply(421, "4.7.0", "Too many authentication failures"),

  senderNotOwned: reply(553, "5.7.1", "Sender address not owned by user"),
  userUnknown: reply(550, "5.1.1", "User unknown"),
  relayNotConfigured: reply(550, "5.7.1", "Relay not configured"),
  relayDenied: reply(550, "5.7.1", "Relay access denied"),
  tooManyRecipients: reply(452, "4.5.3", "Too many recipients"),
  sizeExceeded: reply(552, "5.3.4", "Message size exceeds fixed maximum"),
  bareNewline: reply(550, "5.5.2", "Bare line feed not allowed"),
  tempFailure: reply(451, "4.3.0", "Temporary failure"),
  badSender: reply(501, "5.1.7", "Bad sender address"),
  stokenOk: reply(235, "2.7.0", "OK"),
  stokenInvalid: reply(535, "5.7.8", "Could not authenticate."),
  tokenRequired: reply(550, "5.7.1", "Submission token required"),
  tokenInvalid: reply(550, "5.7.1", "Invalid submission token"),
  badMytoken: reply(501, "5.5.4", "Invalid MYSTOKEN"),
  badRemote: reply(501, "5.1.3", "Incorrect remote address."),
  badLocal: reply(501, "5.1.7", "Incorrect local address."),
  notYourAddress: reply(550, "5.7.1", "Not authorized for that local address."),
  revoked: reply(250, "2.1.0", "All tokens successfully revoked."),
  genFailed: reply(451, "4.5.0", "Token could not be generated."),
  revokeFailed: reply(451, "4.5.0", "Tokens could not be revoked."),
  rejectedByNextHop: reply(554, "5.0.0", "Message refused by the next hop for some recipients"),
  retryLater: reply(451, "4.3.0", "Temporary failure, please try again later"),
} as const satisfies Record<string, Reply>;

/** SASL continuation (RFC 4954 §4): "334 " followed by base64, no enhanced code. */
export function challenge(b64: string): Reply {
  return reply(334, undefined, b64);
}
