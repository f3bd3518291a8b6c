// The key file: the secrets that must never be in the database (DESIGN.md "Storage"),
// shared by every instance. Token keys carry ids so a rotation keeps tokens already
// issued under older keys valid; `held_token_key` encrypts tokens held for other servers.
//
// { "version": 1,
//   "token_keys": [{ "id": "k<8 lowercase hex>", "secret": "<base64url, 32 bytes>", "created": "<ISO 8601>" }],
//   "current": "k…",
//   "held_token_key": "<base64url, 32 bytes>" }
import { mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import process from "node:process";

export interface TokenKey {
  id: string;
  secret: string;
  created: string;
}

export interface KeyFile {
  version: 1;
  token_keys: TokenKey[];
  current: string;
  held_token_key: string;
}

export class KeyFileError extends Error {
  override name = "KeyFileError";
}

const SECRET_BYTES = 32;
const ID_RE = /^k[0-9a-f]{8}$/;

function b64url(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

function newSecret(): string {
  return b64url(crypto.getRandomValues(new Uint8Array(SECRET_BYTES)));
}

function newId(taken: readonly string[]): string {
  for (;;) {
    const bytes = crypto.getRandomValues(new Uint8Array(4));
    const id = "k" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    if (!taken.includes(id)) return id;
  }
}

/** The 32 secret bytes of a base64url (no padding) secret from a validated key file. */
export function secretBytes(secret: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.fromBase64(secret, { alphabet: "base64url" });
}

/** True for the canonical unpadded base64url form of exactly 32 bytes. */
function isSecret(v: unknown): v is string {
  if (typeof v !== "string" || !/^[A-Za-z0-9_-]{43}$/.test(v)) return false;
  // Re-encoding catches non-zero trailing bits: one secret has one spelling.
  return b64url(secretBytes(v)) === v;
}

export function newKeyFile(now: Date = new Date()): KeyFile {
  const id = newId([]);
  return {
    version: 1,
    token_keys: [{ id, secret: newSecret(), created: now.toISOString() }],
    current: id,
    held_token_key: newSecret(),
  };
}

/** A copy of `kf` with a new current token key; older keys stay so their tokens verify. */
export function rotateKeys(kf: KeyFile, now: Date = new Date()): KeyFile {
  const id = newId(kf.token_keys.map((k) => k.id));
  return {
    ...kf,
    token_keys: [...kf.token_keys.map((k) => ({ ...k })), {
      id,
      secret: newSecret(),
      created: now.toISOString(),
    }],
    current: id,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function onlyKeys(o: Record<string, unknown>, keys: readonly string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) throw new Error(`unknown key "${k}" in ${where}`);
  }
}

/** Strict validation; messages name fields, never their (secret) values. */
export function validateKeyFile(v: unknown): KeyFile {
  if (!isObject(v)) throw new Error("not a JSON object");
  onlyKeys(v, ["version", "token_keys", "current", "held_token_key"], "the file");
  if (v.version !== 1) throw new Error(`unsupported version ${JSON.stringify(v.version)}`);
  const keys = v.token_keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new Error(`"token_keys" must be a non-empty list`);
  }
  const tokenKeys: TokenKey[] = [];
  keys.forEach((k: unknown, i) => {
    const where = `token_keys[${i}]`;
    if (!isObject(k)) throw new Error(`${where} must be an object`);
    onlyKeys(k, ["id", "secret", "created"], where);
    if (typeof k.id !== "string" || !ID_RE.test(k.id)) {
      throw new Error(`${where}.id must be "k" and 8 lowercase hex digits`);
    }
    if (tokenKeys.some((t) => t.id === k.id)) throw new Error(`duplicate key id "${k.id}"`);
    if (!isSecret(k.secret)) {
      throw new Error(`${where}.secret must be 32 bytes in base64url without padding`);
    }
    if (typeof k.created !== "string" || Number.isNaN(Date.parse(k.created))) {
      throw new Error(`${where}.created must be an ISO 8601 date`);
    }
    tokenKeys.push({ id: k.id, secret: k.secret, created: k.created });
  });
  if (typeof v.current !== "string" || !tokenKeys.some((k) => k.id === v.current)) {
    throw new Error(`"current" must be the id of one of the token_keys`);
  }
  if (!isSecret(v.held_token_key)) {
    throw new Error(`"held_token_key" must be 32 bytes in base64url without padding`);
  }
  return {
    version: 1,
    token_keys: tokenKeys,
    current: v.current,
    held_token_key: v.held_token_key,
  };
}

export async function readKeyFile(path: string): Promise<KeyFile> {
  let text: string;
  try {
    const st = await stat(path);
    // Windows has no POSIX modes to check.
    if (process.platform !== "win32" && (st.mode & 0o077) !== 0) {
      throw new KeyFileError(
        `Key file "${path}" is readable by group or others (mode ${
          (st.mode & 0o777).toString(8).padStart(4, "0")
        }): run chmod 600 "${path}"`,
      );
    }
    text = await readFile(path, "utf8");
  } catch (e) {
    if (e instanceof KeyFileError) throw e;
    throw new KeyFileError(`Cannot read key file "${path}": ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // The parser's message may quote the file's text, which is secret.
    throw new KeyFileError(`Key file "${path}" is not valid JSON`);
  }
  try {
    return validateKeyFile(json);
  } catch (e) {
    throw new KeyFileError(`Key file "${path}" is invalid: ${(e as Error).message}`);
  }
}

/**
 * Replace the key file atomically: a reader (another instance) sees the old file or
 * the new one, never a mix, and after a crash the file is one or the other.
 */
export async function writeKeyFile(path: string, kf: KeyFile): Promise<void> {
  let valid: KeyFile;
  try {
    valid = validateKeyFile(kf);
  } catch (e) {
    throw new KeyFileError(
      `Refusing to write an invalid key file "${path}": ${(e as Error).message}`,
    );
  }
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const rand = Array.from(
    crypto.getRandomValues(new Uint8Array(6)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const tmp = `${dir}/.${basename(path)}.${rand}.tmp`;
  try {
    // Created 0600 from the first byte (O_EXCL: never reuse someone else's file).
    const fh = await open(tmp, "wx", 0o600);
    try {
      await fh.writeFile(JSON.stringify(valid, null, 2) + "\n", "utf8");
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new KeyFileError(`Cannot write key file "${path}": ${(e as Error).message}`);
  }
  // The rename is durable once the directory entry is.
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
