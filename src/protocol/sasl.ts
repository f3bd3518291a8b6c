// SASL message decoding: strict base64 (RFC 4954 §4 uses RFC 4648 §4), PLAIN (RFC 4616)
// and the submission-token mechanism STOKEN (draft §7.3.1).

// Whole quanta, then at most one padded final quantum; no whitespace, no other alphabet.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decodes canonical base64 only: RFC 4648 §4 alphabet, length a multiple of 4, correct
 * padding and zero pad bits (RFC 4648 §3.5), so each byte string has exactly one
 * encoding. "" decodes to an empty array. Null on anything else.
 */
export function decodeBase64Strict(s: string): Uint8Array | null {
  if (!BASE64.test(s)) return null;
  try {
    // "strict" rejects non-zero pad bits ("QR==" for "QQ==").
    return Uint8Array.fromBase64(s, { lastChunkHandling: "strict" });
  } catch {
    return null;
  }
}

const utf8Encoder = new TextEncoder();

/** Base64 (RFC 4648 §4, padded) of bytes, or of a string's UTF-8 encoding. */
export function encodeBase64(b: Uint8Array | string): string {
  return (typeof b === "string" ? utf8Encoder.encode(b) : b).toBase64();
}

export interface PlainCredentials {
  /** Authorization identity; "" when absent (act as authcid). */
  authzid: string;
  authcid: string;
  password: string;
}

// fatal: invalid UTF-8 is an error, not U+FFFD; ignoreBOM: a leading U+FEFF is data.
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function utf8(b: Uint8Array): string | null {
  try {
    return utf8Strict.decode(b);
  } catch {
    return null;
  }
}

/**
 * message = [authzid] UTF8NUL authcid UTF8NUL passwd (RFC 4616 §2). Exactly two NULs,
 * valid UTF-8, non-empty authcid and passwd; null otherwise.
 */
export function decodePlain(b: Uint8Array): PlainCredentials | null {
  const first = b.indexOf(0);
  if (first < 0) return null;
  const second = b.indexOf(0, first + 1);
  if (second < 0 || b.indexOf(0, second + 1) >= 0) return null;
  const authzid = utf8(b.subarray(0, first));
  const authcid = utf8(b.subarray(first + 1, second));
  const password = utf8(b.subarray(second + 1));
  if (authzid === null || authcid === null || password === null) return null;
  if (authcid === "" || password === "") return null;
  return { authzid, authcid, password };
}

const PRINTABLE = /^[\x20-\x7e]+$/;

/**
 * STOKEN message: recipient NUL token (draft §7.3.1). The draft's own example encodes the
 * two characters backslash and "0" instead of the NUL ("dXNlckBmb28uY29tXDBzNnhXMTVoOURo"
 * is `user@foo.com\0s6xW15h9Dh`), so that separator is accepted too (PROTOCOL.md §3).
 * A token never holds a backslash, so the last "\0" is the separator. Both parts must be
 * non-empty printable ASCII.
 */
export function decodeStoken(b: Uint8Array): { recipient: string; token: string } | null {
  let recipientEnd: number;
  let tokenStart: number;
  const nul = b.indexOf(0);
  if (nul >= 0) {
    if (b.indexOf(0, nul + 1) >= 0) return null;
    recipientEnd = nul;
    tokenStart = nul + 1;
  } else {
    const sep = lastBackslashZero(b);
    if (sep < 0) return null;
    recipientEnd = sep;
    tokenStart = sep + 2;
  }
  const recipient = ascii(b.subarray(0, recipientEnd));
  const token = ascii(b.subarray(tokenStart));
  if (recipient === null || token === null) return null;
  return { recipient, token };
}

function lastBackslashZero(b: Uint8Array): number {
  for (let i = b.length - 2; i >= 0; i--) {
    if (b[i] === 0x5c && b[i + 1] === 0x30) return i;
  }
  return -1;
}

function ascii(b: Uint8Array): string | null {
  let s = "";
  for (const c of b) s += String.fromCharCode(c);
  return PRINTABLE.test(s) ? s : null;
}
