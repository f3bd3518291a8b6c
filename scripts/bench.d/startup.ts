// Issue 5's figures: size of the single binary, time from exec to the first accepted
// connection (the 220 greeting on the LMTP port), and idle RSS, for `deno run mod.ts`
// and for dist/stoken side by side. Run alone: `deno run -A scripts/bench.d/startup.ts`.
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { connect } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { REPO } from "./peers.ts";
import { freePort, memoryOf, must, sleep, start, stop } from "./procs.ts";
import { num, summarize, type Summary } from "./stats.ts";

export interface StartupRow {
  readonly target: string;
  readonly sizeMiB: number | null;
  readonly startMs: Summary | null;
  readonly idleRssMiB: Summary | null;
}

/** Milliseconds until a connection gets the first byte of the greeting. */
async function firstGreeting(port: number, t0: number, deadlineMs = 30_000): Promise<number> {
  for (;;) {
    const ms = await new Promise<number | null>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("data", () => {
        resolve(performance.now() - t0);
        s.destroy();
      });
      s.once("error", () => resolve(null));
    });
    if (ms !== null) return ms;
    if (performance.now() - t0 > deadlineMs) throw new Error("server did not start");
    await sleep(2);
  }
}

async function setup(cmd: string[], dir: string): Promise<{ config: string; lmtp: number }> {
  await must(cmd[0]!, [...cmd.slice(1), "init", "--dir", dir], { cwd: REPO });
  const config = join(dir, "stoken.json");
  const json = JSON.parse(await readFile(config, "utf8"));
  const [a, b, lmtp] = [await freePort(), await freePort(), await freePort()];
  json.listen = {
    submission: [`127.0.0.1:${a}`],
    submissions: [`127.0.0.1:${b}`],
    lmtp: [`127.0.0.1:${lmtp}`],
  };
  await writeFile(config, JSON.stringify(json));
  return { config, lmtp };
}

export async function measureStartup(work: string, repetitions = 5): Promise<StartupRow[]> {
  const deno = process.execPath;
  const binary = join(REPO, "dist", "stoken");
  const targets: [string, string[]][] = [["deno run mod.ts", [
    deno,
    "run",
    "-A",
    join(REPO, "mod.ts"),
  ]]];
  const hasBinary = await stat(binary).then(() => true, () => false);
  if (hasBinary) targets.push(["dist/stoken", [binary]]);
  const rows: StartupRow[] = [];
  for (const [name, cmd] of targets) {
    const dir = join(work, `startup-${rows.length}`);
    const { config, lmtp } = await setup(cmd, dir);
    const starts: number[] = [];
    const rss: number[] = [];
    for (let i = 0; i < repetitions; i++) {
      const t0 = performance.now();
      const p = await start(`startup ${name}`, cmd[0]!, [
        ...cmd.slice(1),
        "serve",
        "--config",
        config,
      ], {
        cwd: REPO,
        log: join(dir, "serve.log"),
      });
      try {
        starts.push(await firstGreeting(lmtp, t0));
        await sleep(1000); // settle: JIT and GC after start-up
        rss.push((await memoryOf(p.pid)).rssKiB / 1024);
      } finally {
        await stop(p);
      }
    }
    rows.push({
      target: name,
      sizeMiB: name === "dist/stoken" ? (await stat(binary)).size / 1048576 : null,
      startMs: summarize(starts),
      idleRssMiB: summarize(rss),
    });
  }
  return rows;
}

export function startupTable(rows: StartupRow[]): string {
  const lines = [
    "| target | binary size MiB | start to first greeting ms | idle RSS MiB |",
    "|---|---|---|---|",
  ];
  for (const r of rows) {
    const cell = (s: Summary | null) => s ? `${num(s.median)} (${num(s.min)}–${num(s.max)})` : "—";
    lines.push(
      `| ${r.target} | ${r.sizeMiB === null ? "–" : num(r.sizeMiB)} | ${cell(r.startMs)} | ${
        cell(r.idleRssMiB)
      } |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const work = await mkdtemp(join(tmpdir(), "stoken-startup-"));
  try {
    console.log(startupTable(await measureStartup(work)));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
