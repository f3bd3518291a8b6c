// The workloads of issue 6. L1–L4 are Postfix smtp-source in LMTP mode; T1/T2 (and L1 as
// seen from our own client, "L1-lg") are scripts/loadgen.ts. Each run returns msgs/s, or
// NaN with the reason when the run failed (a failed run never counts as a fast one).
import process from "node:process";
import { join } from "node:path";
import { run } from "./procs.ts";
import { RCPT, REPO, SENDER, type Target } from "./peers.ts";

export type WorkloadName = "L1" | "L2" | "L3" | "L4" | "L1-lg" | "T1" | "T1c" | "T2";

export interface Counts {
  readonly sessions: number;
  readonly L1: number;
  readonly L2: number;
  readonly L3: number;
  readonly L4: number;
  readonly T1: number;
  readonly T2: number;
}

export interface Sample {
  readonly rate: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly error?: string;
}

/** What each workload is, for the table's legend. */
export const DESCRIPTION: Record<WorkloadName, string> = {
  "L1": "LMTP, smtp-source -L -d, 1 KB, 1 rcpt, persistent sessions",
  "L2": "LMTP, one message per connection, 1 KB",
  "L3": "LMTP, persistent sessions, 100 KB",
  "L4": "LMTP, persistent sessions, 1 KB, 5 rcpts",
  "L1-lg": "L1 driven by scripts/loadgen.ts instead of smtp-source (client cost reference)",
  "T1": "TLS token sessions (LHLO, AUTH STOKEN, RCPT STOKEN=), persistent, 1 KB",
  "T1c": "T1 sent with src/client's SmtpClient (certificate verified, MAIL/RCPT/DATA pipelined)",
  "T2": "TLS token delivery, one connection per message (handshake included)",
};

const RUN_TIMEOUT_MS = 180_000;

/** smtp-source against a target's LMTP listener. */
export async function smtpSource(
  w: "L1" | "L2" | "L3" | "L4",
  t: Target,
  c: Counts,
): Promise<Sample> {
  const messages = c[w];
  const args = [
    "-L",
    "-s",
    String(c.sessions),
    "-m",
    String(messages),
    "-l",
    String(w === "L3" ? 100 * 1024 : 1024),
    "-f",
    SENDER,
    "-t",
    RCPT,
    "-M",
    "localhost",
  ];
  if (w !== "L2") args.unshift("-d");
  if (w === "L4") args.push("-r", "5");
  args.push(`127.0.0.1:${t.lmtpPort}`);
  const r = await run("smtp-source", args, { timeoutMs: RUN_TIMEOUT_MS });
  if (r.code !== 0) return { rate: NaN, error: (r.stderr || r.stdout).trim().split("\n")[0] ?? "" };
  return { rate: messages / r.seconds };
}

/** scripts/loadgen.ts: T1, T2 on the TLS listener with a token; L1-lg on plain LMTP. */
export async function loadgen(
  w: "L1-lg" | "T1" | "T1c" | "T2",
  t: Target,
  c: Counts,
): Promise<Sample> {
  const messages = w === "L1-lg" ? c.L1 : w === "T1c" ? c.T1 : c[w];
  const args = [
    "run",
    "--allow-all",
    join(REPO, "scripts/loadgen.ts"),
    "--json",
    "--concurrency",
    String(c.sessions),
    "--messages",
    String(messages),
    "--size",
    "1024",
    "--from",
    SENDER,
    "--to",
    RCPT,
  ];
  if (w === "L1-lg") args.push("--tls", "none", "--port", String(t.lmtpPort));
  else {
    if (t.tlsPort === undefined || t.token === undefined) {
      return { rate: NaN, error: `${t.name} has no token listener` };
    }
    args.push("--tls", "implicit", "--port", String(t.tlsPort), "--token", t.token);
    if (w === "T2") args.push("--per-connection");
    if (w === "T1c") {
      if (t.caFile === undefined) return { rate: NaN, error: `${t.name} has no certificate` };
      args.push("--client", "stoken", "--ca", t.caFile);
    }
  }
  const r = await run(process.execPath, args, { timeoutMs: RUN_TIMEOUT_MS });
  let out;
  try {
    out = JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "");
  } catch {
    return { rate: NaN, error: (r.stderr || r.stdout).trim().split("\n")[0] ?? `exit ${r.code}` };
  }
  if (out.errors > 0) return { rate: NaN, error: `${out.errors} errors: ${out.first_error}` };
  return { rate: out.rate, p50Ms: out.p50_ms, p99Ms: out.p99_ms };
}
