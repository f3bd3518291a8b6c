// Trace information: the Received header of RFC 5321 §4.4 with the protocol names of
// RFC 3848, and the RFC 5322 §3.3 date it ends with.

import { isIPv4, isIPv6 } from "./address.ts";

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"] as const;
const MONTHS = [
  "Jan",
  "Feb",
  "Mar",
  "Apr",
  "May",
  "Jun",
  "Jul",
  "Aug",
  "Sep",
  "Oct",
  "Nov",
  "Dec",
] as const;

const pad2 = (n: number) => String(n).padStart(2, "0");

/** RFC 5322 §3.3 date-time in UTC, e.g. "Sat, 28 Nov 2026 13:45:01 +0000". */
export function rfc5322Date(d: Date): string {
  if (Number.isNaN(d.getTime())) throw new RangeError(`Invalid date "${String(d)}"`);
  const day = DAYS[d.getUTCDay()];
  const month = MONTHS[d.getUTCMonth()];
  const year = String(d.getUTCFullYear()).padStart(4, "0");
  const time = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
  return `${day}, ${pad2(d.getUTCDate())} ${month} ${year} ${time} +0000`;
}

export interface TraceInfo {
  /** The HELO/EHLO/LHLO argument as the client sent it. */
  helo: string;
  /** The client's IP address (IPv4 dotted quad or IPv6 text), with or without brackets. */
  ip: string;
  /** This server's host name. */
  host: string;
  /** RFC 3848 "with" keyword: S = TLS, A = authenticated. */
  protocol: "ESMTP" | "ESMTPS" | "ESMTPSA" | "LMTP" | "LMTPS" | "LMTPSA";
  id: string;
  /** The one recipient this copy is for, or undefined when there are several. */
  rcpt: string | undefined;
  date: Date;
}

const MAX_HELO = 255;

/**
 * The Received header, folded, ending with CRLF:
 *
 *     Received: from <helo> ([<ip>])
 *     \tby <host> with <protocol> id <id>
 *     \tfor <<rcpt>>; <date>
 *
 * Without a recipient the last line is "\t<date>" and the ";" ends the line before it.
 * The client's address is written as an address literal (TCP-info, RFC 5321 §4.4).
 */
export function receivedHeader(t: TraceInfo): string {
  const from = `Received: from ${sanitizeHelo(t.helo)} (${addressLiteral(t.ip)})\r\n`;
  const by = `\tby ${t.host} with ${t.protocol} id ${t.id}`;
  const date = rfc5322Date(t.date);
  if (t.rcpt === undefined) return `${from}${by};\r\n\t${date}\r\n`;
  return `${from}${by}\r\n\tfor <${t.rcpt}>; ${date}\r\n`;
}

// The HELO name is client-controlled: keep only characters that cannot break the header
// or its clause structure (no space, parentheses, ";", quotes, control or 8-bit octets).
function sanitizeHelo(helo: string): string {
  const clean = helo.slice(0, MAX_HELO).replace(/[^\x21-\x7e]|[();"\\]/g, "_");
  return clean === "" ? "unknown" : clean;
}

// An IP address becomes an address literal; anything else (a unix socket has no
// address) is written sanitized, like a HELO name.
function addressLiteral(ip: string): string {
  const bare = ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip;
  if (isIPv4(bare)) return `[${bare}]`;
  if (isIPv6(bare)) return `[IPv6:${bare}]`;
  if (/^IPv6:/i.test(bare) && isIPv6(bare.slice(5))) return `[IPv6:${bare.slice(5)}]`;
  return sanitizeHelo(ip);
}
