// Child processes of the benchmark: every one is started here, its pid written to
// <work>/pids/ (so scripts/bench's trap can stop it even if this process dies), and
// stopped by pid: SIGTERM, then SIGKILL after a grace period.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { join } from "node:path";
import process from "node:process";

export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  readonly exited: Promise<number | string>;
}

let pidDir = "";
const running = new Set<Proc>();

/** Where pid files go; scripts/bench reads this directory in its exit trap. */
export function setPidDir(dir: string): void {
  pidDir = dir;
}

export interface StartOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** stdout and stderr go to this file (appended). */
  log: string;
}

/** Start a long-running process (a server) whose output goes to a log file. */
export async function start(
  name: string,
  cmd: string,
  args: string[],
  o: StartOptions,
): Promise<Proc> {
  const out = createWriteStream(o.log, { flags: "a" });
  await new Promise((r) => out.once("open", r));
  const child = spawn(cmd, args, {
    cwd: o.cwd,
    env: { ...process.env, ...o.env },
    stdio: ["ignore", out, out],
  });
  if (child.pid === undefined) {
    const e = await new Promise<Error>((r) => child.once("error", r));
    throw new Error(`Cannot start ${name} ("${cmd}"): ${e.message}`);
  }
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      out.end();
      resolve(code ?? signal ?? "unknown");
    });
  });
  const p: Proc = { name, pid: child.pid, child, exited };
  running.add(p);
  if (pidDir) await writeFile(join(pidDir, String(p.pid)), name + "\n");
  exited.then(() => {
    running.delete(p);
    if (pidDir) rm(join(pidDir, String(p.pid)), { force: true }).catch(() => {});
  });
  return p;
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL. */
export async function stop(p: Proc, graceMs = 10_000): Promise<void> {
  if (!running.has(p)) return;
  try {
    process.kill(p.pid, "SIGTERM");
  } catch {
    return;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), graceMs));
  const r = await Promise.race([p.exited, late]);
  clearTimeout(timer);
  if (r === "late") {
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
    await p.exited;
  }
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => stop(p)));
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Run a command to completion (a load generator or a tool); output is collected. */
export function run(
  cmd: string,
  args: string[],
  o: { cwd?: string; env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, {
      cwd: o.cwd,
      env: { ...process.env, ...o.env },
      stdio: [o.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (s: string) => stdout += s);
    child.stderr!.setEncoding("utf8").on("data", (s: string) => stderr += s);
    if (o.input !== undefined) child.stdin!.end(o.input);
    const pidFile = child.pid !== undefined && pidDir ? join(pidDir, String(child.pid)) : null;
    if (pidFile) writeFile(pidFile, cmd + "\n").catch(() => {});
    const timer = o.timeoutMs
      ? setTimeout(() => {
        stderr += `\n(killed after ${o.timeoutMs} ms)`;
        child.kill("SIGKILL");
      }, o.timeoutMs)
      : undefined;
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`Cannot run "${cmd}": ${e.message}`));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (pidFile) rm(pidFile, { force: true }).catch(() => {});
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout,
        stderr,
        seconds: (performance.now() - t0) / 1000,
      });
    });
  });
}

/** Run and fail unless it exits 0. */
export async function must(
  cmd: string,
  args: string[],
  o: { cwd?: string; env?: Record<string, string>; input?: string } = {},
): Promise<string> {
  const r = await run(cmd, args, o);
  if (r.code !== 0) {
    throw new Error(
      `"${cmd} ${args.join(" ")}" failed (${r.code}): ${r.stderr.trim().slice(-500)}`,
    );
  }
  return r.stdout;
}

/** Wait until `port` on loopback answers with a 220 greeting line. */
export async function waitGreeting(port: number, p: Proc, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = "";
  while (performance.now() < deadline) {
    if (!running.has(p)) throw new Error(`${p.name} exited before it listened on ${port}`);
    try {
      const line = await firstLine(port);
      if (line.startsWith("220")) return;
      last = line;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${p.name} did not greet on port ${port}: ${last}`);
}

function firstLine(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port });
    let buf = "";
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error("no greeting"));
    }, 2000);
    s.setEncoding("latin1");
    s.on("data", (d: string) => {
      buf += d;
      const i = buf.indexOf("\r\n");
      if (i >= 0) {
        clearTimeout(t);
        s.end("QUIT\r\n");
        s.destroy();
        resolve(buf.slice(0, i));
      }
    });
    s.on("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const a = srv.address();
      const port = typeof a === "object" && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** VmRSS and VmHWM of a process in KiB, from /proc/<pid>/status. */
export async function memoryOf(pid: number): Promise<{ rssKiB: number; hwmKiB: number }> {
  const text = await readFile(`/proc/${pid}/status`, "utf8");
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
    if (!m) throw new Error(`No ${name} in /proc/${pid}/status`);
    return Number(m[1]);
  };
  return { rssKiB: field("VmRSS"), hwmKiB: field("VmHWM") };
}

/** Sum of VmRSS over a process and its descendants (Dovecot runs one process per session). */
export async function treeRssKiB(pid: number): Promise<number> {
  let total = 0;
  const seen = new Set<number>();
  const visit = async (p: number) => {
    if (seen.has(p)) return;
    seen.add(p);
    try {
      total += (await memoryOf(p)).rssKiB;
      const kids = await readFile(`/proc/${p}/task/${p}/children`, "utf8");
      for (const k of kids.trim().split(/\s+/).filter(Boolean)) await visit(Number(k));
    } catch {
      // The process ended while we looked.
    }
  };
  await visit(pid);
  return total;
}
