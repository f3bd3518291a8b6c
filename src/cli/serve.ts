// `stoken serve`: wire config, store, delivery and listeners together, run until a signal.
import { parseArgs } from "node:util";
import { type Config, parseListenAddress } from "../config.ts";
import type { Db } from "../store/db.ts";
import { openContext, outbound } from "./context.ts";
import { Maildirs } from "../delivery/maildir.ts";
import { MemorySpillSpool } from "../delivery/spool.ts";
import { onSignal, readTlsCredentials } from "../net/mod.ts";
import type { ListenSpec, TlsCredentials, TlsSource } from "../net/types.ts";
import { AuthGuardByIp } from "../server/auth_guard.ts";
import { Logger } from "../server/log.ts";
import { Server } from "../server/server.ts";
import type { SessionDeps } from "../session/deps.ts";
import { type ListenerKind, Session } from "../session/session.ts";
import { Users } from "../store/users.ts";
import { CachedUsers } from "../store/user_cache.ts";
import { newDeliveryId } from "../delivery/ids.ts";
import { LibsqlRecentDeliveries } from "../store/recent.ts";

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: "string" } }, strict: true });
  const ctx = await openContext(values.config);
  const { config, file, db } = ctx;
  const log = new Logger(config.log.level);

  let credentials: TlsCredentials = await readTlsCredentials(config.tls.cert, config.tls.key);
  const deps: SessionDeps = {
    ...sessionDeps(config, db, log),
    tokens: ctx.tokens,
    heldTokens: ctx.heldTokens,
    remote: await outbound(ctx, log),
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
  ctx.close();
  log.info("stopped", {});
  log.flush();
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
  db: Db,
  log: Logger,
): Omit<SessionDeps, "tokens" | "heldTokens" | "remote"> {
  const domains = new Set(config.domains);
  return {
    hostname: config.hostname,
    isLocalDomain: (d) => domains.has(d),
    users: new CachedUsers(new Users(db, domains)),
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
