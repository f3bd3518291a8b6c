// Where R1's time goes (`BENCH_PROFILE_ONLY=R1 scripts/bench profile`). R1 mostly waits
// (round trips, a TLS handshake, fsyncs), which a CPU profile does not show, so the first pass
// records a system-call timeline of the three processes (bench client, B, A) with `perf trace`
// (kernel tracepoints: nothing is stopped, unlike strace) and cuts every message into phases
// at the system calls that bound them:
//
//   "." sent by the client ─ B's first DNS socket ─ B's connect() to A ─ B's TLS Finished
//   ─ B's AUTH ─ B's MAIL/RCPT/DATA ─ B's body ─ A's 250 ─ the client reads B's 250
//
// plus the fsyncs of each side inside its phase. The second pass records V8 CPU profiles of
// A and B (inspector, as `profile.ts` does for the other workloads) over another R1 run.
import { spawn } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { Inspector, summarizeProfile } from "./profile.ts";
import { freePort, sleep } from "./procs.ts";
import { r1Run, type R1Setup, startR1 } from "./r1.ts";
import { num, table } from "./stats.ts";

interface Event {
  ts: number;
  dur: number;
  tid: number;
  who: "client" | "A" | "B" | "?";
  name: string;
  args: string;
  ret: number;
}

// "  1034.383 ( 0.104 ms): deno/2446 connect(fd: 36, ...)   = -1 EINPROGRESS (...)"
// "  1154.909 (         ): deno/2446 fsync(fd: 28</x/stoken.db-wal>)   ..."
// "  1154.909 ( 0.870 ms): deno/2446  ... [continued]: fsync())   = 0"
const LINE = /^\s*([\d.]+) \(\s*(?:([\d.]+) ms)?\s*\): .*?\/(\d+) +(.*)$/;
const CALL = /^([a-z0-9_]+)\((.*)\)\s+(?:= (-?\d+)|\.\.\.)/;
const CONTINUED = /^\.\.\. \[continued\]: ([a-z0-9_]+)\(\)\)\s+= (-?\d+)/;

/** perf trace's text output as events, sorted by time (CPUs print out of order). */
export function parseTrace(text: string, whoOf: (tid: number) => Event["who"]): Event[] {
  const out: Event[] = [];
  const pending = new Map<number, Event>();
  for (const line of text.split("\n")) {
    const m = LINE.exec(line);
    if (!m) continue;
    const tid = Number(m[3]);
    const rest = m[4]!.trim();
    const c = CONTINUED.exec(rest);
    if (c) {
      const e = pending.get(tid);
      if (e && e.name === c[1]) {
        e.dur = Number(m[2] ?? 0);
        e.ret = Number(c[2]);
        pending.delete(tid);
      }
      continue;
    }
    const k = CALL.exec(rest);
    if (!k) continue;
    const e: Event = {
      ts: Number(m[1]),
      dur: Number(m[2] ?? 0),
      tid,
      who: whoOf(tid),
      name: k[1]!,
      args: k[2]!,
      ret: k[3] === undefined ? NaN : Number(k[3]),
    };
    if (k[3] === undefined) pending.set(tid, e);
    out.push(e);
  }
  return out.sort((a, b) => a.ts - b.ts);
}

function fdOf(e: Event): number {
  return Number(/^fd: (\d+)/.exec(e.args)?.[1] ?? NaN);
}

function lenOf(e: Event): number {
  return Number(/len: (\d+)/.exec(e.args)?.[1] ?? NaN);
}

export const PHASES = [
  ["B: body received, before discovery (spool, head, recent + held-token reads)", "prep"],
  ["B: discovery (3 SRV/MX queries + 1 A query, resolver set-up)", "dns"],
  ["TCP connect + TLS handshake (until B's Finished)", "tls"],
  ["A's greeting + LHLO round trip", "lhlo"],
  ["AUTH STOKEN round trip (A checks the token)", "auth"],
  ["MAIL/RCPT/DATA round trip (A checks the token again)", "rcpt"],
  ["A stores: tmp file, fsync, rename, fsync new/, until A's 250", "store"],
  ["B after A's 250 until the client reads B's 250 (learn, recent, WAL fsyncs)", "after"],
] as const;
type Phase = (typeof PHASES)[number][1];

export interface MessagePhases {
  total: number;
  phases: Record<Phase, number>;
  fsyncA: { n: number; ms: number };
  fsyncB: { n: number; ms: number };
}

/**
 * One message per "." the client sent: cut at the system calls listed at the top. A
 * message whose pattern differs (a split write, lost events) is left out and counted.
 */
export function phases(events: Event[]): { messages: MessagePhases[]; skipped: number } {
  const dots = events.filter((e) => e.who === "client" && e.name === "sendto" && lenOf(e) > 1000);
  const messages: MessagePhases[] = [];
  let skipped = 0;
  for (let i = 0; i < dots.length; i++) {
    const dot = dots[i]!;
    const end = dots[i + 1]?.ts ?? Infinity;
    const w = events.filter((e) => e.ts >= dot.ts && e.ts < end);
    const clientFd = fdOf(dot);
    const got = w.find((e) =>
      e.who === "client" && e.name === "recvfrom" && fdOf(e) === clientFd && e.ret > 0
    );
    const dns = w.find((e) => e.who === "B" && e.name === "socket" && e.args.includes("DGRAM"));
    const conn = w.find((e) => e.who === "B" && e.name === "connect" && e.ts > (dns?.ts ?? 0));
    if (!got || !dns || !conn) {
      skipped++;
      continue;
    }
    const toA = fdOf(conn);
    const bSends = w.filter((e) =>
      e.who === "B" && e.name === "sendto" && fdOf(e) === toA && e.ts > conn.ts && e.ts < got.ts
    );
    // ClientHello, Finished, LHLO, AUTH, MAIL+RCPT+DATA, body, QUIT.
    if (bSends.length < 6) {
      skipped++;
      continue;
    }
    const [, finished, , auth, mail, body] = bSends as [Event, Event, Event, Event, Event, Event];
    const a250 = w.find((e) => e.who === "A" && e.name === "sendto" && e.ts > body.ts);
    if (!a250 || a250.ts > got.ts) {
      skipped++;
      continue;
    }
    const fsyncs = (who: "A" | "B", from: number, to: number) => {
      const f = w.filter((e) =>
        e.who === who && (e.name === "fsync" || e.name === "fdatasync") && e.ts >= from &&
        e.ts < to
      );
      return { n: f.length, ms: f.reduce((s, e) => s + e.dur, 0) };
    };
    messages.push({
      total: got.ts - dot.ts,
      phases: {
        prep: dns.ts - dot.ts,
        dns: conn.ts - dns.ts,
        tls: finished.ts - conn.ts,
        lhlo: auth.ts - finished.ts,
        auth: mail.ts - auth.ts,
        rcpt: body.ts - mail.ts,
        store: a250.ts - body.ts,
        after: got.ts - a250.ts,
      },
      fsyncA: fsyncs("A", body.ts, a250.ts),
      fsyncB: fsyncs("B", dot.ts, got.ts),
    });
  }
  return { messages, skipped };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : NaN;
}

export function phaseTable(ms: MessagePhases[]): string {
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / (xs.length || 1);
  const totalMean = mean(ms.map((m) => m.total));
  const rows = PHASES.map(([label, key]) => {
    const xs = ms.map((m) => m.phases[key]);
    return [
      label,
      num(pct(xs, 0.5)),
      num(pct(xs, 0.99)),
      num(mean(xs)),
      `${((100 * mean(xs)) / totalMean).toFixed(0)}%`,
    ];
  });
  const t = ms.map((m) => m.total);
  rows.push([
    'total ("." → client reads 250)',
    num(pct(t, 0.5)),
    num(pct(t, 0.99)),
    num(totalMean),
    "100%",
  ]);
  const fa = ms.map((m) => m.fsyncA.ms);
  const fb = ms.map((m) => m.fsyncB.ms);
  rows.push(
    [
      `  of which fsync on A (${num(mean(ms.map((m) => m.fsyncA.n)))} per message, tokio threads)`,
      num(pct(fa, 0.5)),
      num(pct(fa, 0.99)),
      num(mean(fa)),
      `${((100 * mean(fa)) / totalMean).toFixed(0)}%`,
    ],
    [
      `  of which fsync on B (${num(mean(ms.map((m) => m.fsyncB.n)))} per message, JS thread)`,
      num(pct(fb, 0.5)),
      num(pct(fb, 0.99)),
      num(mean(fb)),
      `${((100 * mean(fb)) / totalMean).toFixed(0)}%`,
    ],
  );
  return table(["phase", "p50 ms", "p99 ms", "mean ms", "share of mean"], rows);
}

interface CpuNode {
  id: number;
  callFrame: { functionName: string; url: string };
  hitCount?: number;
  children?: number[];
}

/**
 * Where the JS thread's time goes, by kind of work. Each sample goes to the first frame,
 * from the leaf up, that a rule recognizes (a libSQL native under a token check is libSQL).
 */
export const CATEGORIES: readonly [string, (fn: string, url: string) => boolean][] = [
  [
    "socket reads/writes (node:tls records, handshake messages)",
    (fn, url) =>
      /^(readBuffer|writeBuffer|writev|write(Utf8|Latin1|Ascii)String)$/.test(fn) ||
      /stream_base_commons|stream_wrap|internal_binding\/tls_wrap/.test(url),
  ],
  [
    "TLS set-up and certificate checks (node:tls)",
    (fn, url) =>
      /^(initClientTls|initServerTls|getPeerCertificate|destroySsl|op_node_x509)/.test(fn) ||
      /_tls_wrap|_tls_common|x509\.ts/.test(url) ||
      (/src\/net\/node\.ts$/.test(url) && fn === "serverHandshake"),
  ],
  ["libSQL (queries, WAL commit + fsync)", (_fn, url) => /libsql/.test(url)],
  [
    "DNS discovery (node:dns, a resolver per query)",
    (fn, url) =>
      fn === "op_dns_resolve" ||
      /internal\/dns|cares_wrap|src\/net\/dns\.ts|discovery\.ts/.test(url),
  ],
  ["logging", (fn, url) => /src\/server\/log\.ts/.test(url) || fn === "op_write_sync"],
  [
    "Maildir (open, write, fsync, rename)",
    (fn, url) => /src\/delivery\/maildir\.ts/.test(url) || /^op_(node_open|fs_|node_fs)/.test(fn),
  ],
  [
    "token and held-token crypto (HMAC, AES-GCM)",
    (fn, url) =>
      /src\/tokens\/|held_tokens\.ts|key_file\.ts/.test(url) ||
      /^(decrypt|encrypt|op_node_create_hash|op_crypto)/.test(fn),
  ],
  ["GC and V8 (program)", (fn) => fn === "(garbage collector)" || fn === "(program)"],
  ["stoken protocol, session, server code", (_fn, url) => /\/(src|scripts)\//.test(url)],
];

/** JS-thread milliseconds by category (see CATEGORIES); "other" is runtime code (streams, timers). */
export function categorize(p: {
  nodes: CpuNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}): Map<string, number> {
  const msPerSample = (p.endTime - p.startTime) / 1000 / (p.samples?.length || 1);
  const parent = new Map<number, CpuNode>();
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const out = new Map<string, number>();
  for (const n of p.nodes) {
    const hits = n.hitCount ?? 0;
    if (!hits || n.callFrame.functionName === "(idle)") continue;
    let cat = "other (runtime: streams, timers, promises)";
    for (let f: CpuNode | undefined = byId.get(n.id); f; f = parent.get(f.id)) {
      const hit = CATEGORIES.find(([, test]) => test(f!.callFrame.functionName, f!.callFrame.url));
      if (hit) {
        cat = hit[0];
        break;
      }
    }
    out.set(cat, (out.get(cat) ?? 0) + hits * msPerSample);
  }
  return out;
}

async function threads(pid: number): Promise<number[]> {
  try {
    return (await readdir(`/proc/${pid}/task`)).map(Number);
  } catch {
    return [];
  }
}

/** Pass 1: the perf trace timeline. Returns the report text, or why it could not run. */
async function timeline(s: R1Setup, messages: number, outDir: string): Promise<string> {
  const a = s.a.proc!.pid;
  const b = s.b.proc!.pid;
  const file = join(outDir, "r1-trace.txt");
  const perf = spawn("perf", [
    "trace",
    "-p",
    [process.pid, a, b].join(","),
    "-e",
    "sendto,recvfrom,connect,accept4,socket,fsync,fdatasync,rename",
    "-o",
    file,
  ], { stdio: ["ignore", "ignore", "pipe"] });
  let perfErr = "";
  perf.stderr!.setEncoding("utf8").on("data", (d: string) => perfErr += d);
  const failed = new Promise<string>((resolve) => {
    perf.once("error", (e) => resolve(`perf not available: ${e.message}`));
    perf.once("exit", (code) => resolve(`perf trace exited (${code}): ${perfErr.trim()}`));
  });
  const ready = await Promise.race([sleep(1500).then(() => ""), failed]);
  if (ready) return `No system-call timeline: ${ready}`;
  const r = await r1Run(s, messages, "traced");
  // Threads come and go (tokio's blocking pool): read the map before stopping anything.
  const who = new Map<number, Event["who"]>();
  for (const [pid, name] of [[process.pid, "client"], [a, "A"], [b, "B"]] as const) {
    for (const t of await threads(pid)) who.set(t, name);
  }
  perf.kill("SIGINT");
  await new Promise((res) => perf.once("exit", res));
  if (r.error) return `R1 failed under perf trace: ${r.error}`;
  const events = parseTrace(await readFile(file, "utf8"), (t) => who.get(t) ?? "?");
  const { messages: ms, skipped } = phases(events);
  return [
    `R1 under perf trace: ${r.messages} messages, "." → 250 p50 ${num(r.p50Ms)} ms, p99 ${
      num(r.p99Ms)
    } ms (the tracer adds a little to every system call).`,
    `Phases from the system calls of the client, B and A (${ms.length} messages cut, ${skipped} ` +
    `left out: pattern not recognized). Raw trace: ${file}`,
    "",
    phaseTable(ms),
  ].join("\n");
}

/** Pass 2: V8 CPU profiles of A and B over one more R1 run (instances with --inspect). */
async function cpuProfiles(work: string, messages: number, outDir: string): Promise<string> {
  const ports = { A: await freePort(), B: await freePort() };
  const s = await startR1(work, {
    logLevel: "info",
    denoFlags: {
      A: [`--inspect=127.0.0.1:${ports.A}`],
      B: [`--inspect=127.0.0.1:${ports.B}`],
    },
  });
  try {
    const w = await r1Run(s, 100, "warmup");
    if (w.error) return `R1 warm-up failed: ${w.error}`;
    const insp = { A: await Inspector.open(ports.A), B: await Inspector.open(ports.B) };
    for (const i of Object.values(insp)) {
      await i.send("Profiler.enable");
      await i.send("Profiler.setSamplingInterval", { interval: 200 });
      await i.send("Profiler.start");
    }
    const r = await r1Run(s, messages, "cpu");
    const out: string[] = [
      `R1 under the CPU profiler: "." → 250 p50 ${num(r.p50Ms)} ms, p99 ${num(r.p99Ms)} ms ` +
      `(the profiler slows both servers). CPU (all threads, /proc) per message: A ${
        num(r.cpuMsA)
      } ms, B ${num(r.cpuMsB)} ms.`,
    ];
    const cats = new Map<string, Map<string, number>>();
    const details: string[] = [];
    for (const [name, i] of Object.entries(insp)) {
      // deno-lint-ignore no-explicit-any
      const { profile } = await i.send<{ profile: any }>("Profiler.stop");
      i.close();
      const f = join(outDir, `stoken-R1-${name}.cpuprofile`);
      await writeFile(f, JSON.stringify(profile));
      const text = summarizeProfile(profile, 25);
      await writeFile(join(outDir, `stoken-R1-${name}.txt`), text + "\n");
      const busy = /busy ([\d,.]+) ms/.exec(text)?.[1]?.replace(/,/g, "");
      cats.set(name, categorize(profile));
      details.push(
        "",
        `## ${name} (${name === "A" ? "Token Server" : "submission + Remote Client"}): ${
          busy ? `${num(Number(busy) / messages)} ms of JS-thread time per message` : ""
        } (profile: ${f})`,
        text,
      );
    }
    const a = cats.get("A") ?? new Map<string, number>();
    const b = cats.get("B") ?? new Map<string, number>();
    const names = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) =>
      ((b.get(y) ?? 0) + (a.get(y) ?? 0)) - ((b.get(x) ?? 0) + (a.get(x) ?? 0))
    );
    const per = (m: Map<string, number>, k: string) => num((m.get(k) ?? 0) / messages);
    const sum = (m: Map<string, number>) => [...m.values()].reduce((x, y) => x + y, 0);
    out.push(
      "",
      "JS-thread time per message by kind of work (V8 samples; natives charged to the",
      "first recognized frame above them):",
      "",
      table(
        ["work", "A ms/msg", "B ms/msg"],
        [
          ...names.map((k) => [k, per(a, k), per(b, k)]),
          ["total busy", num(sum(a) / messages), num(sum(b) / messages)],
        ],
      ),
      ...details,
    );
    return out.join("\n");
  } finally {
    await s.close();
  }
}

export async function r1Profile(work: string, messages: number, outDir: string): Promise<void> {
  const s = await startR1(work, { logLevel: "info" });
  let text: string;
  try {
    const w = await r1Run(s, 100, "warmup");
    if (w.error) throw new Error(`R1 warm-up failed: ${w.error}`);
    text = await timeline(s, messages, outDir);
  } finally {
    await s.close();
  }
  text += "\n\n" + await cpuProfiles(work, messages, outDir);
  await writeFile(join(outDir, "stoken-R1.txt"), text + "\n");
  console.log(text);
}
