// End-to-end harness: a real `stoken serve` child process on loopback, in its own temp dir.
//
// The command comes from $STOKEN_BIN (a compiled binary) when set, else
// `deno run -A <repo>/mod.ts`. Each server gets free ports, a config written by `stoken init`
// then rewritten here, and is always killed at the end of the test that made it
// (`await using srv = await startServer()`), or at process exit as a last resort.
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SmtpConn } from "./smtp_conn.ts";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const PY_DIR = join(REPO_ROOT, "tests", "e2e", "py");

const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 45_000;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  stdin?: string | Uint8Array;
  cwd?: string;
  env?: Record<string, string>;
  /** Kill the command after this long (default 120 s) so a hung client fails the test. */
  timeoutMs?: number;
}

/** Run a command to completion and collect its output. */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    ...(opts.env === undefined ? {} : { env: opts.env }),
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, opts.timeoutMs ?? 120_000);
  try {
    if (opts.stdin !== undefined) {
      const w = child.stdin.getWriter();
      try {
        await w.write(
          typeof opts.stdin === "string" ? new TextEncoder().encode(opts.stdin) : opts.stdin,
        );
        await w.close();
      } catch { /* the command may exit without reading stdin */ }
    }
    const out = await child.output();
    return {
      code: out.signal ? 128 : out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** Run tests/e2e/py/<script> with python3. */
export function runPython(
  script: string,
  args: string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  return run("python3", [join(PY_DIR, script), ...args], opts);
}

/** The stoken command line: [$STOKEN_BIN] or [deno, run, -A, <repo>/mod.ts]. */
export function stokenCommand(): string[] {
  const bin = Deno.env.get("STOKEN_BIN");
  if (bin) return [bin];
  return [Deno.execPath(), "run", "--allow-all", join(REPO_ROOT, "mod.ts")];
}

/** Run one stoken subcommand to completion. */
export function stoken(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...pre] = stokenCommand();
  return run(cmd!, [...pre, ...args], { cwd: REPO_ROOT, ...opts });
}

/** A TCP port that was free a moment ago (bind port 0, read it, close). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export interface StartOptions {
  /** Overrides for `limits.*` in the config. */
  limits?: Record<string, number>;
  /** Any other change to the config JSON, applied last. */
  edit?: (config: Record<string, unknown>) => void;
  /** `init --domain` (default: init's own default). */
  domain?: string;
  /** `init --user` (default: init's own default, admin@example.test). */
  user?: string;
}

export interface TestServer {
  /** The server's directory (config, keys, database, mail). */
  readonly dir: string;
  /** Path of the config file. */
  readonly config: string;
  readonly ports: { submission: number; submissions: number; lmtp: number };
  /** Path of the LMTP unix socket. */
  readonly lmtpSocket: string;
  /** The first user, made by `init`, and its password. */
  readonly user: string;
  readonly password: string;
  /** Process id of the running server (for /proc/<pid>/status). */
  readonly pid: number;
  /** Resolves with the exit status of the current server process. */
  readonly exited: Promise<Deno.CommandStatus>;
  /** Send a signal to the running process without waiting. */
  kill(signal: Deno.Signal): void;
  /** Send a signal (default SIGTERM) and wait for the process to exit. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  /** Stop with SIGTERM, then start again with the same config and ports. */
  restart(): Promise<void>;
  /** Absolute paths of the files in the user's Maildir sub-folder (default new/), sorted. */
  maildir(address: string, sub?: "new" | "tmp" | "cur"): Promise<string[]>;
  /** Everything the server wrote on stderr so far (all processes since start). */
  logs(): string;
  /** Run `stoken <args> --config <config>`. */
  cli(args: string[], stdin?: string): Promise<RunResult>;
  /** Resident memory of the server process in KiB (VmRSS). */
  rssKiB(): Promise<number>;
  /** Kill the process if still running and remove the directory. */
  dispose(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Servers not yet disposed, killed at process exit if a test forgot them. */
const live = new Set<Deno.ChildProcess>();
globalThis.addEventListener("unload", () => {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }
});

/** The password `init` printed on its "Password:   <password>" line (src/cli/init.ts). */
export function parseInitPassword(stdout: string): string {
  const m = /^Password:\s+(\S+)\s*$/m.exec(stdout);
  if (m) return m[1]!;
  throw new Error(`No password found in the output of init: ${JSON.stringify(stdout)}`);
}

export async function startServer(opts: StartOptions = {}): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), "stoken-e2e-"));
  try {
    return await startIn(dir, opts);
  } catch (e) {
    if (!Deno.env.get("STOKEN_E2E_KEEP")) await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

async function startIn(dir: string, opts: StartOptions): Promise<TestServer> {
  const initArgs = ["init", "--dir", dir];
  if (opts.domain) initArgs.push("--domain", opts.domain);
  if (opts.user) initArgs.push("--user", opts.user);
  const init = await stoken(initArgs);
  if (init.code !== 0) {
    throw new Error(`stoken init failed (exit ${init.code}):\n${init.stderr}${init.stdout}`);
  }
  const password = parseInitPassword(init.stdout);
  const config = join(dir, "stoken.json");
  const json = JSON.parse(await readFile(config, "utf8")) as Record<string, unknown>;
  const user = opts.user ?? firstUser(init.stdout) ?? "admin@example.test";

  const ports = { submission: freePort(), submissions: freePort(), lmtp: freePort() };
  const lmtpSocket = join(dir, "lmtp.sock");
  json.listen = {
    submission: [`127.0.0.1:${ports.submission}`],
    submissions: [`127.0.0.1:${ports.submissions}`],
    lmtp: [`127.0.0.1:${ports.lmtp}`, `unix:${lmtpSocket}`],
  };
  json.limits = { ...(json.limits as Record<string, number> | undefined), ...opts.limits };
  opts.edit?.(json);
  await writeFile(config, JSON.stringify(json, null, 2) + "\n");
  const mailRoot = join(dir, typeof json.mail_root === "string" ? json.mail_root : "mail");

  let stderr = "";
  let child: Deno.ChildProcess | null = null;
  let exited: Promise<Deno.CommandStatus> = Promise.resolve({
    success: false,
    code: 1,
    signal: null,
  });
  let drained: Promise<void> = Promise.resolve();

  const spawn = async () => {
    const [cmd, ...pre] = stokenCommand();
    const c = new Deno.Command(cmd!, {
      args: [...pre, "serve", "--config", config],
      cwd: Deno.env.get("STOKEN_BIN") ? dir : REPO_ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    child = c;
    live.add(c);
    const decoder = new TextDecoder();
    const collect = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream) stderr += decoder.decode(chunk, { stream: true });
    };
    drained = Promise.all([collect(c.stderr), collect(c.stdout)]).then(() => {});
    exited = c.status.then((s) => {
      live.delete(c);
      return s;
    });
    await waitReady(ports, lmtpSocket, exited, () => stderr);
  };

  const stop = async (signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> => {
    const c = child;
    if (c && live.has(c)) {
      try {
        c.kill(signal);
      } catch { /* exited meanwhile */ }
      const timer = setTimeout(() => {
        try {
          c.kill("SIGKILL");
        } catch { /* gone */ }
      }, STOP_TIMEOUT_MS);
      try {
        await exited;
      } finally {
        clearTimeout(timer);
      }
    }
    const status = await exited;
    await drained;
    return status;
  };

  const dispose = async () => {
    const c = child;
    if (c && live.has(c)) {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await exited.catch(() => {});
    await drained.catch(() => {});
    if (!Deno.env.get("STOKEN_E2E_KEEP")) await rm(dir, { recursive: true, force: true });
  };

  try {
    await spawn();
  } catch (e) {
    await dispose();
    throw e;
  }

  const srv: TestServer = {
    dir,
    config,
    ports,
    lmtpSocket,
    user,
    password,
    get pid() {
      return child!.pid;
    },
    get exited() {
      return exited;
    },
    kill(signal: Deno.Signal) {
      child!.kill(signal);
    },
    stop,
    async restart() {
      await stop("SIGTERM");
      await spawn();
    },
    async maildir(address: string, sub: "new" | "tmp" | "cur" = "new") {
      const at = address.lastIndexOf("@");
      const folder = join(
        mailRoot,
        address.slice(at + 1).toLowerCase(),
        address.slice(0, at),
        "Maildir",
        sub,
      );
      try {
        return (await readdir(folder)).sort().map((f) => join(folder, f));
      } catch (e) {
        if ((e as { code?: string }).code === "ENOENT") return [];
        throw e;
      }
    },
    logs: () => stderr,
    cli: (args: string[], stdin?: string) =>
      stoken([...args, "--config", config], stdin === undefined ? {} : { stdin }),
    async rssKiB() {
      const status = await readFile(`/proc/${child!.pid}/status`, "utf8");
      const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
      if (!m) throw new Error(`No VmRSS in /proc/${child!.pid}/status`);
      return Number(m[1]);
    },
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
  return srv;
}

/** The address on init's "First user: <address>" line. */
function firstUser(stdout: string): string | undefined {
  return /^First user:\s+(\S+)\s*$/m.exec(stdout)?.[1];
}

/**
 * One polite probe: connect, read the 220 greeting, QUIT. A probe that connects and drops
 * the connection at once would test the server's handling of abrupt clients instead
 * (tests/e2e/robustness_test.ts does that on purpose).
 */
async function probe(target: { port: number; tls?: boolean } | { path: string }): Promise<boolean> {
  let c: SmtpConn;
  try {
    c = "path" in target
      ? await SmtpConn.unix(target.path)
      : target.tls
      ? await SmtpConn.tls(target.port)
      : await SmtpConn.tcp(target.port);
  } catch {
    return false; // not listening yet
  }
  try {
    const greeting = await c.readReply(5_000);
    if (greeting.code !== 220) return false;
    await c.command("QUIT", 5_000);
    return true;
  } catch {
    return false;
  } finally {
    c.close();
  }
}

/** Poll until every listener greets; fail early if the process dies. */
async function waitReady(
  ports: { submission: number; submissions: number; lmtp: number },
  lmtpSocket: string,
  exited: Promise<Deno.CommandStatus>,
  logs: () => string,
): Promise<void> {
  let dead: Deno.CommandStatus | null = null;
  exited.then((s) => (dead = s));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const pending: ({ port: number; tls?: boolean } | { path: string })[] = [
    { port: ports.submission },
    { port: ports.submissions, tls: true },
    { port: ports.lmtp },
    { path: lmtpSocket },
  ];
  while (pending.length > 0) {
    if (dead !== null) {
      const s = dead as Deno.CommandStatus;
      throw new Error(
        `stoken serve exited (code ${s.code}, signal ${s.signal}) before listening:\n${logs()}`,
      );
    }
    if (Date.now() > deadline) {
      throw new Error(`stoken serve did not listen within ${READY_TIMEOUT_MS} ms:\n${logs()}`);
    }
    if (await probe(pending[0]!)) pending.shift();
    else await new Promise((r) => setTimeout(r, 100));
  }
  // A probe may have been the last straw: make sure the process is still there.
  await new Promise((r) => setTimeout(r, 50));
  if (dead !== null) {
    const s = dead as Deno.CommandStatus;
    throw new Error(
      `stoken serve exited (code ${s.code}, signal ${s.signal}) after its listeners greeted:\n${logs()}`,
    );
  }
}
