// Mailbox syntax of RFC 5321 §4.1.2 (Mailbox, Local-part, Domain) and address literals
// of §4.1.3, with the size limits of §4.5.3.1. ASCII only: SMTPUTF8 is not offered.

export interface Mailbox {
  /** The local part's value: unquoted, quoted-pairs resolved. */
  local: string;
  /** Lower-cased domain, or a canonical address literal such as "[192.0.2.1]". */
  domain: string;
}

const MAX_LOCAL = 64; // RFC 5321 §4.5.3.1.1
const MAX_DOMAIN = 255; // RFC 5321 §4.5.3.1.2
const MAX_MAILBOX = 254; // RFC 5321 §4.5.3.1.3: a path is 256 octets with its "<" and ">"
const MAX_LABEL = 63; // RFC 1035 §2.3.4

// Atom = 1*atext (RFC 5321 §4.1.2, atext from RFC 5322 §3.2.3).
const DOT_STRING = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;
// Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]
const DOMAIN =
  /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const PRINTABLE = /^[\x20-\x7e]*$/;
const SNUM = /^[0-9]{1,3}$/;
const HEX16 = /^[0-9A-Fa-f]{1,4}$/;

/** Parses `local@domain`; null unless it is a valid RFC 5321 Mailbox. */
export function parseMailbox(s: string): Mailbox | null {
  if (s.length > MAX_MAILBOX || !PRINTABLE.test(s)) return null;
  let local: string;
  let at: number;
  if (s.startsWith('"')) {
    const q = parseQuoted(s);
    if (q === null) return null;
    local = q.value;
    at = q.end;
  } else {
    at = s.indexOf("@");
    if (at < 0) return null;
    local = s.slice(0, at);
    if (!DOT_STRING.test(local)) return null;
  }
  if (s[at] !== "@" || at > MAX_LOCAL) return null;
  // An empty quoted local part ("") is grammatical but names nobody; refuse it.
  if (local.length === 0) return null;
  const domain = canonicalDomain(s.slice(at + 1));
  if (domain === null) return null;
  return { local, domain };
}

/** Canonical text form: the local part is quoted only when it is not a Dot-string. */
export function formatMailbox(m: Mailbox): string {
  return `${formatLocal(m.local)}@${m.domain}`;
}

/** Canonical form with the local part lower-cased, for lookups; null if invalid. */
export function normalizeAddress(s: string): string | null {
  const m = parseMailbox(s);
  if (m === null) return null;
  return formatMailbox({ local: m.local.toLowerCase(), domain: m.domain });
}

/** True when s is a syntactically valid Domain (not an address literal). */
export function isDomainName(s: string): boolean {
  if (s.length === 0 || s.length > MAX_DOMAIN || !DOMAIN.test(s)) return false;
  return s.length <= MAX_LABEL || s.split(".").every((label) => label.length <= MAX_LABEL);
}

/** The local part as it must be written: a Dot-string, or a Quoted-string. */
export function formatLocal(local: string): string {
  if (DOT_STRING.test(local)) return local;
  return `"${local.replace(/["\\]/g, "\\$&")}"`;
}

// Quoted-string = DQUOTE *QcontentSMTP DQUOTE; qtextSMTP = %d32-33 / %d35-91 / %d93-126;
// quoted-pairSMTP = %d92 %d32-126. Input is already known to be printable ASCII.
function parseQuoted(s: string): { value: string; end: number } | null {
  let value = "";
  for (let i = 1; i < s.length; i++) {
    const c = s[i];
    if (c === '"') return { value, end: i + 1 };
    if (c === "\\") {
      i++;
      const next = s[i];
      if (next === undefined) return null;
      value += next;
    } else {
      value += c;
    }
  }
  return null;
}

// Domain or address-literal (RFC 5321 §4.1.2, §4.1.3), lower-cased; null if invalid.
function canonicalDomain(d: string): string | null {
  if (d.startsWith("[")) {
    if (!d.endsWith("]")) return null;
    const lit = addressLiteral(d.slice(1, -1));
    return lit === null ? null : `[${lit}]`;
  }
  return isDomainName(d) ? d.toLowerCase() : null;
}

// The inside of an address literal. General-address-literal tags must be registered with
// IANA (§4.1.3) and IPv6 is the only one, so any other tag is refused.
function addressLiteral(s: string): string | null {
  if (isIPv4(s)) return s;
  if (s.length > 5 && s.slice(0, 5).toLowerCase() === "ipv6:") {
    const addr = s.slice(5);
    return isIPv6(addr) ? `IPv6:${addr.toLowerCase()}` : null;
  }
  return null;
}

/** IPv4-address-literal = Snum 3("." Snum), each Snum 0-255. */
export function isIPv4(s: string): boolean {
  const parts = s.split(".");
  if (parts.length !== 4) return false;
  return parts.every((p) => SNUM.test(p) && Number(p) <= 255);
}

/**
 * IPv6-addr of RFC 5321 §4.1.3: IPv6-full, IPv6-comp, IPv6v4-full, IPv6v4-comp.
 * "::" stands for at least two groups of zeros there, so at most 6 groups (4 with an
 * IPv4 tail) may stand beside it.
 */
export function isIPv6(s: string): boolean {
  let groups = 8;
  let body = s;
  const lastColon = s.lastIndexOf(":");
  if (lastColon >= 0 && s.indexOf(".", lastColon) >= 0) {
    if (!isIPv4(s.slice(lastColon + 1))) return false;
    groups = 6;
    // Keep the ":" before the IPv4 part only when it belongs to a "::".
    body = s.slice(0, lastColon);
    if (body.endsWith(":")) body += ":";
    else if (body.length === 0) return false;
  }
  const halves = body.split("::");
  if (halves.length > 2) return false;
  const hexes = (h: string) => (h === "" ? [] : h.split(":"));
  if (halves.length === 1) {
    const all = hexes(body);
    return all.length === groups && all.every((g) => HEX16.test(g));
  }
  const left = hexes(halves[0] ?? "");
  const right = hexes(halves[1] ?? "");
  const n = left.length + right.length;
  return n <= groups - 2 && [...left, ...right].every((g) => HEX16.test(g));
}
