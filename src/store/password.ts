// Password hashing: PBKDF2-HMAC-SHA256 on Web Crypto (the KDF both Deno and Bun ship).
// Stored form: `pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>`. The iteration count
// is read back from the stored string, so raising ITERATIONS later leaves old hashes
// verifiable (OWASP's 2023 recommendation for PBKDF2-SHA256 is 600 000).
import { timingSafeEqual } from "node:crypto";

export const ITERATIONS = 600_000;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
const SCHEME = "pbkdf2-sha256";
/** Refuse absurd counts from a damaged database instead of hanging on them. */
const MAX_ITERATIONS = 10_000_000;

/**
 * Verified in place of a real hash when the user does not exist, so an unknown
 * username costs the same KDF run as a wrong password. The password behind it was
 * random and thrown away. Its iteration count must stay equal to ITERATIONS (tested).
 */
export const DUMMY_HASH =
  "pbkdf2-sha256$600000$ZmNUwDoiMjz8oYwists/PA==$xcvJa3SPNVaPQHcw7NeXKBqeiCvVjq5TZb9bnEZm9aU=";

const encoder = new TextEncoder();

/**
 * NFC keeps a password typed as composed or decomposed characters the same password
 * (the normalization step of RFC 8265 OpaqueString, which SASL PLAIN points to).
 */
function passwordBytes(password: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(password.normalize("NFC"));
}

async function derive(
  password: string,
  salt: Uint8Array<ArrayBuffer>,
  iterations: number,
  bytes: number,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", passwordBytes(password), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    key,
    bytes * 8,
  );
  return new Uint8Array(bits);
}

export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const hash = await derive(password, salt, ITERATIONS, HASH_BYTES);
  return `${SCHEME}$${ITERATIONS}$${salt.toBase64()}$${hash.toBase64()}`;
}

interface Parsed {
  iterations: number;
  salt: Uint8Array<ArrayBuffer>;
  hash: Uint8Array;
}

export function parseHash(stored: string): Parsed | null {
  const parts = stored.split("$");
  if (parts.length !== 4 || parts[0] !== SCHEME) return null;
  const [, it, salt64, hash64] = parts as [string, string, string, string];
  if (!/^[1-9][0-9]{0,7}$/.test(it)) return null;
  const iterations = Number(it);
  if (iterations > MAX_ITERATIONS) return null;
  try {
    const salt = Uint8Array.fromBase64(salt64);
    const hash = Uint8Array.fromBase64(hash64);
    if (salt.length < 8 || hash.length < 16) return null;
    return { iterations, salt, hash };
  } catch {
    return null;
  }
}

/** True when `password` matches `stored`; false for a wrong password or a malformed hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const p = parseHash(stored);
  if (!p) return false;
  const candidate = await derive(password, p.salt, p.iterations, p.hash.length);
  return timingSafeEqual(candidate, p.hash);
}
