// What several commands open the same way: config, database, key file, token engine,
// held tokens and the outbound side (Remote Client + relay).
import { readFile } from "node:fs/promises";
import { discoverTokenServer, DiscoveryCache } from "../client/discovery.ts";
import { SmtpClient } from "../client/smtp_client.ts";
import { type Config, loadConfig, tokenPolicy } from "../config.ts";
import { Outbound } from "../delivery/outbound.ts";
import { type DnsResolver, makeResolver } from "../net/dns.ts";
import type { Logger } from "../server/log.ts";
import { type Db, openDatabase } from "../store/db.ts";
import { HeldTokens } from "../store/held_tokens.ts";
import { type KeyFile, readKeyFile } from "../store/key_file.ts";
import { LibsqlTokenStore } from "../store/tokens.ts";
import { TokenEngine } from "../tokens/engine.ts";
import { configPath } from "./config_path.ts";

export interface Context {
  readonly file: string;
  readonly config: Config;
  readonly keyFile: KeyFile;
  readonly db: Db;
  readonly tokens: TokenEngine;
  readonly heldTokens: HeldTokens;
  readonly resolver: DnsResolver;
  close(): void;
}

export async function openContext(configFlag: string | undefined): Promise<Context> {
  const file = configPath(configFlag);
  const config = await loadConfig(file);
  const keyFile = await readKeyFile(config.key_file);
  const db = await openDatabase(config.database.url, config.database.auth_token);
  const tokens = await TokenEngine.create(keyFile, new LibsqlTokenStore(db), tokenPolicy(config));
  return {
    file,
    config,
    keyFile,
    db,
    tokens,
    heldTokens: new HeldTokens(db, keyFile),
    resolver: makeResolver([...config.remote.dns_servers]),
    close: () => db.close(),
  };
}

export async function readCa(path: string, what: string): Promise<string | undefined> {
  if (path === "") return undefined;
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    throw new Error(`Cannot read ${what} "${path}": ${(e as Error).message}`);
  }
}

/** The Remote Client and the smarthost relay (PROTOCOL.md §7–§8). */
export async function outbound(ctx: Context, log: Logger): Promise<Outbound> {
  const { config, tokens, heldTokens: held, resolver } = ctx;
  const discovery = new DiscoveryCache((domain) =>
    discoverTokenServer(domain, resolver, config.remote.dns_servers.length > 0)
  );
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
    discover: (domain) => discovery.discover(domain),
    open: (o) => SmtpClient.open(o),
    log: (event, fields) => log.info(event, fields),
  });
}
