// A self-signed certificate for development setups (`stoken init`), made with Web
// Crypto (ECDSA P-256, SHA-256) and a small DER encoder: no openssl needed at init.
// Structure per RFC 5280 §4.1; ECDSA signature encoding per RFC 5758 §3.2.

/** PEM certificate and PEM PKCS#8 private key. */
export interface SelfSigned {
  readonly certPem: string;
  readonly keyPem: string;
}

// --- DER (X.690) -------------------------------------------------------------------

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = concat(content);
  const n = body.length;
  let len: number[];
  if (n < 0x80) len = [n];
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = [0x80 | bytes.length, ...bytes];
  }
  return concat([Uint8Array.of(tag, ...len), body]);
}

const seq = (...c: Uint8Array[]) => tlv(0x30, ...c);
const set = (...c: Uint8Array[]) => tlv(0x31, ...c);
const explicit = (n: number, ...c: Uint8Array[]) => tlv(0xa0 | n, ...c);
const octets = (b: Uint8Array) => tlv(0x04, b);
const bits = (b: Uint8Array, unused = 0) => tlv(0x03, Uint8Array.of(unused), b);
const bool = (v: boolean) => tlv(0x01, Uint8Array.of(v ? 0xff : 0));
const utf8 = (s: string) => tlv(0x0c, new TextEncoder().encode(s));

/** A non-negative INTEGER from big-endian bytes: minimal, with a 0 byte if the top bit is set. */
function uint(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return tlv(0x02, (v[0]! & 0x80) ? concat([Uint8Array.of(0), v]) : v);
}

function oid(dotted: string): Uint8Array {
  const [a, b, ...rest] = dotted.split(".").map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const n of rest) {
    const groups = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) {
      groups.unshift(0x80 | (v & 0x7f));
    }
    out.push(...groups);
  }
  return tlv(0x06, Uint8Array.from(out));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
function time(d: Date): Uint8Array {
  const p = (n: number) => String(n).padStart(2, "0");
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${
    p(d.getUTCMinutes())
  }${p(d.getUTCSeconds())}Z`;
  const y = d.getUTCFullYear();
  const enc = new TextEncoder();
  return y < 2050
    ? tlv(0x17, enc.encode(`${p(y % 100)}${rest}`))
    : tlv(0x18, enc.encode(`${String(y).padStart(4, "0")}${rest}`));
}

// --- Certificate --------------------------------------------------------------------

const OID = {
  ecdsaWithSHA256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
} as const;

function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

function ipv4(s: string): Uint8Array | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const b = m.slice(1).map(Number);
  return b.every((n) => n <= 255) ? Uint8Array.from(b) : null;
}

/** subjectAltName GeneralNames: dNSName [2] and iPAddress [7] (RFC 5280 §4.2.1.6). */
function altNames(hostname: string): Uint8Array {
  const names: Uint8Array[] = [];
  const seen = new Set<string>();
  const add = (tag: number, key: string, value: Uint8Array) => {
    if (seen.has(key)) return;
    seen.add(key);
    names.push(tlv(tag, value));
  };
  const enc = new TextEncoder();
  for (const name of [hostname, "localhost", "127.0.0.1"]) {
    const ip = ipv4(name);
    if (ip) add(0x87, `ip:${name}`, ip);
    else add(0x82, `dns:${name.toLowerCase()}`, enc.encode(name.toLowerCase()));
  }
  return seq(...names);
}

/** WebCrypto's ECDSA signature is r || s; X.509 wants SEQUENCE { INTEGER r, INTEGER s }. */
function derSignature(raw: Uint8Array): Uint8Array {
  const half = raw.length / 2;
  return seq(uint(raw.subarray(0, half)), uint(raw.subarray(half)));
}

function pem(label: string, der: Uint8Array): string {
  const b64 = der.toBase64();
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/**
 * A certificate for `hostname` (CN and DNS name, plus DNS:localhost and IP:127.0.0.1),
 * valid from five minutes before `now` (clock skew) for one year, for TLS servers only.
 */
export async function selfSignedCertificate(
  hostname: string,
  now: Date = new Date(),
): Promise<SelfSigned> {
  const alg = { name: "ECDSA", namedCurve: "P-256" } as const;
  const keys = await crypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  const point = new Uint8Array(await crypto.subtle.exportKey("raw", keys.publicKey));
  const keyId = new Uint8Array(await crypto.subtle.digest("SHA-1", point));

  // RFC 5280 §4.1.2.2: positive, at most 20 octets; 16 random bytes with the top bit clear.
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0] = (serial[0]! & 0x7f) | 0x01;

  const name = seq(set(seq(oid(OID.commonName), utf8(hostname))));
  const notBefore = new Date(now.getTime() - 5 * 60 * 1000);
  const notAfter = new Date(now.getTime() + 365 * 24 * 3600 * 1000);
  const sigAlg = seq(oid(OID.ecdsaWithSHA256));
  const extensions = seq(
    extension(OID.basicConstraints, true, seq()), // cA defaults to FALSE
    extension(OID.keyUsage, true, bits(Uint8Array.of(0x80), 7)), // digitalSignature: bit 0 only
    extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))),
    extension(OID.subjectAltName, false, altNames(hostname)),
    extension(OID.subjectKeyIdentifier, false, octets(keyId)),
  );
  const tbs = seq(
    explicit(0, uint(Uint8Array.of(2))), // v3
    uint(serial),
    sigAlg,
    name, // issuer = subject: self-signed
    seq(time(notBefore), time(notAfter)),
    name,
    spki,
    explicit(3, extensions),
  );
  const sig = new Uint8Array(
    await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      keys.privateKey,
      tbs as Uint8Array<ArrayBuffer>,
    ),
  );
  const cert = seq(tbs, sigAlg, bits(derSignature(sig)));
  return { certPem: pem("CERTIFICATE", cert), keyPem: pem("PRIVATE KEY", pkcs8) };
}
