// Maildir delivery (https://cr.yp.to/proto/maildir.html) in the layout Dovecot reads
// with `mail_location = maildir:<mail_root>/%d/%n/Maildir`:
//   <mail_root>/<domain>/<local>/Maildir/{tmp,new,cur}
// Write tmp/<unique>, fsync it, rename it to new/<unique>,S=<size>, fsync new/: only
// then is the message on stable storage and may the session answer 250. Concurrent
// deliveries into one Maildir share the fsync of new/ (group_sync.ts).
// Async fs calls only: a synchronous call here would stall every session in the process.
// (Deno 2.9.6 and Bun 1.4 both run the open(2) that creates the file on an I/O thread, not
// the JS thread; moving this file work into worker threads was measured: it only added CPU.)
import type { FileHandle } from "node:fs/promises";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import process from "node:process";
import type { DeliveryResult, LocalUser, Mailboxes, SpooledMessage } from "../session/deps.ts";
import { GroupSync } from "./group_sync.ts";

export interface MaildirOptions {
  /** fsync the message and new/ before reporting success (config delivery.fsync). */
  readonly fsync: boolean;
  /** Host name in unique file names. */
  readonly hostname: string;
  /** fsync of a directory (default: open it read-only, fsync, close); tests count calls. */
  readonly syncDir?: (dir: string) => Promise<void>;
}

/** Messages up to this size are assembled in memory and written with one write(). */
const ONE_WRITE_BYTES = 256 * 1024;
/** Larger messages are written in pieces of at least this size. */
const WRITE_BYTES = 64 * 1024;

const encoder = new TextEncoder();

/**
 * The directory name for a local part. Most local parts (dot-atoms) are kept as they
 * are, so the layout matches Dovecot's %n. A quoted local part (RFC 5321 §4.1.2) may
 * hold "/", "\", NUL, spaces, or be "." or "..": those must never name a path outside
 * the domain directory. So every ASCII character other than letters, digits and
 * ! # $ & ' * + - = ? ^ _ ` { | } ~ . is written as %XX (its hex code), "%" included so
 * the mapping stays one-to-one, and a leading "." becomes %2E (no ".", "..", or hidden
 * directory). Non-ASCII characters (SMTPUTF8) are safe in file names and kept.
 */
export function mailboxDirName(local: string): string {
  let out = "";
  for (const ch of local) {
    const code = ch.codePointAt(0)!;
    if (code >= 0x80 || /[A-Za-z0-9!#$&'*+\-=?^_`{|}~.]/.test(ch)) out += ch;
    else out += "%" + code.toString(16).toUpperCase().padStart(2, "0");
  }
  if (out.startsWith(".")) out = "%2E" + out.slice(1);
  return out;
}

/** Domains are already validated as host names; refuse anything else rather than guess. */
function domainDirName(domain: string): string {
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(domain)) {
    throw new Error(`Domain is not usable as a directory name: "${domain}"`);
  }
  return domain;
}

/** Maildir spec: "/" and ":" in the host name are written as \057 and \072. */
function escapeHostname(h: string): string {
  return h.replaceAll("/", "\\057").replaceAll(":", "\\072");
}

function randomHex(bytes: number): string {
  return crypto.getRandomValues(new Uint8Array(bytes)).toHex();
}

function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** A full disk or quota is reported as "quota" (552 5.2.2); anything else is temporary. */
export function failureKind(e: unknown): "quota" | "temporary" {
  const code = errorCode(e);
  return code === "ENOSPC" || code === "EDQUOT" ? "quota" : "temporary";
}

export class Maildirs implements Mailboxes {
  readonly #host: string;
  #counter = 0;
  /** Maildirs known to exist, so a delivery costs no mkdir calls. */
  readonly #made = new Set<string>();
  readonly #syncDir: (dir: string) => Promise<void>;
  /** fsyncs of new/ directories, shared by concurrent deliveries. */
  readonly #newSync: GroupSync;

  constructor(private readonly mailRoot: string, private readonly opts: MaildirOptions) {
    this.#host = escapeHostname(opts.hostname);
    this.#syncDir = opts.syncDir ?? syncDir;
    this.#newSync = new GroupSync(this.#syncDir);
  }

  /** `<mail_root>/<domain>/<local>/Maildir` for a user's primary address. */
  maildirOf(address: string): string {
    const at = address.lastIndexOf("@");
    if (at <= 0 || at === address.length - 1) {
      throw new Error(`Not a mailbox address: "${address}"`);
    }
    const local = mailboxDirName(address.slice(0, at));
    return join(this.mailRoot, domainDirName(address.slice(at + 1)), local, "Maildir");
  }

  /** `<secs>.M<usecs>P<pid>R<random>Q<counter>.<host>`: unique per the Maildir spec. */
  uniqueName(now: number = performance.timeOrigin + performance.now()): string {
    const secs = Math.floor(now / 1000);
    const usecs = Math.floor((now - secs * 1000) * 1000);
    return `${secs}.M${usecs}P${process.pid}R${randomHex(8)}Q${++this.#counter}.${this.#host}`;
  }

  async deliver(user: LocalUser, prefix: string, msg: SpooledMessage): Promise<DeliveryResult> {
    let tmp: string | null = null;
    let final: string | null = null;
    try {
      const maildir = this.maildirOf(user.address);
      const unique = this.uniqueName();
      tmp = join(maildir, "tmp", unique);
      const fh = await this.#create(maildir, tmp);
      const head = encoder.encode(prefix);
      const size = head.length + msg.size;
      await this.#write(fh, head, msg, size);
      final = join(maildir, "new", `${unique},S=${size}`);
      await rename(tmp, final);
      tmp = null;
      if (this.opts.fsync) await this.#newSync.sync(join(maildir, "new"));
      return { ok: true, path: final };
    } catch (e) {
      // Leave nothing behind: a message we do not acknowledge will be sent again.
      if (tmp !== null) await rm(tmp, { force: true }).catch(() => {});
      if (final !== null) await rm(final, { force: true }).catch(() => {});
      return { ok: false, kind: failureKind(e), cause: (e as Error).message ?? String(e) };
    }
  }

  /**
   * Create tmp/<unique> (O_EXCL: an existing file means the name is not unique; never
   * append to it). If a Maildir we made earlier was removed meanwhile, make it again.
   */
  async #create(maildir: string, tmp: string): Promise<FileHandle> {
    const known = this.#made.has(maildir);
    if (!known) await this.#ensure(maildir);
    try {
      return await open(tmp, "wx", 0o600);
    } catch (e) {
      if (!known || errorCode(e) !== "ENOENT") throw e;
      this.#made.delete(maildir);
      await this.#ensure(maildir);
      return await open(tmp, "wx", 0o600);
    }
  }

  async #ensure(maildir: string): Promise<void> {
    if (this.#made.has(maildir)) return;
    for (const sub of ["tmp", "new", "cur"]) {
      await mkdir(join(maildir, sub), { recursive: true, mode: 0o700 });
    }
    if (this.opts.fsync) {
      // A new directory exists after a crash only once its parent's entry is on disk:
      // without this, the first message of a new mailbox could vanish with new/ itself.
      // Once per mailbox and process, so the cost does not matter.
      const local = dirname(maildir);
      for (const d of [maildir, local, dirname(local), this.mailRoot]) await this.#syncDir(d);
    }
    this.#made.add(maildir);
  }

  async #write(fh: FileHandle, head: Uint8Array, msg: SpooledMessage, size: number) {
    try {
      if (size <= ONE_WRITE_BYTES) {
        const all = new Uint8Array(size);
        all.set(head, 0);
        let off = head.length;
        for await (const c of reusedChunks(msg)) {
          if (off + c.length > size) throw new Error("Message is larger than its recorded size");
          all.set(c, off);
          off += c.length;
        }
        if (off !== size) throw new Error("Message is smaller than its recorded size");
        await writeAll(fh, all);
      } else {
        await this.#writeStreamed(fh, head, msg, size);
      }
      if (this.opts.fsync) await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** Coalesce the prefix and small chunks into writes of at least WRITE_BYTES. */
  async #writeStreamed(fh: FileHandle, head: Uint8Array, msg: SpooledMessage, size: number) {
    const buf = new Uint8Array(WRITE_BYTES);
    let used = 0;
    let total = 0;
    const add = async (c: Uint8Array) => {
      total += c.length;
      if (used === 0 && c.length >= WRITE_BYTES) return await writeAll(fh, c);
      let off = 0;
      while (off < c.length) {
        const n = Math.min(WRITE_BYTES - used, c.length - off);
        buf.set(c.subarray(off, off + n), used);
        used += n;
        off += n;
        if (used === WRITE_BYTES) {
          await writeAll(fh, buf);
          used = 0;
        }
      }
    };
    await add(head);
    // Each piece is written before the next is read, so the spool may reuse its buffer.
    for await (const c of reusedChunks(msg)) await add(c);
    if (used > 0) await writeAll(fh, buf.subarray(0, used));
    if (total !== size) throw new Error("Message size differs from its recorded size");
  }
}

/**
 * The message's chunks for a reader that is done with each one before it asks for the
 * next: the spool then reads a large message back through one buffer instead of a fresh
 * one per piece (benchmark M2).
 */
function reusedChunks(msg: SpooledMessage): AsyncIterable<Uint8Array> {
  return msg.chunks({ reuse: true });
}

async function writeAll(fh: FileHandle, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) {
    const { bytesWritten } = await fh.write(data, off, data.length - off);
    off += bytesWritten;
  }
}

/** fsync a directory so a rename into it survives a crash (open read-only, then fsync). */
async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
