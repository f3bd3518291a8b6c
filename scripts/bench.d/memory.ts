// M1: resident memory per idle connection; M2: resident memory growth while one large
// message arrives. Both read VmRSS / VmHWM from /proc/<pid>/status of a fresh server.
import { connect, type Socket } from "node:net";
import { memoryOf, run, sleep } from "./procs.ts";
import { RCPT, SENDER, type Target } from "./peers.ts";

/** Connections are opened in waves of this size so the listen backlog never overflows. */
const WAVE = 200;

export interface M1Result {
  readonly connections: number;
  readonly refused: number;
  readonly beforeKiB: number;
  readonly afterKiB: number;
  readonly perConnKiB: number;
}

/** One idle client: connected and greeted, then silent. */
function idleClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port });
    let buf = "";
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error("No greeting within 10 s"));
    }, 10_000);
    s.setEncoding("latin1");
    const onData = (d: string) => {
      buf += d;
      if (!buf.includes("\r\n")) return;
      clearTimeout(t);
      s.off("data", onData);
      if (buf.startsWith("220")) resolve(s);
      else {
        s.destroy();
        reject(new Error(`Refused: ${buf.trim()}`));
      }
    };
    s.on("data", onData);
    s.on("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

/** Warm the server up (JIT, first heap growth) with a few messages before measuring. */
export async function warmUp(t: Target, messages = 200): Promise<void> {
  await run("smtp-source", [
    "-L",
    "-d",
    "-s",
    "4",
    "-m",
    String(messages),
    "-l",
    "1024",
    "-f",
    SENDER,
    "-t",
    RCPT,
    "-M",
    "localhost",
    `127.0.0.1:${t.lmtpPort}`,
  ]);
}

export async function m1(t: Target, connections: number): Promise<M1Result> {
  await sleep(1000);
  const before = (await memoryOf(t.proc.pid)).rssKiB;
  const sockets: Socket[] = [];
  let refused = 0;
  try {
    for (let opened = 0; opened < connections; opened += WAVE) {
      const wave = Math.min(WAVE, connections - opened);
      const results = await Promise.allSettled(
        Array.from({ length: wave }, () => idleClient(t.lmtpPort)),
      );
      for (const r of results) {
        if (r.status === "fulfilled") sockets.push(r.value);
        else refused++;
      }
    }
    // Let the server settle (accept-side buffers, timers) before reading its memory.
    await sleep(2000);
    const after = (await memoryOf(t.proc.pid)).rssKiB;
    return {
      connections: sockets.length,
      refused,
      beforeKiB: before,
      afterKiB: after,
      perConnKiB: sockets.length ? (after - before) / sockets.length : NaN,
    };
  } finally {
    for (const s of sockets) s.destroy();
    await sleep(500);
  }
}

export interface M2Result {
  readonly bytes: number;
  readonly beforeKiB: number;
  readonly peakKiB: number;
  readonly growthKiB: number;
  readonly seconds: number;
  readonly error?: string;
}

export async function m2(t: Target, megabytes: number): Promise<M2Result> {
  await sleep(500);
  const before = await memoryOf(t.proc.pid);
  let sampled = before.rssKiB;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      try {
        sampled = Math.max(sampled, (await memoryOf(t.proc.pid)).rssKiB);
      } catch {
        return;
      }
      await sleep(20);
    }
  })();
  const bytes = megabytes * 1_000_000;
  const r = await run("smtp-source", [
    "-L",
    "-m",
    "1",
    "-l",
    String(bytes),
    "-f",
    SENDER,
    "-t",
    RCPT,
    "-M",
    "localhost",
    `127.0.0.1:${t.lmtpPort}`,
  ], { timeoutMs: 300_000 });
  sampling = false;
  await sampler;
  const after = await memoryOf(t.proc.pid);
  // VmHWM counts the whole life of the process: use it only when it moved during the run.
  const peak = Math.max(sampled, after.hwmKiB > before.hwmKiB ? after.hwmKiB : 0);
  return {
    bytes,
    beforeKiB: before.rssKiB,
    peakKiB: peak,
    growthKiB: peak - before.rssKiB,
    seconds: r.seconds,
    ...(r.code === 0 ? {} : { error: (r.stderr || r.stdout).trim().split("\n")[0] ?? "" }),
  };
}
