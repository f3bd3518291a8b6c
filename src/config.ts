// Configuration: defaults, then the JSON file, then the environment; validated, then frozen.
// Relative paths in the file are resolved against the file's own directory.
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import process from "node:process";

export interface Config {
  /** Name this server uses in greetings, EHLO replies and trace headers. */
  readonly hostname: string;
  /** Mail domains whose users live here; any other domain is remote. */
  readonly domains: readonly string[];
  readonly listen: {
    /** STARTTLS submission (port 587 in production). "host:port". */
    readonly submission: readonly string[];
    /** Implicit-TLS submission (port 465, RFC 8314). "host:port". */
    readonly submissions: readonly string[];
    /** Local LMTP for the MTA: "host:port" or "unix:/path". No TLS, no AUTH: keep it local. */
    readonly lmtp: readonly string[];
  };
  readonly tls: { readonly cert: string; readonly key: string };
  readonly database: { readonly url: string; readonly auth_token?: string };
  readonly key_file: string;
  readonly mail_root: string;
  readonly spool_dir: string;
  readonly limits: {
    readonly max_message_size: number;
    readonly max_recipients: number;
    readonly max_connections: number;
    readonly max_connections_per_ip: number;
    readonly idle_timeout_s: number;
    readonly data_timeout_s: number;
    readonly auth_failure_delay_ms: number;
    readonly auth_failure_limit: number;
    readonly auth_failure_window_s: number;
    readonly shutdown_timeout_s: number;
  };
  readonly delivery: {
    /** fsync each message and its directory before replying 250. Turning it off is unsafe. */
    readonly fsync: boolean;
  };
  /**
   * The smarthost that takes every remote recipient the token path does not serve
   * (PROTOCOL.md §7). An empty host means no relay: such recipients are refused at RCPT.
   */
  readonly relay: {
    readonly host: string;
    readonly port: number;
    /** "starttls" (required, port 587), "implicit" (port 465) or "none" (a trusted local MTA only). */
    readonly tls: "starttls" | "implicit" | "none";
    /** AUTH PLAIN at the smarthost when set; the password may come from STOKEN_RELAY_PASSWORD. */
    readonly username: string;
    readonly password: string;
    /** PEM file of the CA that signs the smarthost's certificate ("" = the system's roots). */
    readonly ca_file: string;
    readonly timeout_s: number;
  };
  /** The Remote Client: delivering straight to other Token Servers (PROTOCOL.md §8). */
  readonly remote: {
    readonly enabled: boolean;
    /** DNS servers for SRV/MX discovery, "ip" or "ip:port" ([] = the system's resolver). */
    readonly dns_servers: readonly string[];
    /** Bound on one whole token delivery attempt, connection to last reply. */
    readonly timeout_s: number;
    /** CA (PEM file) trusted for Token Servers instead of the system's roots, for private setups ("" = system roots). */
    readonly ca_file: string;
  };
  /** Tokens harvested from Submission-Token headers of mail arriving on the LMTP listener (§9). */
  readonly harvest: {
    readonly enabled: boolean;
    /** Keep a header token only when Authentication-Results shows DKIM or SPF passed for the sender's domain. */
    readonly require_auth_pass: boolean;
  };
  /** Token policy (draft §5.3): lifetimes, refresh of permanent tokens, grace of a replaced one. */
  readonly tokens: {
    readonly temp_lifetime_s: number;
    readonly perm_lifetime_s: number;
    readonly refresh_fraction: number;
    readonly grace_s: number;
  };
  readonly log: { readonly level: "debug" | "info" | "warn" | "error" };
}

export const DEFAULTS: Config = {
  hostname: "localhost",
  domains: [],
  listen: {
    submission: ["0.0.0.0:587"],
    submissions: ["0.0.0.0:465"],
    lmtp: ["127.0.0.1:24"],
  },
  tls: { cert: "tls/cert.pem", key: "tls/key.pem" },
  database: { url: "file:stoken.db" },
  key_file: "keys.json",
  mail_root: "mail",
  spool_dir: "spool",
  limits: {
    max_message_size: 50 * 1024 * 1024,
    max_recipients: 100,
    max_connections: 1000,
    max_connections_per_ip: 20,
    idle_timeout_s: 300,
    data_timeout_s: 600,
    auth_failure_delay_ms: 1000,
    auth_failure_limit: 5,
    auth_failure_window_s: 900,
    shutdown_timeout_s: 30,
  },
  delivery: { fsync: true },
  relay: {
    host: "",
    port: 587,
    tls: "starttls",
    username: "",
    password: "",
    ca_file: "",
    timeout_s: 60,
  },
  remote: { enabled: true, dns_servers: [], timeout_s: 30, ca_file: "" },
  harvest: { enabled: true, require_auth_pass: false },
  tokens: {
    temp_lifetime_s: 7 * 86400,
    perm_lifetime_s: 365 * 86400,
    refresh_fraction: 0.25,
    grace_s: 7 * 86400,
  },
  log: { level: "info" },
};

export class ConfigError extends Error {
  override name = "ConfigError";
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Merge `over` into `base`, checking that every key exists and has the same JSON type. */
function merge(base: unknown, over: unknown, path: string): unknown {
  if (isObject(base)) {
    if (!isObject(over)) throw new ConfigError(`"${path}" must be an object`);
    const out: Json = { ...base };
    for (const [k, v] of Object.entries(over)) {
      const p = path ? `${path}.${k}` : k;
      if (!(k in base)) {
        // Optional keys that have no default value.
        if (p === "database.auth_token" && typeof v === "string") {
          out[k] = v;
          continue;
        }
        throw new ConfigError(`Unknown configuration key "${p}"`);
      }
      out[k] = merge(base[k], v, p);
    }
    return out;
  }
  if (Array.isArray(base)) {
    if (!Array.isArray(over) || !over.every((x) => typeof x === "string")) {
      throw new ConfigError(`"${path}" must be a list of strings`);
    }
    return over;
  }
  if (typeof over !== typeof base) {
    throw new ConfigError(`"${path}" must be a ${typeof base}`);
  }
  return over;
}

function validate(c: Config): void {
  const { limits } = c;
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isFinite(v) || v < 0) throw new ConfigError(`"limits.${k}" must be a number >= 0`);
  }
  if (limits.max_message_size < 1024) {
    throw new ConfigError(`"limits.max_message_size" must be at least 1024`);
  }
  if (limits.max_recipients < 1) {
    throw new ConfigError(`"limits.max_recipients" must be at least 1`);
  }
  if (!["starttls", "implicit", "none"].includes(c.relay.tls)) {
    throw new ConfigError(`"relay.tls" must be starttls, implicit or none`);
  }
  if (c.relay.host !== "" && !(c.relay.port >= 1 && c.relay.port <= 65535)) {
    throw new ConfigError(`"relay.port" must be a port number`);
  }
  if (c.relay.password !== "" && c.relay.username === "") {
    throw new ConfigError(`"relay.password" is set but "relay.username" is empty`);
  }
  for (const d of c.remote.dns_servers) {
    if (!/^[0-9.]+(:\d{1,5})?$|^\[[0-9A-Fa-f:]+\](:\d{1,5})?$|^[0-9A-Fa-f:]+$/.test(d)) {
      throw new ConfigError(`"remote.dns_servers" has an invalid address: "${d}"`);
    }
  }
  const t = c.tokens;
  for (const k of ["temp_lifetime_s", "perm_lifetime_s", "grace_s"] as const) {
    if (!Number.isInteger(t[k]) || t[k] < (k === "grace_s" ? 0 : 1)) {
      throw new ConfigError(`"tokens.${k}" must be a whole number of seconds`);
    }
  }
  if (!(t.refresh_fraction >= 0 && t.refresh_fraction <= 1)) {
    throw new ConfigError(`"tokens.refresh_fraction" must be between 0 and 1`);
  }
  if (!/^[A-Za-z0-9.-]+$/.test(c.hostname)) {
    throw new ConfigError(`"hostname" is not a host name: "${c.hostname}"`);
  }
  for (const d of c.domains) {
    if (!/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/.test(d)) {
      throw new ConfigError(`"domains" has an invalid domain: "${d}"`);
    }
  }
  for (const kind of ["submission", "submissions", "lmtp"] as const) {
    for (const a of c.listen[kind]) parseListenAddress(a, kind === "lmtp");
  }
  if (!["debug", "info", "warn", "error"].includes(c.log.level)) {
    throw new ConfigError(`"log.level" must be debug, info, warn or error`);
  }
}

export type ListenAddress =
  | { kind: "tcp"; host: string; port: number }
  | { kind: "unix"; path: string };

/** "host:port", "[v6]:port" or (for LMTP) "unix:/path". */
export function parseListenAddress(s: string, allowUnix: boolean): ListenAddress {
  if (s.startsWith("unix:")) {
    if (!allowUnix) throw new ConfigError(`Unix sockets are only for lmtp: "${s}"`);
    const path = s.slice(5);
    if (!path) throw new ConfigError(`Empty unix socket path: "${s}"`);
    return { kind: "unix", path };
  }
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`Listen address must be host:port: "${s}"`);
  return { kind: "tcp", host: (m[1] ?? m[2])!, port };
}

function resolvePaths(c: Config, base: string): Config {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const dbUrl = c.database.url.startsWith("file:") && !c.database.url.startsWith("file:/")
    ? `file:${abs(c.database.url.slice(5))}`
    : c.database.url;
  const lmtp = c.listen.lmtp.map((a) => a.startsWith("unix:") ? `unix:${abs(a.slice(5))}` : a);
  return {
    ...c,
    listen: { ...c.listen, lmtp },
    tls: { cert: abs(c.tls.cert), key: abs(c.tls.key) },
    database: { ...c.database, url: dbUrl },
    key_file: abs(c.key_file),
    relay: { ...c.relay, ca_file: c.relay.ca_file === "" ? "" : abs(c.relay.ca_file) },
    remote: { ...c.remote, ca_file: c.remote.ca_file === "" ? "" : abs(c.remote.ca_file) },
    mail_root: abs(c.mail_root),
    spool_dir: abs(c.spool_dir),
  };
}

function deepFreeze<T>(o: T): T {
  if (typeof o === "object" && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Build a config from a parsed JSON object; `base` is the directory relative paths start from. */
export function configFrom(
  json: unknown,
  base: string,
  env: Record<string, string | undefined> = {},
): Config {
  let c = merge(DEFAULTS, json, "") as Config;
  if (env.STOKEN_DATABASE_URL) {
    c = { ...c, database: { ...c.database, url: env.STOKEN_DATABASE_URL } };
  }
  if (env.STOKEN_DATABASE_AUTH_TOKEN) {
    c = { ...c, database: { ...c.database, auth_token: env.STOKEN_DATABASE_AUTH_TOKEN } };
  }
  if (env.STOKEN_KEY_FILE) c = { ...c, key_file: env.STOKEN_KEY_FILE };
  if (env.STOKEN_RELAY_PASSWORD) {
    c = { ...c, relay: { ...c.relay, password: env.STOKEN_RELAY_PASSWORD } };
  }
  c = {
    ...c,
    hostname: c.hostname.toLowerCase(),
    domains: c.domains.map((d) => d.toLowerCase()),
  };
  validate(c);
  return deepFreeze(resolvePaths(c, base));
}

export async function loadConfig(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new ConfigError(`Cannot read configuration file "${file}": ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(
      `Configuration file "${file}" is not valid JSON: ${(e as Error).message}`,
    );
  }
  return configFrom(json, dirname(resolve(file)), process.env);
}

/** The token engine's policy from the config. */
export function tokenPolicy(c: Config): {
  tempLifetimeS: number;
  permLifetimeS: number;
  refreshFraction: number;
  graceS: number;
} {
  return {
    tempLifetimeS: c.tokens.temp_lifetime_s,
    permLifetimeS: c.tokens.perm_lifetime_s,
    refreshFraction: c.tokens.refresh_fraction,
    graceS: c.tokens.grace_s,
  };
}
