// `make bench`: stoken side by side with Postfix smtp-sink, Dovecot LMTP and nodemailer
// smtp-server, in one run, interleaved, medians with min–max, ratios (issue 6).
// Started by scripts/bench, which installs the peers and owns the work directory.
//
// Environment (all optional):
//   BENCH_QUICK=1          fewer messages, one repetition (a smoke run, not figures)
//   BENCH_REPS             repetitions (default 3)
//   BENCH_SESSIONS         concurrent sessions (default 10)
//   BENCH_L1_MSGS ... BENCH_L4_MSGS, BENCH_T1_MSGS, BENCH_T2_MSGS   messages per run
//   BENCH_R1_MSGS          R1 messages per repetition (default 500; quick 100)
//   BENCH_R1_WARMUP        R1 messages sent before measuring (default 100; quick 50)
//   BENCH_M1_CONNS         idle connections for M1 (default 5000)
//   BENCH_M2_MB            size of the M2 message in MB (default 50)
//   BENCH_ONLY             comma list of L1,L2,L3,L4,T,R,M,S (default: all; S = start-up,
//                          binary size and idle RSS of dist/stoken vs deno run)
//   BENCH_PEERS            comma list of smtp-sink,dovecot,nodemailer (default: all)
//   BENCH_STOKEN_LOG       stoken log.level (default info, the shipped default)
//   BENCH_RESULTS          directory for results.md / results.json (default: print only)
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { m1, type M1Result, m2, type M2Result, warmUp } from "./memory.ts";
import {
  type PeerName,
  startDovecot,
  startNodemailer,
  startSink,
  startStoken,
  type Target,
  type TargetName,
} from "./peers.ts";
import { run, setPidDir, stopAll } from "./procs.ts";
import { cell, num, ratio, ratioText, summarize, type Summary, table } from "./stats.ts";
import {
  type Counts,
  DESCRIPTION,
  loadgen,
  type Sample,
  smtpSource,
  type WorkloadName,
} from "./workloads.ts";
import { profile } from "./profile.ts";
import { measureStartup, type StartupRow, startupTable } from "./startup.ts";
import { R1_TARGET_P99_MS, r1Run, type R1Sample, startR1, tokenPathEvents } from "./r1.ts";

const env = process.env;
const loadAtStart = loadavg().map((x) => x.toFixed(2)).join(" ");
const quick = env.BENCH_QUICK === "1";

function envInt(name: string, dflt: number, quickValue: number): number {
  const v = env[name];
  if (v === undefined || v === "") return quick ? quickValue : dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a whole number >= 1: "${v}"`);
  return n;
}

function envList<T extends string>(name: string, all: readonly T[]): T[] {
  const v = env[name];
  if (!v) return [...all];
  const want = v.split(",").map((s) => s.trim()).filter(Boolean);
  for (const w of want) {
    if (!all.includes(w as T)) throw new Error(`${name} has an unknown entry: "${w}"`);
  }
  return want as T[];
}

const counts: Counts = {
  sessions: envInt("BENCH_SESSIONS", 10, 10),
  L1: envInt("BENCH_L1_MSGS", 5000, 1000),
  L2: envInt("BENCH_L2_MSGS", 2000, 300),
  L3: envInt("BENCH_L3_MSGS", 1000, 200),
  L4: envInt("BENCH_L4_MSGS", 1000, 400),
  T1: envInt("BENCH_T1_MSGS", 4000, 1000),
  T2: envInt("BENCH_T2_MSGS", 1000, 200),
};
const reps = envInt("BENCH_REPS", 3, 1);
const r1Msgs = envInt("BENCH_R1_MSGS", 500, 100);
const r1Warmup = envInt("BENCH_R1_WARMUP", 100, 50);
const m1Conns = envInt("BENCH_M1_CONNS", 5000, 1000);
const m2Mb = envInt("BENCH_M2_MB", 50, 50);
const only = envList("BENCH_ONLY", ["L1", "L2", "L3", "L4", "T", "R", "M", "S"] as const);
const peers = envList<PeerName>("BENCH_PEERS", ["smtp-sink", "dovecot", "nodemailer"]);
const logLevel = env.BENCH_STOKEN_LOG || "info";

const work = env.BENCH_WORK;
const modules = env.BENCH_NODE_MODULES;
if (!work || !modules) {
  console.error(
    "scripts/bench.d/main.ts is started by scripts/bench (BENCH_WORK, BENCH_NODE_MODULES)",
  );
  process.exit(2);
}
setPidDir(join(work, "pids"));

function say(s: string): void {
  process.stderr.write(s + "\n");
}

/** Set by SIGINT/SIGTERM: no new run starts while the servers are being stopped. */
let interrupted = false;

type Key = `${WorkloadName}/${TargetName}`;
const samples = new Map<Key, Sample[]>();
const errors: string[] = [];

function record(w: WorkloadName, t: TargetName, s: Sample): void {
  if (interrupted) throw new Error("Interrupted");
  const k: Key = `${w}/${t}`;
  samples.set(k, [...(samples.get(k) ?? []), s]);
  const lat = s.p50Ms === undefined
    ? ""
    : `  p50 ${num(s.p50Ms)} ms  p99 ${num(s.p99Ms ?? NaN)} ms`;
  say(
    `  ${w.padEnd(5)} ${t.padEnd(15)} ${
      s.error ? `FAILED: ${s.error}` : `${num(s.rate)} msgs/s${lat}`
    }`,
  );
  if (s.error) errors.push(`${w} ${t}: ${s.error}`);
}

function rates(w: WorkloadName, t: TargetName): Summary | null {
  return summarize((samples.get(`${w}/${t}`) ?? []).map((s) => s.rate));
}

function latency(w: WorkloadName, t: TargetName, which: "p50Ms" | "p99Ms"): Summary | null {
  return summarize((samples.get(`${w}/${t}`) ?? []).map((s) => s[which] ?? NaN));
}

async function syncDisk(): Promise<void> {
  await run("sync", []);
}

/**
 * Delivered mail is never deleted during a run, only with the work directory at the end:
 * on this ext4 (no journal) a new inode skips every inode deleted in the last 60–360 s
 * (fs/ext4/ialloc.c recently_deleted), so cleaning between runs made the next run's file
 * creations scan thousands of inodes and measured the file system, not the servers.
 */

/** Rotate the order each repetition so no target always runs first or last. */
function rotate<T>(xs: readonly T[], by: number): T[] {
  const k = xs.length ? by % xs.length : 0;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

async function throughput(): Promise<void> {
  const lWorkloads = (["L1", "L2", "L3", "L4"] as const).filter((w) => only.includes(w));
  const wantT = only.includes("T");
  if (lWorkloads.length === 0 && !wantT) return;

  say("starting servers");
  const targets = new Map<TargetName, Target>();
  const stoken = await startStoken(work!, "stoken", { fsync: true, logLevel });
  targets.set("stoken", stoken);
  if (only.includes("L1") || wantT) {
    targets.set(
      "stoken-nofsync",
      await startStoken(work!, "stoken-nofsync", { fsync: false, logLevel }),
    );
  }
  const starters: Record<PeerName, () => Promise<Target>> = {
    "smtp-sink": () => startSink(work!),
    "dovecot": () => startDovecot(work!),
    "nodemailer": () => startNodemailer(work!, modules!),
  };
  for (const p of peers) targets.set(p, await starters[p]());

  say("warming up");
  for (const t of targets.values()) await warmUp(t);

  // Peers and stoken alternate: stoken, then a peer, then stoken (fsync off) ...
  const order = (w: WorkloadName): Target[] => {
    const list: Target[] = [];
    const ps = peers.map((p) => targets.get(p)!);
    const ours = [stoken];
    if (w === "L1") ours.push(targets.get("stoken-nofsync")!);
    for (let i = 0; i < Math.max(ps.length, ours.length); i++) {
      if (ps[i]) list.push(ps[i]!);
      if (ours[i]) list.push(ours[i]!);
    }
    return list;
  };

  for (let rep = 0; rep < reps; rep++) {
    say(`repetition ${rep + 1} of ${reps}`);
    for (const w of lWorkloads) {
      for (const t of rotate(order(w), rep)) {
        record(w, t.name, await smtpSource(w, t, counts));
        await syncDisk();
      }
    }
    if (wantT) {
      const runs: [WorkloadName, TargetName][] = [
        ["L1-lg", "stoken"],
        ["T1", "stoken"],
        ["T1", "stoken-nofsync"],
        ["T1c", "stoken"],
        ["T2", "stoken"],
      ];
      for (const [w, name] of rotate(runs, rep)) {
        const t = targets.get(name)!;
        record(w, name, await loadgen(w as "L1-lg" | "T1" | "T1c" | "T2", t, counts));
        await syncDisk();
      }
    }
  }
  for (const t of targets.values()) await t.stop();
}

const r1Samples: R1Sample[] = [];
/** What B's log says about the R1 deliveries (null: not readable, or log level above info). */
let r1Paths: { token: number; relay: number; failed: number } | null = null;
let r1Sent = 0;

/**
 * R1: two stoken instances, bob on B submits to alice on A; B delivers by token before it
 * answers DATA. "." to 250 per message, over one persistent session (scripts/bench.d/r1.ts).
 */
async function realtime(): Promise<void> {
  if (!only.includes("R")) return;
  say("R1: starting two stoken instances (a.test, b.test), dnsmasq, test CA, relay sink");
  const s = await startR1(work!, { logLevel });
  try {
    const w = await r1Run(s, r1Warmup, "warmup");
    if (w.error) throw new Error(`R1 warm-up failed: ${w.error}`);
    r1Sent += w.messages;
    for (let rep = 0; rep < reps; rep++) {
      if (interrupted) throw new Error("Interrupted");
      const r = await r1Run(s, r1Msgs, `rep${rep + 1}`);
      r1Sent += r.messages;
      r1Samples.push(r);
      say(
        `  R1    rep ${rep + 1}: ${
          r.error ? `FAILED: ${r.error}` : `p50 ${num(r.p50Ms)} ms  p99 ${num(r.p99Ms)} ms  ` +
            `max ${num(r.maxMs)} ms  (file in new/: p50 ${num(r.fileP50Ms)}, p99 ${
              num(r.fileP99Ms)
            })  CPU per message A ${num(r.cpuMsA)} ms, B ${num(r.cpuMsB)} ms`
        }`,
      );
      if (r.error) errors.push(`R1 rep ${rep + 1}: ${r.error}`);
      await syncDisk();
    }
  } finally {
    await s.close();
  }
  r1Paths = await tokenPathEvents(s.b);
  // "sent" is an info event: at a higher log level there is nothing to count.
  if (r1Paths && (logLevel === "info" || logLevel === "debug")) {
    const p = r1Paths;
    if (p.token !== r1Sent || p.relay !== 0 || p.failed !== 0) {
      errors.push(
        `R1: B's log shows ${p.token} token sends, ${p.relay} relayed, ${p.failed} failed ` +
          `token attempts for ${r1Sent} messages`,
      );
    }
  }
}

const m1Results = new Map<TargetName, M1Result>();
const m2Results = new Map<TargetName, M2Result>();

async function memory(): Promise<void> {
  if (!only.includes("M")) return;
  // Fresh servers: earlier workloads must not have grown the heap already.
  const fresh: [TargetName, () => Promise<Target>][] = [
    ["stoken", () => startStoken(work!, "stoken", { fsync: true, logLevel })],
  ];
  if (peers.includes("smtp-sink")) fresh.push(["smtp-sink", () => startSink(work!)]);
  if (peers.includes("nodemailer")) {
    fresh.push(["nodemailer", () => startNodemailer(work!, modules!)]);
  }
  for (const [name, make] of fresh) {
    say(`M1 ${name}: ${m1Conns} idle connections`);
    let t = await make();
    await warmUp(t);
    const r1 = await m1(t, m1Conns);
    m1Results.set(name, r1);
    say(
      `  ${num(r1.perConnKiB)} KiB per connection (${r1.connections} open, ${r1.refused} refused)`,
    );
    await t.stop();
    say(`M2 ${name}: one ${m2Mb} MB message`);
    t = await make();
    await warmUp(t, 50);
    const r2 = await m2(t, m2Mb);
    m2Results.set(name, r2);
    say(`  growth ${num(r2.growthKiB / 1024)} MiB${r2.error ? ` FAILED: ${r2.error}` : ""}`);
    if (r2.error) errors.push(`M2 ${name}: ${r2.error}`);
    await t.stop();
  }
}

interface Check {
  readonly what: string;
  readonly value: number;
  readonly target: string;
  readonly ok: boolean | null;
}

function checks(): Check[] {
  const c: Check[] = [];
  const atLeast = (what: string, value: number, min: number, target: string) =>
    c.push({ what, value, target, ok: Number.isFinite(value) ? value >= min : null });
  const atMost = (what: string, value: number, max: number, target: string) =>
    c.push({ what, value, target, ok: Number.isFinite(value) ? value <= max : null });
  const s = (w: WorkloadName, t: TargetName) => rates(w, t);
  atLeast("L1 stoken ÷ Dovecot", ratio(s("L1", "stoken"), s("L1", "dovecot")), 3, "≥ 3×");
  atLeast("L1 stoken ÷ nodemailer", ratio(s("L1", "stoken"), s("L1", "nodemailer")), 1.3, "≥ 1.3×");
  atLeast(
    "L1 stoken (fsync off) ÷ smtp-sink",
    ratio(s("L1", "stoken-nofsync"), s("L1", "smtp-sink")),
    0.5,
    "≥ 0.5×",
  );
  atLeast("L2 stoken ÷ smtp-sink", ratio(s("L2", "stoken"), s("L2", "smtp-sink")), 0.5, "≥ 0.5×");
  atLeast("L3 stoken ÷ nodemailer", ratio(s("L3", "stoken"), s("L3", "nodemailer")), 1.2, "≥ 1.2×");
  atLeast("T1 ÷ stoken L1", ratio(s("T1", "stoken"), s("L1", "stoken")), 0.7, "≥ 0.7×");
  atLeast(
    "T1 ÷ stoken L1-lg (same client)",
    ratio(s("T1", "stoken"), s("L1-lg", "stoken")),
    0.7,
    "≥ 0.7× (reference)",
  );
  const r1 = summarize(r1Samples.map((x) => x.p99Ms));
  atMost(
    'R1 p99 ms ("." to 250, fresh TLS per message)',
    r1?.median ?? NaN,
    R1_TARGET_P99_MS,
    `≤ ${R1_TARGET_P99_MS} ms`,
  );
  const k1 = m1Results.get("stoken");
  atMost("M1 stoken KiB per idle connection", k1?.perConnKiB ?? NaN, 32, "≤ 32 KiB");
  const k2 = m2Results.get("stoken");
  atMost(
    `M2 stoken growth, MiB (${m2Mb} MB message)`,
    k2 && !k2.error ? k2.growthKiB / 1024 : NaN,
    32,
    "≤ 32 MiB",
  );
  return c;
}

let startupRows: StartupRow[] = [];

function report(): string {
  const out: string[] = [];
  const names: TargetName[] = [...peers, "stoken"];
  const head = [
    "workload",
    ...names.map((n) => `${n} msgs/s`),
    ...peers.map((p) => `stoken ÷ ${p}`),
  ];
  const rows: string[][] = [];
  const addRow = (label: string, w: WorkloadName, ours: TargetName, showPeers: boolean) => {
    const st = rates(w, ours);
    if (st === null && !peers.some((p) => rates(w, p))) return;
    rows.push([
      label,
      ...peers.map((p) => showPeers ? cell(rates(w, p)) : ""),
      cell(st),
      ...peers.map((p) => ratioText(ratio(st, rates(w, p)))),
    ]);
  };
  addRow("L1", "L1", "stoken", true);
  addRow("L1 fsync off", "L1", "stoken-nofsync", false);
  addRow("L2", "L2", "stoken", true);
  addRow("L3", "L3", "stoken", true);
  addRow("L4", "L4", "stoken", true);
  if (rows.length) out.push(table(head, rows));

  const tRows: string[][] = [];
  for (
    const [label, w, t] of [
      ["L1-lg (loadgen, plain LMTP)", "L1-lg", "stoken"],
      ["T1", "T1", "stoken"],
      ["T1 fsync off", "T1", "stoken-nofsync"],
      ["T1c (src/client)", "T1c", "stoken"],
      ["T2", "T2", "stoken"],
    ] as [string, WorkloadName, TargetName][]
  ) {
    const r = rates(w, t);
    if (r === null) continue;
    tRows.push([
      label,
      cell(r),
      cell(latency(w, t, "p50Ms")),
      cell(latency(w, t, "p99Ms")),
      ratioText(ratio(r, rates("L1", "stoken"))),
    ]);
  }
  if (tRows.length) {
    out.push(
      "",
      table(["stoken's own client", "msgs/s", "p50 ms", "p99 ms", "÷ stoken L1"], tRows),
    );
  }

  if (r1Samples.length) {
    const col = (f: (x: R1Sample) => number) => cell(summarize(r1Samples.map(f)));
    out.push(
      "",
      table(
        [
          "real time (R1)",
          "p50 ms",
          "p99 ms",
          "max ms",
          "CPU ms per msg, A + B",
        ],
        [
          [
            `"." → 250 (B answers after A's fsync)`,
            col((x) => x.p50Ms),
            col((x) => x.p99Ms),
            col((x) => x.maxMs),
            `${col((x) => x.cpuMsA)} + ${col((x) => x.cpuMsB)}`,
          ],
          [
            `"." → file renamed into new/ (inotify)`,
            col((x) => x.fileP50Ms),
            col((x) => x.fileP99Ms),
            "",
            "",
          ],
        ],
      ),
      `R1: ${r1Msgs} messages per repetition after ${r1Warmup} unmeasured, one persistent ` +
        `submission session (bob@b.test on B → alice@a.test on A), every one by token over a ` +
        `fresh TLS connection B → A; each 250 checked against exactly one new file in alice's ` +
        `Maildir carrying B's LMTPSA trace header; relay sink: ${
          r1Samples.length ? "0 messages" : "—"
        }${
          r1Paths
            ? `; B's log: ${r1Paths.token} sent by token, ${r1Paths.relay} relayed, ` +
              `${r1Paths.failed} failed token attempts (of ${r1Sent})`
            : ""
        }.`,
    );
  }

  if (m1Results.size || m2Results.size) {
    const mNames = [...new Set([...m1Results.keys(), ...m2Results.keys()])];
    const mRows = mNames.map((n) => {
      const a = m1Results.get(n);
      const b = m2Results.get(n);
      return [
        n,
        a
          ? `${num(a.perConnKiB)} (${a.connections} open${
            a.refused ? `, ${a.refused} refused` : ""
          })`
          : "—",
        b ? (b.error ? "failed" : num(b.growthKiB / 1024)) : "—",
      ];
    });
    out.push(
      "",
      table(
        ["memory", `M1 KiB per idle connection`, `M2 RSS growth MiB (${m2Mb} MB message)`],
        mRows,
      ),
    );
  }

  out.push(
    "",
    table(
      ["target", "measured", "wanted", "met"],
      checks().map((c) => [
        c.what,
        Number.isFinite(c.value) ? (c.what.includes("÷") ? ratioText(c.value) : num(c.value)) : "—",
        c.target,
        c.ok === null ? "not measured" : c.ok ? "yes" : "NO",
      ]),
    ),
  );
  out.push(
    "",
    `Workloads: ${
      Object.entries(DESCRIPTION).map(([k, v]) => `${k} = ${v}`).join("; ")
    }. Sessions ${counts.sessions}; messages per run L1 ${counts.L1}, L2 ${counts.L2}, L3 ${counts.L3}, ` +
      `L4 ${counts.L4}, T1 ${counts.T1}, T2 ${counts.T2}; ${reps} repetition(s), median (min–max).`,
  );
  out.push(
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${
      Math.round(totalmem() / 2 ** 30)
    } GiB, ` +
      `Deno ${process.versions.deno ?? "?"}; ${new Date().toISOString()}; load average at ` +
      `the start ${loadAtStart}, at the end ${loadavg().map((x) => x.toFixed(2)).join(" ")} ` +
      `(other work on the machine skews every figure).`,
  );
  if (errors.length) out.push("", "Failed runs:", ...errors.map((e) => `- ${e}`));
  if (startupRows.length) out.push("", startupTable(startupRows));
  return out.join("\n").replace(/^\n+/, "");
}

async function main(): Promise<number> {
  const shutdown = async () => {
    interrupted = true;
    say("interrupted: stopping every server");
    await stopAll();
    process.exit(130);
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
  try {
    if (process.argv[2] === "profile") {
      await profile(work!, counts, logLevel, r1Msgs);
      return 0;
    }
    await throughput();
    await realtime();
    await memory();
    if (only.includes("S")) {
      say("start-up: deno run mod.ts and dist/stoken (make binary first to include it)");
      startupRows = await measureStartup(work!, quick ? 3 : 5);
    }
  } finally {
    await stopAll();
  }
  const text = report();
  console.log(text);
  if (env.BENCH_RESULTS) {
    await mkdir(env.BENCH_RESULTS, { recursive: true });
    await writeFile(join(env.BENCH_RESULTS, "results.md"), text + "\n");
    await writeFile(
      join(env.BENCH_RESULTS, "results.json"),
      JSON.stringify(
        {
          counts,
          reps,
          samples: Object.fromEntries(samples),
          m1: Object.fromEntries(m1Results),
          m2: Object.fromEntries(m2Results),
          r1: r1Samples,
          checks: checks(),
        },
        null,
        2,
      ) + "\n",
    );
    say(`results written to ${env.BENCH_RESULTS}`);
  }
  return errors.length ? 1 : 0;
}

process.exitCode = await main();
