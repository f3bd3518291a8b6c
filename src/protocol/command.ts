// Parses one command line (without its CRLF) into a typed command or a syntax reply.
// Verbs are case-insensitive (RFC 5321 §2.4). Which commands are allowed when is the
// session's business; this file only checks their form.

import { formatMailbox, isDomainName, parseMailbox } from "./address.ts";
import { type Param, parseParams } from "./params.ts";
import { type Reply, reply } from "./reply.ts";

export type Command =
  | { verb: "HELO" | "EHLO" | "LHLO"; domain: string }
  | { verb: "MAIL"; /** canonical mailbox, "" for <> */ address: string; params: Param[] }
  | { verb: "RCPT"; /** canonical mailbox, or "postmaster" */ address: string; params: Param[] }
  | { verb: "AUTH"; /** upper-cased */ mechanism: string; initial: string | undefined }
  | {
    verb: "GENSTOKEN";
    kind: "PERM" | "TEMP";
    /** raw argument, brackets stripped */ remote: string;
    local: string | undefined;
  }
  | { verb: "REVSTOKEN"; remote: string; local: string | undefined }
  | { verb: "VRFY" | "EXPN" | "HELP" | "NOOP"; arg: string }
  | { verb: "DATA" | "RSET" | "QUIT" | "STARTTLS" };

export type Parsed = { ok: true; cmd: Command } | { ok: false; reply: Reply };

const NOT_RECOGNIZED = reply(500, "5.5.2", "Command not recognized");
const BAD_CHARACTER = reply(500, "5.5.2", "Syntax error: invalid character in command");
const MAIL_SYNTAX = reply(501, "5.5.4", "Syntax: MAIL FROM:<address>");
const RCPT_SYNTAX = reply(501, "5.5.4", "Syntax: RCPT TO:<address>");
const BAD_SENDER = reply(501, "5.1.7", "Bad sender address");
const BAD_RECIPIENT = reply(501, "5.1.3", "Bad recipient address");
const BAD_PARAMS = reply(501, "5.5.4", "Syntax error in parameters");
const AUTH_SYNTAX = reply(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
const GENSTOKEN_SYNTAX = reply(
  501,
  "5.5.4",
  "Syntax: GENSTOKEN (PERM|TEMP) remote-address [local-address]",
);
const REVSTOKEN_SYNTAX = reply(501, "5.5.4", "Syntax: REVSTOKEN remote-address [local-address]");

// Commands are printable ASCII: a control character (a bare CR or LF included) or an
// 8-bit octet anywhere is refused before anything else is looked at.
const INVALID_CHAR = /[^\x20-\x7e]/;

const ok = (cmd: Command): Parsed => ({ ok: true, cmd });
const fail = (r: Reply): Parsed => ({ ok: false, reply: r });

export function parseCommand(line: string): Parsed {
  if (INVALID_CHAR.test(line)) return fail(BAD_CHARACTER);
  const sp = line.indexOf(" ");
  const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
  const arg = sp < 0 ? "" : line.slice(sp + 1).trim();
  switch (verb) {
    case "HELO":
    case "EHLO":
    case "LHLO":
      if (arg === "") return fail(reply(501, "5.5.4", `Syntax: ${verb} hostname`));
      return ok({ verb, domain: arg });
    case "MAIL":
      return parseMail(arg);
    case "RCPT":
      return parseRcpt(arg);
    case "AUTH":
      return parseAuth(arg);
    case "GENSTOKEN":
      return parseGenstoken(arg);
    case "REVSTOKEN":
      return parseRevstoken(arg);
    case "VRFY":
    case "EXPN":
    case "HELP":
    case "NOOP":
      return ok({ verb, arg });
    case "DATA":
    case "RSET":
    case "QUIT":
    case "STARTTLS":
      // RFC 5321 §4.1.1.4, §4.1.1.5, §4.1.1.10; RFC 3207 §4: no arguments.
      if (arg !== "") return fail(reply(501, "5.5.4", `Syntax: ${verb}`));
      return ok({ verb });
    default:
      return fail(NOT_RECOGNIZED);
  }
}

// "MAIL FROM:" Reverse-path [SP Mail-parameters] (RFC 5321 §4.1.1.2).
function parseMail(arg: string): Parsed {
  const path = splitPath(arg, "FROM:");
  if (path === null) return fail(MAIL_SYNTAX);
  let address = "";
  if (path.inner !== "") {
    const mailbox = parseMailbox(stripSourceRoute(path.inner) ?? "");
    if (mailbox === null) return fail(BAD_SENDER);
    address = formatMailbox(mailbox);
  }
  const params = parseParams(path.rest);
  if (params === null) return fail(BAD_PARAMS);
  return ok({ verb: "MAIL", address, params });
}

// "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path )
// [SP Rcpt-parameters] (RFC 5321 §4.1.1.3).
function parseRcpt(arg: string): Parsed {
  const path = splitPath(arg, "TO:");
  if (path === null) return fail(RCPT_SYNTAX);
  let address: string;
  if (path.inner.toLowerCase() === "postmaster") {
    // RFC 5321 §4.5.1: the bare, case-insensitive "postmaster" must be accepted.
    address = "postmaster";
  } else {
    const mailbox = parseMailbox(stripSourceRoute(path.inner) ?? "");
    if (mailbox === null) return fail(BAD_RECIPIENT);
    address = formatMailbox(mailbox);
  }
  const params = parseParams(path.rest);
  if (params === null) return fail(BAD_PARAMS);
  return ok({ verb: "RCPT", address, params });
}

// Splits `FROM:<path> params` into the text between the angle brackets and the rest.
// One optional space may follow the colon; the brackets are required. The closing ">"
// is the first one outside a quoted local part.
function splitPath(arg: string, prefix: string): { inner: string; rest: string } | null {
  if (arg.slice(0, prefix.length).toUpperCase() !== prefix) return null;
  let i = prefix.length;
  if (arg[i] === " ") i++;
  if (arg[i] !== "<") return null;
  const open = i;
  let quoted = false;
  for (i = open + 1; i < arg.length; i++) {
    const c = arg[i];
    if (quoted && c === "\\") i++;
    else if (c === '"') quoted = !quoted;
    else if (c === ">" && !quoted) break;
  }
  if (i >= arg.length) return null;
  const rest = arg.slice(i + 1);
  if (rest !== "" && !rest.startsWith(" ")) return null;
  return { inner: arg.slice(open + 1, i), rest };
}

// Path = "<" [ A-d-l ":" ] Mailbox ">"; A-d-l = At-domain *( "," At-domain ). The source
// route is obsolete and ignored (RFC 5321 §4.1.1.3, appendix C). Null if malformed.
function stripSourceRoute(inner: string): string | null {
  if (!inner.startsWith("@")) return inner;
  const colon = inner.indexOf(":");
  if (colon < 0) return null;
  for (const hop of inner.slice(0, colon).split(",")) {
    if (!hop.startsWith("@") || !isDomainName(hop.slice(1))) return null;
  }
  return inner.slice(colon + 1);
}

// "AUTH" SP sasl-mech [SP initial-response] (RFC 4954 §4). "=" as the initial response
// means an empty one; that is left to the session.
function parseAuth(arg: string): Parsed {
  const words = splitWords(arg);
  const [mechanism, initial] = words;
  if (mechanism === undefined || words.length > 2) return fail(AUTH_SYNTAX);
  return ok({ verb: "AUTH", mechanism: mechanism.toUpperCase(), initial });
}

// GENSTOKEN ( "PERM" / "TEMP" ) remote-address [local-address] (draft §5.4.1).
function parseGenstoken(arg: string): Parsed {
  const words = splitWords(arg);
  const [kind, remote, local] = words;
  if (kind === undefined || remote === undefined || words.length > 3) {
    return fail(GENSTOKEN_SYNTAX);
  }
  const k = kind.toUpperCase();
  if (k !== "PERM" && k !== "TEMP") return fail(GENSTOKEN_SYNTAX);
  return ok({ verb: "GENSTOKEN", kind: k, remote: unbracket(remote), local: optional(local) });
}

// REVSTOKEN remote-address [local-address] (draft §5.4.2).
function parseRevstoken(arg: string): Parsed {
  const words = splitWords(arg);
  const [remote, local] = words;
  if (remote === undefined || words.length > 2) return fail(REVSTOKEN_SYNTAX);
  return ok({ verb: "REVSTOKEN", remote: unbracket(remote), local: optional(local) });
}

function optional(word: string | undefined): string | undefined {
  return word === undefined ? undefined : unbracket(word);
}

// Addresses may be given bare or as <...> (PROTOCOL.md §4).
function unbracket(word: string): string {
  return word.length >= 2 && word.startsWith("<") && word.endsWith(">") ? word.slice(1, -1) : word;
}

// Space-separated words; a space inside a quoted local part does not split.
function splitWords(s: string): string[] {
  const words: string[] = [];
  let word = "";
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] ?? "";
    if (c === " " && !quoted) {
      if (word !== "") words.push(word);
      word = "";
      continue;
    }
    if (c === '"') quoted = !quoted;
    else if (c === "\\" && quoted && i + 1 < s.length) {
      word += c + s[i + 1];
      i++;
      continue;
    }
    word += c;
  }
  if (word !== "") words.push(word);
  return words;
}
