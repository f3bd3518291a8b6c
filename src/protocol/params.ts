// MAIL/RCPT parameters: esmtp-param = esmtp-keyword ["=" esmtp-value] (RFC 5321 §4.1.2).

export interface Param {
  /** Upper-cased keyword. */
  keyword: string;
  /** The value as sent, or undefined for a bare keyword. */
  value: string | undefined;
}

// esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
const KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
// esmtp-value = 1*(%d33-60 / %d62-126): printable, no space, no "="
const VALUE = /^[\x21-\x3c\x3e-\x7e]+$/;

/**
 * Parses space-separated parameters ("" gives none). Null on any syntax error: a control
 * character, an empty value after "=", a bad keyword or value, or a keyword given twice.
 */
export function parseParams(s: string): Param[] | null {
  const params: Param[] = [];
  if (/^ *$/.test(s)) return params;
  const seen = new Set<string>();
  for (const word of s.split(" ")) {
    // Runs of spaces and leading or trailing spaces are tolerated, as Postfix does.
    if (word === "") continue;
    const eq = word.indexOf("=");
    const keyword = (eq < 0 ? word : word.slice(0, eq)).toUpperCase();
    const value = eq < 0 ? undefined : word.slice(eq + 1);
    if (!KEYWORD.test(keyword)) return null;
    if (value !== undefined && !VALUE.test(value)) return null;
    if (seen.has(keyword)) return null;
    seen.add(keyword);
    params.push({ keyword, value });
  }
  return params;
}

// xtext = *( xchar / hexchar ); xchar = "!".."~" except "+" and "=";
// hexchar = "+" 2(upper-case hex digit) (RFC 3461 §4).
const XTEXT = /^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/;

/** Decodes RFC 3461 xtext (as in ORCPT= or AUTH=); null if malformed. */
export function decodeXtext(s: string): string | null {
  if (!XTEXT.test(s)) return null;
  return s.replace(/\+([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}
