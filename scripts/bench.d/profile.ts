// `scripts/bench profile`: CPU profiles of stoken under L1 and T1 (BENCH_PROFILE_ONLY picks
// others; BENCH_PROFILE_FSYNC=0 turns stoken's fsync off). R1 (two instances) has its own
// profile, a system-call timeline plus CPU profiles of both: scripts/bench.d/r1_profile.ts. This Deno has no
// --cpu-prof, so stoken runs with --inspect on loopback and the V8 inspector's Profiler
// domain records the profile; it is saved as a .cpuprofile (Chrome DevTools opens it) and
// summarized as self and inclusive time per function and self time per file.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { warmUp } from "./memory.ts";
import { REPO, startStoken } from "./peers.ts";
import { freePort, sleep } from "./procs.ts";
import { num, table } from "./stats.ts";
import { type Counts, loadgen, smtpSource } from "./workloads.ts";
import { r1Profile } from "./r1_profile.ts";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** A tiny Chrome DevTools Protocol client over the inspector's WebSocket. */
export class Inspector {
  #id = 0;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(readonly ws: WebSocket) {
    ws.onmessage = (ev) => {
      const m = JSON.parse(String(ev.data));
      const p = m.id !== undefined ? this.#pending.get(m.id) : undefined;
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.error) p.reject(new Error(`Inspector: ${m.error.message}`));
      else p.resolve(m.result);
    };
  }

  static async open(port: number): Promise<Inspector> {
    let list: { webSocketDebuggerUrl?: string }[] = [];
    for (let i = 0; i < 50 && list.length === 0; i++) {
      try {
        list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
      } catch {
        await sleep(100);
      }
    }
    const url = list[0]?.webSocketDebuggerUrl;
    if (!url) throw new Error(`No inspector target on port ${port}`);
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`Cannot open the inspector at ${url}`));
    });
    return new Inspector(ws);
  }

  send<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.#id;
    this.ws.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    });
  }

  close(): void {
    this.ws.close();
  }
}

function frameName(f: CallFrame): string {
  const file = f.url.replace(`file://${REPO}/`, "");
  return `${f.functionName || "(anonymous)"} ${file || "(native)"}:${f.lineNumber + 1}`;
}

/** Self and inclusive milliseconds per function, self per file; top `n` of each. */
export function summarizeProfile(p: CpuProfile, n = 30): string {
  const totalMs = (p.endTime - p.startTime) / 1000;
  const samples = p.samples?.length ?? 0;
  const msPerSample = samples ? totalMs / samples : 0;
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  // Time in natives, the runtime and libraries, charged to the nearest caller in our code.
  const ours = new Map<string, number>();
  const byFile = new Map<string, number>();
  let idle = 0;
  // Inclusive time: walk from the root with the set of functions already on the stack, so
  // recursion is not counted twice.
  const walk = (id: number, onStack: Set<string>, owner: string): number => {
    const node = byId.get(id)!;
    const name = frameName(node.callFrame);
    const own = (node.hitCount ?? 0) * msPerSample;
    const mine = /\/(src|scripts)\//.test(node.callFrame.url) ? name : owner;
    if (node.callFrame.functionName !== "(idle)") ours.set(mine, (ours.get(mine) ?? 0) + own);
    if (node.callFrame.functionName === "(idle)") idle += own;
    self.set(name, (self.get(name) ?? 0) + own);
    const file = node.callFrame.url || `(${node.callFrame.functionName || "native"})`;
    byFile.set(file, (byFile.get(file) ?? 0) + own);
    const inner = new Set(onStack).add(name);
    let total = own;
    for (const c of node.children ?? []) total += walk(c, inner, mine);
    if (!onStack.has(name)) incl.set(name, (incl.get(name) ?? 0) + total);
    return total;
  };
  const root = p.nodes[0];
  if (root) walk(root.id, new Set(), "(not under our code)");
  const busy = totalMs - idle;
  const top = (m: Map<string, number>) =>
    [...m].filter(([k]) => !k.startsWith("(root)") && !k.startsWith("(idle)"))
      .sort((a, b) => b[1] - a[1]).slice(0, n);
  const pct = (ms: number) => `${((100 * ms) / (busy || 1)).toFixed(1)}%`;
  return [
    `profile: ${num(totalMs)} ms, ${samples} samples, busy ${num(busy)} ms (idle ${num(idle)} ms)`,
    "",
    "self time (% of busy):",
    table(["function", "ms", "%"], top(self).map(([k, v]) => [k, num(v), pct(v)])),
    "",
    "self time charged to the nearest function of ours (natives and libraries included):",
    table(["function", "ms", "%"], top(ours).map(([k, v]) => [k, num(v), pct(v)])),
    "",
    "inclusive time (% of busy):",
    table(["function", "ms", "%"], top(incl).map(([k, v]) => [k, num(v), pct(v)])),
    "",
    "self time per file:",
    table(["file", "ms", "%"], top(byFile).map(([k, v]) => [k, num(v), pct(v)])),
  ].join("\n");
}

export async function profile(
  work: string,
  counts: Counts,
  logLevel: string,
  r1Messages = 100,
): Promise<void> {
  const outDir = process.env.BENCH_RESULTS || join(work, "profile");
  await mkdir(outDir, { recursive: true });
  const all = ["L1", "L2", "L3", "L4", "T1", "T2"] as const;
  const want = (process.env.BENCH_PROFILE_ONLY || "L1,T1").split(",").map((x) => x.trim());
  for (const w of want) {
    if (!(all as readonly string[]).includes(w) && w !== "R1") {
      throw new Error(`BENCH_PROFILE_ONLY has an unknown workload: "${w}"`);
    }
  }
  if (want.includes("R1")) await r1Profile(work, r1Messages, outDir);
  for (const w of all.filter((x) => want.includes(x))) {
    const port = await freePort();
    const t = await startStoken(work, "stoken", {
      fsync: process.env.BENCH_PROFILE_FSYNC !== "0",
      logLevel,
      denoFlags: [`--inspect=127.0.0.1:${port}`],
    });
    try {
      await warmUp(t);
      const insp = await Inspector.open(port);
      await insp.send("Profiler.enable");
      await insp.send("Profiler.setSamplingInterval", { interval: 200 });
      await insp.send("Profiler.start");
      const s = w === "T1" || w === "T2"
        ? await loadgen(w, t, counts)
        : await smtpSource(w, t, counts);
      const { profile: p } = await insp.send<{ profile: CpuProfile }>("Profiler.stop");
      insp.close();
      const file = join(outDir, `stoken-${w}.cpuprofile`);
      await writeFile(file, JSON.stringify(p));
      const text =
        `# ${w}: ${s.error ? `FAILED ${s.error}` : `${num(s.rate)} msgs/s under the profiler`}\n` +
        summarizeProfile(p);
      await writeFile(join(outDir, `stoken-${w}.txt`), text + "\n");
      console.log(text + `\n(profile: ${file})\n`);
    } finally {
      await t.stop();
    }
  }
}
