// Structured log: one JSON object per line on stderr, so any log shipper can parse it.
// JSON encoding also escapes CR/LF, so client-supplied text cannot forge log lines.
//
// Lines to stderr are batched: each line used to be its own synchronous write(2) on the
// event loop's thread (up to 3–4 per message, 7–10 % of the server's CPU), so the lines
// logged during one event-loop turn are queued and written together in one write when the
// turn ends (setImmediate, after the turn's I/O callbacks: ~3 µs in Deno 2.9.6, where a
// setTimeout costs 10–20 µs, more than the write it would save). Nothing is lost on a clean
// stop: flush() at shutdown, a flush on process exit, and error lines go out at once with
// everything queued before them (a crash that follows an error line must not take it
// along). A hard kill (SIGKILL) can lose the lines of the turn it interrupts.
import process from "node:process";
import { clearImmediate, setImmediate } from "node:timers";

export type LogLevel = "debug" | "info" | "warn" | "error";

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Longest string value kept in a field; longer ones are cut and end with "…". */
export const MAX_FIELD_LENGTH = 200;

/** Values a field may carry; an Error is logged as its message, undefined is left out. */
export type LogValue = string | number | boolean | undefined | null | Error;
export type LogFieldMap = Readonly<Record<string, LogValue>>;

export interface LoggerOptions {
  /**
   * Where each line goes, one call per line, unbatched (default: stderr, batched). The line
   * has no trailing newline.
   */
  readonly write?: (line: string) => void;
  readonly now?: () => Date;
  /** Fields added to every line. */
  readonly fields?: LogFieldMap;
}

// The keys every line starts with; fields cannot overwrite them.
const RESERVED = new Set(["ts", "level", "event"]);

function clip(s: string): string {
  return s.length > MAX_FIELD_LENGTH ? s.slice(0, MAX_FIELD_LENGTH - 1) + "…" : s;
}

function value(v: LogValue): string | number | boolean | null {
  if (v instanceof Error) return clip(v.message);
  if (typeof v === "string") return clip(v);
  if (v === undefined || v === null) return null;
  // Whatever a caller cast to LogValue (a thrown non-Error, say) still becomes one short string.
  if (typeof v === "object") return clip(String(v));
  return v;
}

/** Pending text beyond which a batch is written at once rather than at the end of the turn. */
const MAX_BATCH_CHARS = 64 * 1024;

/** Lines queued during one event-loop turn and written to stderr in one call. */
class StderrBatch {
  #lines: string[] = [];
  #chars = 0;
  #immediate: ReturnType<typeof setImmediate> | undefined;
  #hooked = false;

  write(line: string): void {
    this.#lines.push(line);
    this.#chars += line.length + 1;
    if (this.#chars >= MAX_BATCH_CHARS) {
      this.flush();
      return;
    }
    if (this.#immediate === undefined) {
      if (!this.#hooked) {
        // process.exit() skips pending callbacks but runs "exit" listeners (synchronous ones).
        process.on("exit", () => this.flush());
        this.#hooked = true;
      }
      this.#immediate = setImmediate(() => this.flush());
    }
  }

  flush(): void {
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.#immediate = undefined;
    if (this.#lines.length === 0) return;
    const text = this.#lines.join("\n") + "\n";
    this.#lines = [];
    this.#chars = 0;
    try {
      process.stderr.write(text);
    } catch {
      // A broken stderr must not take a connection (or the server) down with it.
    }
  }
}

const stderr = new StderrBatch();

export class Logger {
  readonly level: LogLevel;
  /** The caller's writer, or null for batched stderr. */
  #write: ((line: string) => void) | null;
  #now: () => Date;
  #fields: LogFieldMap;

  /** `level`: events below it are dropped. */
  constructor(level: LogLevel = "info", opts: LoggerOptions = {}) {
    this.level = level;
    this.#write = opts.write ?? null;
    this.#now = opts.now ?? (() => new Date());
    this.#fields = opts.fields ?? {};
  }

  /** A logger that adds `fields` (e.g. session id, listener, client ip) to every line. */
  child(fields: LogFieldMap): Logger {
    return new Logger(this.level, {
      ...(this.#write === null ? {} : { write: this.#write }),
      now: this.#now,
      fields: { ...this.#fields, ...fields },
    });
  }

  /** Write out the lines still queued for stderr (at shutdown; a custom writer has none). */
  flush(): void {
    if (this.#write === null) stderr.flush();
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] >= RANK[this.level];
  }

  log(level: LogLevel, event: string, fields: LogFieldMap = {}): void {
    if (!this.enabled(level)) return;
    const out: Record<string, string | number | boolean | null> = {
      ts: this.#now().toISOString(),
      level,
      event: clip(event),
    };
    for (const src of [this.#fields, fields]) {
      for (const [k, v] of Object.entries(src)) {
        if (v === undefined || RESERVED.has(k)) continue;
        out[k] = value(v);
      }
    }
    const line = JSON.stringify(out);
    if (this.#write === null) {
      stderr.write(line);
      if (level === "error") stderr.flush();
      return;
    }
    try {
      this.#write(line);
    } catch {
      // A broken writer must not take a connection (or the server) down with it.
    }
  }

  debug(event: string, fields?: LogFieldMap): void {
    this.log("debug", event, fields);
  }
  info(event: string, fields?: LogFieldMap): void {
    this.log("info", event, fields);
  }
  warn(event: string, fields?: LogFieldMap): void {
    this.log("warn", event, fields);
  }
  error(event: string, fields?: LogFieldMap): void {
    this.log("error", event, fields);
  }
}
