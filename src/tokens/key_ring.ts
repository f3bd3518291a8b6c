// The token keys of the key file, decoded once, and the two MACs a token carries.
//
// Every key of the key file verifies; new tokens use `current`, so `stoken keys rotate`
// never breaks a token already issued (PROTOCOL §5: key ids allow rotation).
import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from "node:crypto";
import type { KeyFile } from "../store/key_file.ts";
import { isKeyId, MAC_LOCAL_BYTES, MAC_PAIR_BYTES } from "./token_codec.ts";

const enc = new TextEncoder();
// Domain separation: a MAC of one kind can never pass for the other.
const LOCAL_LABEL = enc.encode("stoken-local-v1");
const PAIR_LABEL = enc.encode("stoken-pair-v1");

/** Addresses match case-insensitively (PROTOCOL §4), so tokens bind the lower-cased form. */
export function normalizeAddress(address: string): string {
  return address.toLowerCase();
}

/**
 * u32 length prefix + UTF-8: with every variable field prefixed, the MAC input of
 * (remote, local) determines both addresses, so two pairs can never share a MAC input.
 */
function lengthPrefixed(s: string): Uint8Array {
  const b = enc.encode(s);
  const out = new Uint8Array(4 + b.length);
  new DataView(out.buffer).setUint32(0, b.length);
  out.set(b, 4);
  return out;
}

export class KeyRing {
  readonly currentId: string;
  readonly #keys: ReadonlyMap<string, KeyObject>;

  constructor(keyFile: KeyFile) {
    const keys = new Map<string, KeyObject>();
    for (const k of keyFile.token_keys) {
      if (!isKeyId(k.id)) throw new Error(`Token key id must be k and 8 hex digits: "${k.id}"`);
      let secret: Uint8Array;
      try {
        secret = Uint8Array.fromBase64(k.secret, { alphabet: "base64url" });
      } catch {
        throw new Error(`Token key "${k.id}" is not valid base64url`);
      }
      if (secret.length !== 32) throw new Error(`Token key "${k.id}" must be 32 bytes`);
      if (keys.has(k.id)) throw new Error(`Token key id appears twice: "${k.id}"`);
      keys.set(k.id, createSecretKey(secret));
    }
    if (!keys.has(keyFile.current)) {
      throw new Error(`Current token key is not in the key file: "${keyFile.current}"`);
    }
    this.currentId = keyFile.current;
    this.#keys = keys;
  }

  has(keyId: string): boolean {
    return this.#keys.has(keyId);
  }

  /** mac_local: checkable at AUTH STOKEN, when only the local address is known (draft §7.3.1). */
  macLocal(keyId: string, header: Uint8Array, local: string): Uint8Array | null {
    const key = this.#keys.get(keyId);
    if (!key) return null;
    const h = createHmac("sha256", key);
    h.update(LOCAL_LABEL).update(header).update(lengthPrefixed(local));
    return new Uint8Array(h.digest().subarray(0, MAC_LOCAL_BYTES));
  }

  /** mac_pair: binds the token to (remote, local) (draft §5.1: tied to a pair). */
  macPair(keyId: string, header: Uint8Array, remote: string, local: string): Uint8Array | null {
    const key = this.#keys.get(keyId);
    if (!key) return null;
    const h = createHmac("sha256", key);
    h.update(PAIR_LABEL).update(header).update(lengthPrefixed(remote)).update(
      lengthPrefixed(local),
    );
    return new Uint8Array(h.digest().subarray(0, MAC_PAIR_BYTES));
  }
}

/** Constant-time equality of two byte strings (length is not secret). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
