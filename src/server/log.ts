// Structured log: one JSON object per line on stderr, so any log shipper can parse it.
// JSON encoding also escapes CR/LF, so client-supplied text cannot forge log lines.
import process from "node:process";

export type LogLevel = "debug" | "info" | "warn" | "error";

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Longest string value kept in a field; longer ones are cut and end with "…". */
export const MAX_FIELD_LENGTH = 200;

/** Values a field may carry; an Error is logged as its message, undefined is left out. */
export type LogValue = string | number | boolean | undefined | null | Error;
export type LogFieldMap = Readonly<Record<string, LogValue>>;

export interface LoggerOptions {
  /** Where each line goes (default: stderr). The line has no trailing newline. */
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

function writeStderr(line: string): void {
  process.stderr.write(line + "\n");
}

export class Logger {
  readonly level: LogLevel;
  #write: (line: string) => void;
  #now: () => Date;
  #fields: LogFieldMap;

  /** `level`: events below it are dropped. */
  constructor(level: LogLevel = "info", opts: LoggerOptions = {}) {
    this.level = level;
    this.#write = opts.write ?? writeStderr;
    this.#now = opts.now ?? (() => new Date());
    this.#fields = opts.fields ?? {};
  }

  /** A logger that adds `fields` (e.g. session id, listener, client ip) to every line. */
  child(fields: LogFieldMap): Logger {
    return new Logger(this.level, {
      write: this.#write,
      now: this.#now,
      fields: { ...this.#fields, ...fields },
    });
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
    try {
      this.#write(JSON.stringify(out));
    } catch {
      // A broken stderr must not take a connection (or the server) down with it.
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
