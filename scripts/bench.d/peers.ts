// The servers under test, each on loopback with its own private configuration under the
// benchmark's work directory: Postfix smtp-sink (the protocol ceiling, no storage),
// Dovecot LMTP (Maildir, default mail_fsync=optimized), nodemailer smtp-server (LMTP, a
// handler that writes and fsyncs a file) and stoken itself.
import { chown, mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import process from "node:process";
import { freePort, must, type Proc, start, stop, waitGreeting } from "./procs.ts";

export type PeerName = "smtp-sink" | "dovecot" | "nodemailer";
export type TargetName = PeerName | "stoken" | "stoken-nofsync";

export interface Target {
  readonly name: TargetName;
  /** Plain LMTP listener (all targets). */
  readonly lmtpPort: number;
  /** stoken only: implicit-TLS submission listener, for token sessions. */
  readonly tlsPort?: number;
  /** stoken only: a permanent token for (SENDER, RCPT). */
  readonly token?: string;
  /** stoken only: its self-signed certificate, the CA for a verifying client. */
  readonly caFile?: string;
  readonly proc: Proc;
  stop(): Promise<void>;
}

export const SENDER = "sender@remote.test";
export const RCPT = "bench@example.test";
/** smtp-source -r 5 prefixes the 2nd..5th recipients with their number: 2bench, 3bench, ... */
export const EXTRA_RCPTS = [2, 3, 4, 5].map((n) => `${n}${RCPT}`);
/** The most connections any workload opens (M1), plus room. */
export const MAX_CONNECTIONS = 6000;

export const REPO = resolve(import.meta.dirname ?? ".", "../..");

export async function startSink(work: string): Promise<Target> {
  const port = await freePort();
  const log = join(work, "smtp-sink.log");
  // -u nobody: smtp-sink refuses to run as root; -m: simultaneous connections (M1).
  const proc = await start("smtp-sink", "smtp-sink", [
    "-u",
    "nobody",
    "-L",
    "-m",
    String(MAX_CONNECTIONS),
    `127.0.0.1:${port}`,
    "1024",
  ], { log });
  await waitGreeting(port, proc);
  return { name: "smtp-sink", lmtpPort: port, proc, stop: () => stop(proc) };
}

export async function startDovecot(work: string): Promise<Target> {
  const base = join(work, "dovecot");
  const mail = join(base, "mail");
  for (const d of ["run", "state", "mail"]) await mkdir(join(base, d), { recursive: true });
  // Mail is written as nobody (Dovecot refuses uid 0 for mail).
  await chown(mail, 65534, 65534);
  const port = await freePort();
  // A private instance: its own base_dir, state_dir and log; nothing under /etc is read
  // (-c names this file). Defaults are kept (mail_fsync=optimized, indexes on disk).
  const conf = `# stoken benchmark: private Dovecot LMTP instance
base_dir = ${base}/run
state_dir = ${base}/state
instance_name = stoken-bench-${process.pid}
log_path = ${base}/dovecot.log
protocols = lmtp
ssl = no
listen = 127.0.0.1
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:${mail}/%d/%n/Maildir
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=${mail}/%d/%n allow_all_users=yes
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${port}
  }
}
`;
  const file = join(base, "dovecot.conf");
  await writeFile(file, conf);
  const proc = await start("dovecot", "dovecot", ["-F", "-c", file], {
    log: join(base, "stdout.log"),
  });
  await waitGreeting(port, proc);
  return {
    name: "dovecot",
    lmtpPort: port,
    proc,
    stop: () => stop(proc),
  };
}

export async function startNodemailer(work: string, modules: string): Promise<Target> {
  const port = await freePort();
  const dir = join(work, "nodemailer-mail");
  const script = join(REPO, "scripts/bench.d/nodemailer_lmtp.mjs");
  const proc = await start("nodemailer", "node", [script, modules, String(port), dir], {
    log: join(work, "nodemailer.log"),
  });
  await waitGreeting(port, proc);
  return {
    name: "nodemailer",
    lmtpPort: port,
    proc,
    stop: () => stop(proc),
  };
}

export interface StokenOptions {
  readonly fsync: boolean;
  /** Extra arguments for `deno run` before the script (e.g. --inspect=...). */
  readonly denoFlags?: readonly string[];
  readonly logLevel: string;
}

/** A stoken instance set up from scratch with `stoken init`, users and a permanent token. */
export async function startStoken(
  work: string,
  name: "stoken" | "stoken-nofsync",
  o: StokenOptions,
): Promise<Target> {
  const deno = process.execPath;
  const dir = join(work, `${name}-${Math.random().toString(36).slice(2, 8)}`);
  const cli = (args: string[], input?: string) =>
    must(deno, ["run", "--allow-all", "mod.ts", ...args], {
      cwd: REPO,
      ...(input === undefined ? {} : { input }),
    });
  await cli(["init", "--dir", dir, "--domain", "example.test", "--user", RCPT]);
  const config = join(dir, "stoken.json");
  const json = JSON.parse(await readFile(config, "utf8"));
  const lmtpPort = await freePort();
  const tlsPort = await freePort();
  const submissionPort = await freePort();
  json.listen = {
    submission: [`127.0.0.1:${submissionPort}`],
    submissions: [`127.0.0.1:${tlsPort}`],
    lmtp: [`127.0.0.1:${lmtpPort}`],
  };
  json.limits = {
    ...json.limits,
    max_connections: MAX_CONNECTIONS,
    max_connections_per_ip: MAX_CONNECTIONS,
  };
  json.delivery = { ...json.delivery, fsync: o.fsync };
  json.log = { level: o.logLevel };
  await writeFile(config, JSON.stringify(json, null, 2));
  for (const u of EXTRA_RCPTS) {
    await cli(["user", "add", u, "--config", config], "bench-password-not-used\n");
  }
  const token = (await cli(["token", "gen", "perm", SENDER, RCPT, "--config", config])).trim();
  if (!/^[A-Za-z0-9_-]{20,64}$/.test(token)) throw new Error("stoken token gen printed no token");
  const proc = await start(
    name,
    deno,
    ["run", ...(o.denoFlags ?? []), "--allow-all", "mod.ts", "serve", "--config", config],
    { cwd: REPO, log: join(dir, "serve.log") },
  );
  await waitGreeting(lmtpPort, proc);
  return {
    name,
    lmtpPort,
    tlsPort,
    token,
    caFile: join(dir, "tls/cert.pem"),
    proc,
    stop: () => stop(proc),
  };
}
