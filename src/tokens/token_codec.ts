// The binary layout of a stoken token and its text form (PROTOCOL §5).
//
// Both kinds share one 45-byte layout; 45 is a multiple of 3, so the base64url text has
// exactly 60 characters, no padding and no spare bits (a strict decoder can then insist
// that re-encoding gives back the very same string: one token, one spelling).
//
//   offset size
//        0    1  type: 'T' temporary / 'P' permanent, layout version 1
//        1    4  key id (the 8 hex digits of "k<8 hex>" in the key file)
//        5    4  expiry, Unix seconds, u32 big-endian
//        9    4  pair generation, u32 big-endian (revocation bumps it)
//       13    6  nonce, random
//       19   10  mac_local: HMAC-SHA256 over the header and the local address, truncated
//       29   16  mac_pair:  HMAC-SHA256 over the header and both addresses, truncated
//       45
import type { TokenKind } from "./token_kind.ts";

export const TOKEN_BYTES = 45;
export const TOKEN_CHARS = 60;
export const HEADER_BYTES = 19;
export const NONCE_BYTES = 6;
export const MAC_LOCAL_BYTES = 10;
export const MAC_PAIR_BYTES = 16;
export const U32_MAX = 0xffff_ffff;

/** Type bytes of layout version 1. A later layout gets new type bytes. */
const TYPE_BYTE: Record<TokenKind, number> = { temp: 0x54, perm: 0x50 };

export interface TokenFields {
  readonly kind: TokenKind;
  /** "k" + 8 lower-case hex digits, as in the key file. */
  readonly keyId: string;
  readonly expiresS: number;
  readonly generation: number;
  readonly nonce: Uint8Array;
}

export interface DecodedToken {
  readonly fields: TokenFields;
  /** The first HEADER_BYTES bytes, exactly as received: what the MACs cover. */
  readonly header: Uint8Array;
  readonly macLocal: Uint8Array;
  readonly macPair: Uint8Array;
}

/** PROTOCOL §5: any token string, ours or another server's, is 20–64 of [A-Za-z0-9_-]. */
const TOKEN_SYNTAX = /^[A-Za-z0-9_-]{20,64}$/;
const OUR_TOKEN = /^[A-Za-z0-9_-]{60}$/;
const KEY_ID = /^k[0-9a-f]{8}$/;

export function isTokenString(s: string): boolean {
  return TOKEN_SYNTAX.test(s);
}

export function isKeyId(id: string): boolean {
  return KEY_ID.test(id);
}

function u32(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > U32_MAX) {
    throw new RangeError(`Token ${what} out of range: "${n}"`);
  }
  return n;
}

export function encodeHeader(f: TokenFields): Uint8Array {
  if (!isKeyId(f.keyId)) throw new RangeError(`Key id must be k and 8 hex digits: "${f.keyId}"`);
  if (f.nonce.length !== NONCE_BYTES) throw new RangeError(`Nonce must be ${NONCE_BYTES} bytes`);
  const h = new Uint8Array(HEADER_BYTES);
  const v = new DataView(h.buffer);
  h[0] = TYPE_BYTE[f.kind];
  v.setUint32(1, parseInt(f.keyId.slice(1), 16));
  v.setUint32(5, u32(f.expiresS, "expiry"));
  v.setUint32(9, u32(f.generation, "generation"));
  h.set(f.nonce, 13);
  return h;
}

export function encodeToken(header: Uint8Array, macLocal: Uint8Array, macPair: Uint8Array): string {
  const b = new Uint8Array(TOKEN_BYTES);
  b.set(header, 0);
  b.set(macLocal.subarray(0, MAC_LOCAL_BYTES), HEADER_BYTES);
  b.set(macPair.subarray(0, MAC_PAIR_BYTES), HEADER_BYTES + MAC_LOCAL_BYTES);
  return b.toBase64({ alphabet: "base64url", omitPadding: true });
}

/** Strict decode: exact length, alphabet, canonical spelling, known type byte; else null. */
export function decodeToken(s: string): DecodedToken | null {
  if (!OUR_TOKEN.test(s)) return null;
  let b: Uint8Array;
  try {
    b = Uint8Array.fromBase64(s, { alphabet: "base64url", lastChunkHandling: "strict" });
  } catch {
    return null;
  }
  if (b.length !== TOKEN_BYTES) return null;
  if (b.toBase64({ alphabet: "base64url", omitPadding: true }) !== s) return null;
  const kind = b[0] === TYPE_BYTE.temp ? "temp" : b[0] === TYPE_BYTE.perm ? "perm" : null;
  if (kind === null) return null;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const header = b.subarray(0, HEADER_BYTES);
  return {
    fields: {
      kind,
      keyId: "k" + v.getUint32(1).toString(16).padStart(8, "0"),
      expiresS: v.getUint32(5),
      generation: v.getUint32(9),
      nonce: b.slice(13, 13 + NONCE_BYTES),
    },
    header,
    macLocal: b.subarray(HEADER_BYTES, HEADER_BYTES + MAC_LOCAL_BYTES),
    macPair: b.subarray(HEADER_BYTES + MAC_LOCAL_BYTES, TOKEN_BYTES),
  };
}
