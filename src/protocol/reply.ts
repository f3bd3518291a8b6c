// One reply type for every SMTP/LMTP answer (RFC 5321 §4.2, enhanced codes RFC 2034/3463).

export interface Reply {
  readonly code: number;
  /** Enhanced status code such as "2.1.5"; absent for greetings and EHLO/LHLO lists. */
  readonly enhanced?: string;
  /** One entry per line; a multi-line reply has several. */
  readonly lines: readonly string[];
}

export function reply(code: number, enhanced: string | undefined, ...lines: string[]): Reply {
  if (lines.length === 0) lines = [""];
  return enhanced === undefined ? { code, lines } : { code, enhanced, lines };
}

/** Wire form: every line carries the code (and the enhanced code), `-` on all but the last. */
export function formatReply(r: Reply): string {
  let out = "";
  const last = r.lines.length - 1;
  for (let i = 0; i <= last; i++) {
    const sep = i === last ? " " : "-";
    const text = r.enhanced === undefined ? r.lines[i] : `${r.enhanced} ${r.lines[i]}`;
    out += `${r.code}${sep}${text}\r\n`;
  }
  return out;
}

/** The first line as a log-friendly string, e.g. "250 2.1.5 OK". */
export function replySummary(r: Reply): string {
  const text = r.lines[0] ?? "";
  return r.enhanced === undefined ? `${r.code} ${text}` : `${r.code} ${r.enhanced} ${text}`;
}
