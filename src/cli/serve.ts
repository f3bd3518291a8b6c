// `stoken serve`: wire config, store, delivery and listeners together, run until a signal.
import { parseArgs } from "node:util";
import { type Config, loadConfig, parseListenAddress, tokenPolicy } from "../config.ts";
import { Maildirs } from "../delivery/maildir.ts";
import { MemorySpillSpool } from "../delivery/spool.ts";
import { onSignal, readTlsCredentials } from "../net/mod.ts";
import type { ListenSpec, TlsCredentials, TlsSource } from "../net/types.ts";
import { AuthGuardByIp } from "../server/auth_guard.ts";
import { Logger } from "../server/log.ts";
import { Server } from "../server/server.ts";
import type { SessionDeps } from "../session/deps.ts";
import { type ListenerKind, Session } from "../session/session.ts";
import { openDatabase } from "../store/db.ts";
import { Users } from "../store/users.ts";
import { HeldTokens } from "../store/held_tokens.ts";
import { readKeyFile } from "../store/key_file.ts";
import { LibsqlTokenStore } from "../store/tokens.ts";
import { TokenEngine } from "../tokens/engine.ts";
import { configPath } from "./config_path.ts";
import { newDeliveryId } from "../delivery/ids.ts";
import { Outbound } from "../delivery/outbound.ts";
import { discover } from "../client/discovery.ts";
import { SmtpClient } from "../client/smtp_client.ts";
import { type DnsResolver, makeResolver } from "../net/dns.ts";
import type { Target } from "../delivery/outbound.ts";
import { LibsqlRecentDeliveries } from "../store/recent.ts";
import { readFile } from "node:fs/promises";

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: "string" } }, strict: true });
  const file = configPath(values.config);
  const config = await loadConfig(file);
  const log = new Logger(config.log.level);

  let credentials: TlsCredentials = await readTlsCredentials(config.tls.cert, config.tls.key);
  const keyFile = await readKeyFile(config.key_file);
  const db = await openDatabase(config.database.url, config.database.auth_token);
  const tokens = await TokenEngine.create(keyFile, new LibsqlTokenStore(db), tokenPolicy(config));
  const heldTokens = new HeldTokens(db, keyFile);
  const deps: SessionDeps = {
    ...sessionDeps(config, db, log),
    tokens,
    heldTokens,
    remote: await outbound(config, tokens, heldTokens, log),
  };
  const tls = () => credentials;

  const server = new Server({
    listeners: listenerSpecs(config, tls),
    makeSession: (info, sessionLog) =>
      new Session({ ...deps, log: (event, fields) => sessionLog.info(event, fields) }, info),
    tls,
    limits: {
      maxConnections: config.limits.max_connections,
      maxConnectionsPerIp: config.limits.max_connections_per_ip,
      idleTimeoutS: config.limits.idle_timeout_s,
      dataTimeoutS: config.limits.data_timeout_s,
      shutdownTimeoutS: config.limits.shutdown_timeout_s,
    },
    log,
  });
  await server.start();
  log.info("started", { config: file, hostname: config.hostname, ...server.ports() });

  const stopped = new Promise<string>((resolve) => {
    onSignal("SIGTERM", () => resolve("SIGTERM"));
    onSignal("SIGINT", () => resolve("SIGINT"));
  });
  onSignal("SIGHUP", () => {
    readTlsCredentials(config.tls.cert, config.tls.key).then(
      (c) => {
        credentials = c;
        log.info("tls_reloaded", { cert: config.tls.cert });
      },
      (e) => log.error("tls_reload_failed", { cause: (e as Error).message }),
    );
  });
  const signal = await stopped;
  log.info("stopping", { signal });
  await server.shutdown();
  db.close();
  log.info("stopped", {});
  return 0;
}

function listenerSpecs(
  config: Config,
  tls: TlsSource,
): { kind: ListenerKind; spec: ListenSpec }[] {
  const out: { kind: ListenerKind; spec: ListenSpec }[] = [];
  for (const kind of ["submission", "submissions", "lmtp"] as const) {
    for (const a of config.listen[kind]) {
      const addr = parseListenAddress(a, kind === "lmtp");
      const spec: ListenSpec = addr.kind === "tcp" && kind === "submissions"
        ? { ...addr, tls }
        : addr;
      out.push({ kind, spec });
    }
  }
  return out;
}

function sessionDeps(
  config: Config,
  db: Awaited<ReturnType<typeof openDatabase>>,
  log: Logger,
): Omit<SessionDeps, "tokens" | "heldTokens" | "remote"> {
  const domains = new Set(config.domains);
  return {
    hostname: config.hostname,
    isLocalDomain: (d) => domains.has(d),
    users: new Users(db, domains),
    spool: new MemorySpillSpool(config.spool_dir),
    mailboxes: new Maildirs(config.mail_root, {
      fsync: config.delivery.fsync,
      hostname: config.hostname,
    }),
    authGuard: new AuthGuardByIp({
      limit: config.limits.auth_failure_limit,
      windowS: config.limits.auth_failure_window_s,
      delayMs: config.limits.auth_failure_delay_ms,
    }),
    limits: {
      maxMessageSize: config.limits.max_message_size,
      maxRecipients: config.limits.max_recipients,
    },
    recent: new LibsqlRecentDeliveries(db),
    harvest: { enabled: config.harvest.enabled, requireAuthPass: config.harvest.require_auth_pass },
    now: () => new Date(),
    newId: newDeliveryId,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    log: (event, fields) => log.info(event, fields),
  };
}

async function readCa(path: string, what: string): Promise<string | undefined> {
  if (path === "") return undefined;
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    throw new Error(`Cannot read ${what} "${path}": ${(e as Error).message}`);
  }
}

/** The Remote Client and the smarthost relay (PROTOCOL.md §7–§8). */
async function outbound(
  config: Config,
  tokens: TokenEngine,
  held: HeldTokens,
  log: Logger,
): Promise<Outbound> {
  const resolver = makeResolver([...config.remote.dns_servers]);
  const remoteCa = await readCa(config.remote.ca_file, "remote.ca_file");
  const relayCa = await readCa(config.relay.ca_file, "relay.ca_file");
  const r = config.relay;
  return new Outbound({
    hostname: config.hostname,
    relay: r.host === "" ? null : {
      host: r.host,
      port: r.port,
      tls: r.tls,
      username: r.username,
      password: r.password,
      ...(relayCa === undefined ? {} : { ca: relayCa }),
      timeoutMs: r.timeout_s * 1000,
    },
    remote: {
      enabled: config.remote.enabled,
      timeoutMs: config.remote.timeout_s * 1000,
      ...(remoteCa === undefined ? {} : { ca: remoteCa }),
    },
    tokens,
    held,
    discover: async (domain) => {
      const targets = await discover(domain, resolver);
      return config.remote.dns_servers.length === 0
        ? targets
        : await withAddresses(targets, resolver);
    },
    open: (o) => SmtpClient.open(o),
    log: (event, fields) => log.info(event, fields),
  });
}

/**
 * With remote.dns_servers set, the host names discovery found are looked up there too: the
 * connection itself would ask the system resolver, which knows nothing of those servers.
 * One target per IPv4 address, in the resolver's order; a name without one is skipped.
 */
async function withAddresses(
  targets: readonly { host: string; port: number; tls: "implicit" | "starttls" }[],
  resolver: DnsResolver,
): Promise<Target[]> {
  const addresses = new Map<string, Promise<string[]>>();
  const out: Target[] = [];
  for (const t of targets) {
    let lookup = addresses.get(t.host);
    if (!lookup) {
      lookup = resolver.a(t.host).catch(() => []);
      addresses.set(t.host, lookup);
    }
    for (const address of await lookup) {
      out.push({ host: t.host, address, port: t.port, tls: t.tls });
    }
  }
  return out;
}
