import { assertEquals } from "../assert.ts";
import { type Command, parseCommand } from "../../src/protocol/command.ts";
import { formatReply } from "../../src/protocol/reply.ts";

/** Parses and gives either the command or the wire form of the reply (without CRLF). */
function run(line: string): Command | string {
  const r = parseCommand(line);
  return r.ok ? r.cmd : formatReply(r.reply).trimEnd();
}

const NOT_RECOGNIZED = "500 5.5.2 Command not recognized";
const BAD_CHAR = "500 5.5.2 Syntax error: invalid character in command";
const MAIL_SYNTAX = "501 5.5.4 Syntax: MAIL FROM:<address>";
const RCPT_SYNTAX = "501 5.5.4 Syntax: RCPT TO:<address>";
const BAD_SENDER = "501 5.1.7 Bad sender address";
const BAD_RCPT = "501 5.1.3 Bad recipient address";
const BAD_PARAMS = "501 5.5.4 Syntax error in parameters";
const AUTH_SYNTAX = "501 5.5.4 Syntax: AUTH mechanism [initial-response]";
const GEN_SYNTAX = "501 5.5.4 Syntax: GENSTOKEN (PERM|TEMP) remote-address [local-address]";
const REV_SYNTAX = "501 5.5.4 Syntax: REVSTOKEN remote-address [local-address]";

const table: [string, Command | string][] = [
  // Greetings.
  ["EHLO client.example", { verb: "EHLO", domain: "client.example" }],
  ["ehlo client.example", { verb: "EHLO", domain: "client.example" }],
  ["HELO [192.0.2.1]", { verb: "HELO", domain: "[192.0.2.1]" }],
  ["LhLo mx.example  ", { verb: "LHLO", domain: "mx.example" }],
  ["EHLO", "501 5.5.4 Syntax: EHLO hostname"],
  ["lhlo ", "501 5.5.4 Syntax: LHLO hostname"],
  ["helo", "501 5.5.4 Syntax: HELO hostname"],
  // MAIL.
  ["MAIL FROM:<user@example.com>", { verb: "MAIL", address: "user@example.com", params: [] }],
  ["mail from:<User@Example.COM>", { verb: "MAIL", address: "User@example.com", params: [] }],
  ["MAIL FROM: <user@example.com>", { verb: "MAIL", address: "user@example.com", params: [] }],
  ["MAIL FROM:<>", { verb: "MAIL", address: "", params: [] }],
  ["MAIL FROM:<> SIZE=10", {
    verb: "MAIL",
    address: "",
    params: [{ keyword: "SIZE", value: "10" }],
  }],
  ["MAIL FROM:<a@b.example> size=100 BODY=8BITMIME", {
    verb: "MAIL",
    address: "a@b.example",
    params: [{ keyword: "SIZE", value: "100" }, { keyword: "BODY", value: "8BITMIME" }],
  }],
  ['MAIL FROM:<"john doe"@example.com>', {
    verb: "MAIL",
    address: '"john doe"@example.com',
    params: [],
  }],
  ['MAIL FROM:<"a>b"@example.com> SIZE=1', {
    verb: "MAIL",
    address: '"a>b"@example.com',
    params: [{ keyword: "SIZE", value: "1" }],
  }],
  ['MAIL FROM:<"john"@example.com>', { verb: "MAIL", address: "john@example.com", params: [] }],
  ["MAIL FROM:<@a.example,@b.example:user@c.example>", {
    verb: "MAIL",
    address: "user@c.example",
    params: [],
  }],
  ["MAIL FROM:<@a.example:user@c.example>", {
    verb: "MAIL",
    address: "user@c.example",
    params: [],
  }],
  ["MAIL FROM:<@a..example:user@c.example>", BAD_SENDER],
  ["MAIL FROM:<@a.example user@c.example>", BAD_SENDER],
  ["MAIL FROM:<a.example,@b.example:user@c.example>", BAD_SENDER],
  ["MAIL FROM:user@example.com", MAIL_SYNTAX],
  ["MAIL FROM:<user@example.com", MAIL_SYNTAX],
  ["MAIL FROM:  <user@example.com>", MAIL_SYNTAX],
  ["MAIL FROM <user@example.com>", MAIL_SYNTAX],
  ["MAIL TO:<user@example.com>", MAIL_SYNTAX],
  ["MAIL", MAIL_SYNTAX],
  ["MAIL FROM:<a@b.example>SIZE=1", MAIL_SYNTAX],
  ["MAIL FROM:<remoteuser..@example.com>", BAD_SENDER],
  ["MAIL FROM:<user>", BAD_SENDER],
  ["MAIL FROM:<user@example.com> SIZE=", BAD_PARAMS],
  ["MAIL FROM:<user@example.com> SIZE=1 SIZE=2", BAD_PARAMS],
  ["MAIL FROM:<user@example.com> =x", BAD_PARAMS],
  // RCPT.
  ["RCPT TO:<local@foo.com>", { verb: "RCPT", address: "local@foo.com", params: [] }],
  ["rcpt to: <local@FOO.com>", { verb: "RCPT", address: "local@foo.com", params: [] }],
  ["RCPT TO:<local@foo.com> STOKEN=s6xW15h9Dh MYSTOKEN=abc", {
    verb: "RCPT",
    address: "local@foo.com",
    params: [{ keyword: "STOKEN", value: "s6xW15h9Dh" }, { keyword: "MYSTOKEN", value: "abc" }],
  }],
  ["RCPT TO:<postmaster>", { verb: "RCPT", address: "postmaster", params: [] }],
  ["RCPT TO:<PostMaster>", { verb: "RCPT", address: "postmaster", params: [] }],
  ["RCPT TO:<Postmaster@Foo.com>", { verb: "RCPT", address: "Postmaster@foo.com", params: [] }],
  ["RCPT TO:<@relay.example:local@foo.com>", {
    verb: "RCPT",
    address: "local@foo.com",
    params: [],
  }],
  ["RCPT TO:<>", BAD_RCPT],
  ["RCPT TO:<local>", BAD_RCPT],
  ["RCPT TO:<a..b@foo.com>", BAD_RCPT],
  ["RCPT TO:local@foo.com", RCPT_SYNTAX],
  ["RCPT FROM:<local@foo.com>", RCPT_SYNTAX],
  ["RCPT TO:<local@foo.com> STOKEN", {
    verb: "RCPT",
    address: "local@foo.com",
    params: [{ keyword: "STOKEN", value: undefined }],
  }],
  ["RCPT TO:<local@foo.com> STOKEN=", BAD_PARAMS],
  // AUTH.
  ["AUTH PLAIN", { verb: "AUTH", mechanism: "PLAIN", initial: undefined }],
  ["auth plain AGZvbwBiYXI=", { verb: "AUTH", mechanism: "PLAIN", initial: "AGZvbwBiYXI=" }],
  ["AUTH STOKEN =", { verb: "AUTH", mechanism: "STOKEN", initial: "=" }],
  ["AUTH", AUTH_SYNTAX],
  ["AUTH PLAIN a b", AUTH_SYNTAX],
  // GENSTOKEN / REVSTOKEN (draft §5.4).
  ["GENSTOKEN TEMP user@example.com localuser@foo.com", {
    verb: "GENSTOKEN",
    kind: "TEMP",
    remote: "user@example.com",
    local: "localuser@foo.com",
  }],
  ["genstoken perm <user@example.com>", {
    verb: "GENSTOKEN",
    kind: "PERM",
    remote: "user@example.com",
    local: undefined,
  }],
  ["GENSTOKEN TEMP remoteuser..@example.com", {
    verb: "GENSTOKEN",
    kind: "TEMP",
    remote: "remoteuser..@example.com",
    local: undefined,
  }],
  ['GENSTOKEN TEMP "john doe"@example.com <me@foo.com>', {
    verb: "GENSTOKEN",
    kind: "TEMP",
    remote: '"john doe"@example.com',
    local: "me@foo.com",
  }],
  ["GENSTOKEN", GEN_SYNTAX],
  ["GENSTOKEN TEMP", GEN_SYNTAX],
  ["GENSTOKEN FOREVER user@example.com", GEN_SYNTAX],
  ["GENSTOKEN TEMP a@b.example c@d.example e@f.example", GEN_SYNTAX],
  ["REVSTOKEN user@example.com localuser@foo.com", {
    verb: "REVSTOKEN",
    remote: "user@example.com",
    local: "localuser@foo.com",
  }],
  ["revstoken <user@example.com>", {
    verb: "REVSTOKEN",
    remote: "user@example.com",
    local: undefined,
  }],
  ["REVSTOKEN", REV_SYNTAX],
  ["REVSTOKEN a@b.example c@d.example e@f.example", REV_SYNTAX],
  // Commands with a free argument.
  ["NOOP", { verb: "NOOP", arg: "" }],
  ["noop anything at all", { verb: "NOOP", arg: "anything at all" }],
  ["VRFY user", { verb: "VRFY", arg: "user" }],
  ["EXPN list", { verb: "EXPN", arg: "list" }],
  ["HELP", { verb: "HELP", arg: "" }],
  // Commands without arguments.
  ["DATA", { verb: "DATA" }],
  ["data", { verb: "DATA" }],
  ["RSET", { verb: "RSET" }],
  ["QUIT ", { verb: "QUIT" }],
  ["StartTLS", { verb: "STARTTLS" }],
  ["DATA x", "501 5.5.4 Syntax: DATA"],
  ["rset now", "501 5.5.4 Syntax: RSET"],
  ["QUIT please", "501 5.5.4 Syntax: QUIT"],
  ["STARTTLS x", "501 5.5.4 Syntax: STARTTLS"],
  // Unknown.
  ["", NOT_RECOGNIZED],
  [" NOOP", NOT_RECOGNIZED],
  ["BDAT 10 LAST", NOT_RECOGNIZED],
  ["MAILFROM:<a@b.example>", NOT_RECOGNIZED],
  ["GET / HTTP/1.1", NOT_RECOGNIZED],
  // Invalid characters anywhere, checked before the verb.
  ["NOOP\x00", BAD_CHAR],
  ["NO\rOP", BAD_CHAR],
  ["NOOP\n", BAD_CHAR],
  ["EHLO a\tb", BAD_CHAR],
  ["MAIL FROM:<a@b.example> SIZE=1\x7f", BAD_CHAR],
  ["RCPT TO:<ü@b.example>", BAD_CHAR],
  ["XYZZY \x80", BAD_CHAR],
  ["\x1b[31m", BAD_CHAR],
];

for (const [line, want] of table) {
  Deno.test(`parseCommand ${JSON.stringify(line)}`, () => {
    assertEquals(run(line), want);
  });
}
