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
