import { assert, assertEquals } from "../assert.ts";
import { Logger, MAX_FIELD_LENGTH } from "../../src/server/log.ts";

function capture(level: "debug" | "info" | "warn" | "error" = "info") {
  const lines: string[] = [];
  const log = new Logger(level, {
    write: (l) => lines.push(l),
    now: () => new Date("2025-01-02T03:04:05.678Z"),
  });
  return { log, lines, parsed: () => lines.map((l) => JSON.parse(l)) };
}

Deno.test("log: one JSON line per event with ts, level, event first", () => {
  const { log, lines, parsed } = capture();
  log.info("connect", { ip: "192.0.2.1", port: 4000, secure: false });
  assertEquals(lines.length, 1);
  assert(!lines[0]!.includes("\n"));
  assertEquals(
    lines[0],
    '{"ts":"2025-01-02T03:04:05.678Z","level":"info","event":"connect","ip":"192.0.2.1","port":4000,"secure":false}',
  );
  assertEquals(parsed()[0].event, "connect");
});

Deno.test("log: events below the minimum level are dropped", () => {
  const { log, parsed } = capture("warn");
  log.debug("a");
  log.info("b");
  log.warn("c");
  log.error("d");
  assertEquals(parsed().map((l) => [l.level, l.event]), [["warn", "c"], ["error", "d"]]);
  assert(!log.enabled("info"));
  assert(log.enabled("error"));
});

Deno.test("log: child adds fixed fields, nested children merge", () => {
  const { log, parsed } = capture();
  const session = log.child({ session: "abc", listener: "submission" }).child({ ip: "::1" });
  session.info("tls", { cipher: "x" });
  log.info("plain");
  const [a, b] = parsed();
  assertEquals(a, {
    ts: "2025-01-02T03:04:05.678Z",
    level: "info",
    event: "tls",
    session: "abc",
    listener: "submission",
    ip: "::1",
    cipher: "x",
  });
  assertEquals(b.session, undefined, "the parent is unchanged");
});

Deno.test("log: long strings are cut to the limit, errors become their message", () => {
  const { log, parsed } = capture();
  log.error("failed", { cause: new Error("x".repeat(500)), line: "y".repeat(201), short: "ok" });
  const l = parsed()[0];
  assertEquals(l.cause.length, MAX_FIELD_LENGTH);
  assertEquals(l.line.length, MAX_FIELD_LENGTH);
  assert(l.line.endsWith("…"));
  assertEquals(l.short, "ok");
});

Deno.test("log: undefined fields are left out, reserved keys cannot be overwritten", () => {
  const { log, parsed } = capture();
  log.info("e", { gone: undefined, level: "error", event: "forged", ts: "then" });
  assertEquals(parsed()[0], { ts: "2025-01-02T03:04:05.678Z", level: "info", event: "e" });
});

Deno.test("log: CR and LF in a field cannot start a new line", () => {
  const { log, lines } = capture();
  log.info("e", { helo: 'evil\r\n{"level":"error"}' });
  assertEquals(lines.length, 1);
  assert(!/[\r\n]/.test(lines[0]!));
});

Deno.test("log: a throwing writer does not throw to the caller", () => {
  let calls = 0;
  const log = new Logger("info", {
    write: () => {
      calls++;
      throw new Error("stderr closed");
    },
  });
  log.info("e");
  assertEquals(calls, 1);
});

Deno.test("log: writes to stderr by default", async () => {
  const code = `import { Logger } from ${
    JSON.stringify(new URL("../../src/server/log.ts", import.meta.url).href)
  };
new Logger().info("hello", { n: 1 }); new Logger().debug("hidden");`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(new TextDecoder().decode(out.stdout), "");
  const lines = new TextDecoder().decode(out.stderr).trim().split("\n");
  assertEquals(lines.length, 1);
  const l = JSON.parse(lines[0]!);
  assertEquals([l.level, l.event, l.n], ["info", "hello", 1]);
});

/** Run `code` in a fresh Deno with `Logger` imported; its stdout and stderr. */
async function evalWithLogger(code: string): Promise<{ stdout: string; stderr: string }> {
  const url = JSON.stringify(new URL("../../src/server/log.ts", import.meta.url).href);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", `import { Logger } from ${url};\nimport process from "node:process";\n${code}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Counts process.stderr.write calls (and keeps what each wrote) in the child. */
const COUNT_WRITES = `
const writes = [];
const realWrite = process.stderr.write.bind(process.stderr);
process.stderr.write = (s) => { writes.push(String(s)); return realWrite(s); };
`;

Deno.test("log: lines of one event-loop turn go to stderr in one write", async () => {
  const { stdout, stderr } = await evalWithLogger(`${COUNT_WRITES}
const log = new Logger("info");
const child = log.child({ session: "s1" });
for (let i = 0; i < 3; i++) child.info("line", { i });
await Promise.resolve();
for (let i = 3; i < 5; i++) child.info("line", { i });
const during = writes.length;
await new Promise((r) => setTimeout(r, 0));
log.info("next turn");
await new Promise((r) => setTimeout(r, 0));
console.log(JSON.stringify({ during, writes }));`);
  const { during, writes } = JSON.parse(stdout) as { during: number; writes: string[] };
  assertEquals(during, 0, "nothing is written while the turn runs");
  assertEquals(writes.length, 2, "one write per turn");
  const first = writes[0]!.split("\n");
  assertEquals(first.pop(), "", "the batch ends with a newline");
  assertEquals(first.map((l) => JSON.parse(l).i), [0, 1, 2, 3, 4]);
  assert(first.every((l) => JSON.parse(l).session === "s1"));
  assertEquals(JSON.parse(writes[1]!).event, "next turn");
  assertEquals(stderr.trim().split("\n").length, 6, "one JSON object per line");
});

Deno.test("log: error lines, flush() and a large batch are written at once", async () => {
  const { stdout } = await evalWithLogger(`${COUNT_WRITES}
const log = new Logger("info");
log.info("queued");
const n0 = writes.length;
log.error("failed", { cause: "x" });
const n1 = writes.length;
log.info("before stop");
log.flush();
const n2 = writes.length;
log.flush();
const n3 = writes.length;
for (let i = 0; i < 1000; i++) log.info("bulk", { pad: "p".repeat(100) });
const n4 = writes.length;
console.log(JSON.stringify({ n0, n1, n2, n3, n4, first: writes[0] }));
log.flush();`);
  const r = JSON.parse(stdout);
  assertEquals(
    [r.n0, r.n1, r.n2, r.n3],
    [0, 1, 2, 2],
    "error and flush() write, an empty flush does not",
  );
  assertEquals(
    r.first.trim().split("\n").map((l: string) => JSON.parse(l).event),
    ["queued", "failed"],
    "an error line takes the lines queued before it along, in order",
  );
  assert(r.n4 > 2, "more than 64 KiB queued is written without waiting for the turn to end");
});

Deno.test("log: lines queued when the process exits are not lost", async () => {
  const { stderr } = await evalWithLogger(`
const log = new Logger("info");
log.info("last words", { n: 1 });
log.warn("and these");
process.exit(0);`);
  const lines = stderr.trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(lines.map((l) => l.event), ["last words", "and these"]);
});
