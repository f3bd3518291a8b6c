import { assert, assertEquals } from "../assert.ts";
import { LineReader } from "../../src/protocol/line_reader.ts";
import { bytes, rng, text } from "./_bytes.ts";

const TOO_LONG = "<too_long>";

function drain(r: LineReader): string[] {
  const out: string[] = [];
  for (let l = r.next(); l !== null; l = r.next()) out.push(l.kind === "line" ? l.text : TOO_LONG);
  return out;
}

/** Feeds the pieces one by one, draining after each, as a session does. */
function feed(maxLine: number, pieces: readonly string[]): string[] {
  const r = new LineReader(maxLine);
  const out: string[] = [];
  for (const p of pieces) {
    r.push(bytes(p));
    out.push(...drain(r));
  }
  return out;
}

/** Every way to cut input in two, and one byte at a time, must give the same lines. */
function assertAllSplits(maxLine: number, input: string, expected: string[]): void {
  for (let cut = 0; cut <= input.length; cut++) {
    assertEquals(
      feed(maxLine, [input.slice(0, cut), input.slice(cut)]),
      expected,
      `split at ${cut} of ${JSON.stringify(input)}`,
    );
  }
  assertEquals(feed(maxLine, [...input]), expected, `byte by byte: ${JSON.stringify(input)}`);
}

const cases: { name: string; max: number; input: string; lines: string[] }[] = [
  { name: "two lines", max: 100, input: "EHLO x\r\nNOOP\r\n", lines: ["EHLO x", "NOOP"] },
  { name: "empty line", max: 100, input: "\r\nNOOP\r\n", lines: ["", "NOOP"] },
  { name: "partial line waits", max: 100, input: "NOOP\r\nQUI", lines: ["NOOP"] },
  { name: "bare LF stays in the line", max: 100, input: "a\nb\r\n", lines: ["a\nb"] },
  { name: "bare CR stays in the line", max: 100, input: "a\rb\r\n", lines: ["a\rb"] },
  { name: "CR before CRLF stays", max: 100, input: "a\r\r\n", lines: ["a\r"] },
  { name: "LF CR LF", max: 100, input: "a\n\r\nb\r\n", lines: ["a\n", "b"] },
  { name: "LF alone is no line end", max: 100, input: "a\nb\nc", lines: [] },
  { name: "exactly the limit", max: 4, input: "abcd\r\nx\r\n", lines: ["abcd", "x"] },
  { name: "one over the limit", max: 4, input: "abcde\r\nx\r\n", lines: [TOO_LONG, "x"] },
  {
    name: "long line between lines",
    max: 10,
    input: "NOOP\r\n" + "x".repeat(25) + "\r\nQUIT\r\n",
    lines: ["NOOP", TOO_LONG, "QUIT"],
  },
  {
    name: "bare LF inside the long line does not end it",
    max: 5,
    input: "xxxxxxxx\nQUIT\r\nNOOP\r\n",
    lines: [TOO_LONG, "NOOP"],
  },
  {
    name: "CR at the limit, then a non-LF",
    max: 4,
    input: "abcd\rX\r\nNOOP\r\n",
    lines: [TOO_LONG, "NOOP"],
  },
  {
    name: "two long lines in a row",
    max: 3,
    input: "aaaa\r\nbbbbb\r\nok\r\n",
    lines: [TOO_LONG, TOO_LONG, "ok"],
  },
];

for (const c of cases) {
  Deno.test(`LineReader: ${c.name}, at every split point`, () => {
    assertAllSplits(c.max, c.input, c.lines);
  });
}

Deno.test("LineReader: CR at the end of one chunk and LF at the start of the next is a CRLF", () => {
  assertEquals(feed(100, ["NOOP\r", "\nQUIT\r", "\n"]), ["NOOP", "QUIT"]);
});

Deno.test("LineReader: too_long is reported at once, before any CRLF arrives", () => {
  const r = new LineReader(8);
  r.push(bytes("123456789"));
  assertEquals(r.next(), { kind: "too_long" });
  assertEquals(r.next(), null);
  r.push(bytes("more and more"));
  assertEquals(r.next(), null, "reported only once");
  r.push(bytes("\r\nNOOP\r\n"));
  assertEquals(r.next(), { kind: "line", text: "NOOP" });
  assertEquals(r.next(), null);
});

Deno.test("LineReader: a line of maxLine octets whose CR ends the chunk is not too long", () => {
  const r = new LineReader(4);
  r.push(bytes("abcd\r"));
  assertEquals(r.next(), null);
  r.push(bytes("\n"));
  assertEquals(r.next(), { kind: "line", text: "abcd" });
});

Deno.test("LineReader: 1 MB without a newline in one push keeps the buffer bounded", () => {
  const max = 512;
  const r = new LineReader(max);
  r.push(new Uint8Array(1 << 20).fill(0x41));
  assert(r.buffered <= max + 2, `buffered ${r.buffered}`);
  assertEquals(r.next(), { kind: "too_long" });
  assertEquals(r.next(), null);
  r.push(bytes("\r\nQUIT\r\n"));
  assertEquals(drain(r), ["QUIT"]);
  assertEquals(r.buffered, 0);
});

Deno.test("LineReader: 1 MB without a newline in small chunks keeps the buffer bounded", () => {
  const max = 512;
  const r = new LineReader(max);
  const chunk = new Uint8Array(1000).fill(0x42);
  const seen: string[] = [];
  let most = 0;
  for (let sent = 0; sent < 1 << 20; sent += chunk.length) {
    r.push(chunk);
    most = Math.max(most, r.buffered);
    seen.push(...drain(r));
  }
  assert(most <= max + 2, `buffered up to ${most}`);
  assertEquals(seen, [TOO_LONG]);
  r.push(bytes("\r\nQUIT\r\n"));
  assertEquals(drain(r), ["QUIT"]);
});

Deno.test("LineReader: takeRest returns the unread bytes and leaves nothing behind", () => {
  const r = new LineReader(100);
  r.push(bytes("DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQU"));
  assertEquals(r.next(), { kind: "line", text: "DATA" });
  assertEquals(r.buffered, "Subject: x\r\n\r\nbody\r\n.\r\nQU".length);
  assertEquals(text(r.takeRest()), "Subject: x\r\n\r\nbody\r\n.\r\nQU");
  assertEquals(r.buffered, 0);
  assertEquals(r.next(), null);
  r.push(bytes("IT\r\n"));
  assertEquals(drain(r), ["IT"], "the partial line went with takeRest");
});

Deno.test("LineReader: takeRest keeps a pending CR", () => {
  const r = new LineReader(100);
  r.push(bytes("DATA\r\nabc\r"));
  assertEquals(r.next(), { kind: "line", text: "DATA" });
  assertEquals(text(r.takeRest()), "abc\r");
});

Deno.test("LineReader: clear drops lines pipelined after STARTTLS (RFC 3207 §4.2)", () => {
  const r = new LineReader(100);
  r.push(bytes("STARTTLS\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d"));
  assertEquals(r.next(), { kind: "line", text: "STARTTLS" });
  r.clear();
  assertEquals(r.buffered, 0);
  assertEquals(r.next(), null);
  r.push(bytes("EHLO x\r\n"));
  assertEquals(drain(r), ["EHLO x"]);
});

Deno.test("LineReader: clear also ends the skipping of an over-long line", () => {
  const r = new LineReader(3);
  r.push(bytes("abcdef"));
  assertEquals(r.next(), { kind: "too_long" });
  r.clear();
  r.push(bytes("ok\r\n"));
  assertEquals(drain(r), ["ok"]);
});

Deno.test("LineReader: the pushed chunk may be reused by the caller", () => {
  const r = new LineReader(100);
  const buf = bytes("NOOP\r\nRSET\r\nQU");
  r.push(buf);
  buf.fill(0x58);
  r.push(bytes("IT\r\n"));
  assertEquals(drain(r), ["NOOP", "RSET", "QUIT"]);
});

Deno.test("LineReader: buffered counts queued lines and the partial line", () => {
  const r = new LineReader(100);
  r.push(bytes("NOOP\r\nRS"));
  assertEquals(r.buffered, 8);
  r.next();
  assertEquals(r.buffered, 2);
});

Deno.test("LineReader: 8-bit octets are decoded as ISO-8859-1", () => {
  const r = new LineReader(100);
  r.push(new Uint8Array([0x41, 0x80, 0x9f, 0xe9, 0xff, 13, 10]));
  assertEquals(r.next(), { kind: "line", text: "A\x80\x9f\xe9\xff" });
});

Deno.test("LineReader: many lines in one chunk are all returned in order", () => {
  const r = new LineReader(100);
  const lines = Array.from({ length: 1000 }, (_, i) => `NOOP ${i}`);
  r.push(bytes(lines.map((l) => l + "\r\n").join("")));
  assertEquals(drain(r), lines);
});

Deno.test("LineReader: the limit must be a positive integer", () => {
  let threw = false;
  try {
    new LineReader(0);
  } catch {
    threw = true;
  }
  assert(threw);
});

// Random lines (bare CRs and LFs, 8-bit octets, some over the limit) fed in random chunk
// sizes, with a takeRest() after a random line: lines and rest must come back exactly.
Deno.test("LineReader: random lines round-trip in random chunks", () => {
  const next = rng(7_2026);
  const alphabet = "ab \r\n.\x00\x80\x9f\xe9\xff";
  const max = 20;
  for (let round = 0; round < 300; round++) {
    const lines: string[] = [];
    const count = 1 + Math.floor(next() * 15);
    for (let i = 0; i < count; i++) {
      let line = "";
      const len = Math.floor(next() * (next() < 0.2 ? 60 : 15));
      for (let j = 0; j < len; j++) {
        const c = alphabet[Math.floor(next() * alphabet.length)] ?? "a";
        if (!(c === "\n" && line.endsWith("\r"))) line += c; // no CRLF inside a line
      }
      lines.push(line);
    }
    // takeRest() right after a line, as a session does after DATA: after line stop - 1.
    const fits = lines.flatMap((l, i) => (l.length <= max ? [i + 1] : []));
    const stop = fits[Math.floor(next() * fits.length)] ?? count;
    const input = lines.map((l) => l + "\r\n").join("");
    const all = bytes(input);
    const r = new LineReader(max);
    const got: string[] = [];
    let rest = "";
    let o = 0;
    while (o < all.length) {
      const n = 1 + Math.floor(next() * (next() < 0.5 ? 3 : 50));
      r.push(all.slice(o, o + n));
      o += n;
      while (got.length < stop) {
        const l = r.next();
        if (l === null) break;
        got.push(l.kind === "line" ? l.text : TOO_LONG);
      }
      if (got.length === stop) {
        rest = text(r.takeRest()) + text(all.subarray(o));
        break;
      }
    }
    const want = lines.slice(0, stop).map((l) => (l.length > max ? TOO_LONG : l));
    assertEquals(got, want, `round ${round}`);
    if (fits.length === 0) continue; // no line to take the rest after
    assertEquals(rest, lines.slice(stop).map((l) => l + "\r\n").join(""), `rest, round ${round}`);
  }
});

Deno.test("LineReader: a long line behind DATA is kept whole for takeRest", () => {
  const r = new LineReader(16);
  const long = "x".repeat(40);
  r.push(bytes(`DATA\r\n${long}`));
  r.push(bytes(long));
  assertEquals(r.next(), { kind: "line", text: "DATA" });
  assertEquals(text(r.takeRest()), long + long);
});

Deno.test("LineReader: a complete long line behind DATA is kept whole for takeRest", () => {
  const r = new LineReader(16);
  const body = `${"y".repeat(40)}\r\nshort\r\n${"z".repeat(30)}\r\n.\r\n`;
  r.push(bytes(`DATA\r\n${body}`));
  assertEquals(r.next(), { kind: "line", text: "DATA" });
  assertEquals(text(r.takeRest()), body);
});

Deno.test("LineReader: a long partial line behind a line is reported once its turn comes", () => {
  const r = new LineReader(16);
  r.push(bytes(`NOOP\r\n${"x".repeat(40)}`));
  assertEquals(r.next(), { kind: "line", text: "NOOP" });
  assertEquals(r.next(), { kind: "too_long" });
  assertEquals(r.next(), null);
  assert(r.buffered <= 17, `buffered ${r.buffered}`);
  r.push(bytes("xxx\r\nQUIT\r\n"));
  assertEquals(drain(r), ["QUIT"]);
});
