import { assert, assertEquals } from "../assert.ts";
import { DataReader } from "../../src/protocol/data_reader.ts";
import { bytes, concat, rng, text } from "./_bytes.ts";

interface Outcome {
  body: string;
  /** Offset in the whole input just after the terminator, or -1 if not reached. */
  end: number;
  bareNewline: boolean;
  tooLarge: boolean;
  size: number;
}

function read(maxSize: number, pieces: readonly Uint8Array[]): Outcome {
  const r = new DataReader(maxSize);
  const body: Uint8Array[] = [];
  let offset = 0;
  let end = -1;
  for (const p of pieces) {
    if (end >= 0) break;
    const step = r.push(p);
    // Copy now: the views point into the chunk.
    for (const b of step.body) body.push(b.slice());
    if (step.done) {
      assert(step.consumed <= p.length);
      end = offset + step.consumed;
    } else {
      assertEquals(step.consumed, p.length, "a chunk that does not finish DATA is consumed whole");
    }
    offset += p.length;
  }
  return {
    body: text(concat(body)),
    end,
    bareNewline: r.bareNewline,
    tooLarge: r.tooLarge,
    size: r.size,
  };
}

/**
 * The outcome must not depend on where the input is cut. Once a message is flagged (bare
 * newline, too large) how much body came out before depends on the cuts, so then the body
 * only has to be a prefix of `clean`: what precedes the offending byte.
 */
function assertSplitInvariant(maxSize: number, input: string, want: Outcome, clean?: string): void {
  const all = bytes(input);
  const check = (got: Outcome, what: string) => {
    if (clean === undefined) return assertEquals(got, want, what);
    assert(
      clean.startsWith(got.body),
      `${what}: body ${JSON.stringify(got.body)} beyond the clean prefix`,
    );
    assertEquals({ ...got, body: "" }, { ...want, body: "" }, what);
  };
  check(read(maxSize, [all]), "one chunk");
  for (let cut = 0; cut <= all.length; cut++) {
    check(
      read(maxSize, [all.subarray(0, cut), all.subarray(cut)]),
      `split at ${cut} of ${JSON.stringify(input)}`,
    );
  }
  const single = Array.from(all, (b) => new Uint8Array([b]));
  check(read(maxSize, single), `byte by byte: ${JSON.stringify(input)}`);
}

const ok = (body: string, end: number): Outcome => ({
  body,
  end,
  bareNewline: false,
  tooLarge: false,
  size: body.length,
});

const plain: { name: string; input: string; want: Outcome }[] = [
  { name: "empty message", input: ".\r\n", want: ok("", 3) },
  { name: "empty message, then a command", input: ".\r\nQUIT\r\n", want: ok("", 3) },
  { name: "one line", input: "a\r\n.\r\n", want: ok("a\r\n", 6) },
  { name: "one empty line", input: "\r\n.\r\n", want: ok("\r\n", 5) },
  {
    name: "headers and body, then pipelined commands",
    input: "Subject: x\r\n\r\nhello\r\n.\r\nMAIL FROM:<a@b.example>\r\n",
    want: ok("Subject: x\r\n\r\nhello\r\n", 24),
  },
  { name: "stuffed dot at start", input: "..\r\n.\r\n", want: ok(".\r\n", 7) },
  { name: "stuffed dot line", input: "a\r\n..\r\n.\r\n", want: ok("a\r\n.\r\n", 10) },
  { name: "stuffed dot before text", input: "..foo\r\n.\r\n", want: ok(".foo\r\n", 10) },
  { name: "single dot before text", input: ".foo\r\n.\r\n", want: ok("foo\r\n", 9) },
  { name: "three dots", input: "...\r\n.\r\n", want: ok("..\r\n", 8) },
  { name: "dot then space", input: ". \r\n.\r\n", want: ok(" \r\n", 7) },
  { name: "dot not at line start", input: "a.\r\na.b\r\n.\r\n", want: ok("a.\r\na.b\r\n", 12) },
  { name: "terminator needs its own line", input: "a\r\n.x\r\n.\r\n", want: ok("a\r\nx\r\n", 10) },
  {
    name: "8-bit octets and long lines are kept",
    input: `caf\xe9 ${"x".repeat(1500)}\r\n.\r\n`,
    want: ok(`caf\xe9 ${"x".repeat(1500)}\r\n`, 1510),
  },
];

for (const c of plain) {
  Deno.test(`DataReader: ${c.name}, at every split point`, () => {
    assertSplitInvariant(1000000, c.input, c.want);
  });
}

// SMTP smuggling: none of these ends DATA. Each must be read as text, mark the message
// bad, and the reader must go on to the real CRLF "." CRLF.
const smuggling = ["\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r.\r\n", ".\n", ".\r", "\r\n.\r"];

for (const seq of smuggling) {
  Deno.test(`DataReader: ${JSON.stringify(seq)} never ends DATA, at every split point`, () => {
    // Body may come out up to the offending byte: a CR only once its LF is seen.
    const head = "Subject: x\r\n\r\nhi";
    const clean = head + (seq.startsWith("\r\n") ? "\r\n" : seq.startsWith(".") ? "." : "");
    const input = `${head}${seq}MAIL FROM:<evil@example.com>\r\nRCPT TO:<x@y.example>\r\n` +
      `DATA\r\n\r\n.\r\nQUIT\r\n`;
    const end = input.length - "QUIT\r\n".length;
    const got = read(1000000, [bytes(input)]);
    assertEquals(got.end, end, "ends only at the real terminator");
    assert(got.bareNewline, "flagged as a bare line ending");
    assert(!got.body.includes("MAIL FROM"), "nothing after the bare line ending is emitted");
    assertSplitInvariant(1000000, input, got, clean);
  });

  Deno.test(`DataReader: ${JSON.stringify(seq)} at the very start never ends DATA`, () => {
    const input = `${seq}NOOP\r\n.\r\n`;
    const got = read(1000000, [bytes(input)]);
    assertEquals(got.end, input.length);
    assert(got.bareNewline);
    assertSplitInvariant(1000000, input, got, seq.startsWith("\r\n") ? "\r\n" : "");
  });
}

Deno.test("DataReader: a bare LF or CR anywhere is flagged, and the real terminator still ends", () => {
  for (
    const input of ["a\nb\r\n.\r\n", "a\rb\r\n.\r\n", "a\r\r\n.\r\n", "\n\r\n.\r\n", "a\n\r\n.\r\n"]
  ) {
    const got = read(1000, [bytes(input)]);
    assertEquals(got.end, input.length, JSON.stringify(input));
    assert(got.bareNewline, JSON.stringify(input));
    assertSplitInvariant(1000, input, got, "a");
  }
});

Deno.test("DataReader: body emitted before a bare newline stops at the line before it", () => {
  const r = new DataReader(1000);
  const first = r.push(bytes("line one\r\nline two\r\n"));
  assertEquals(text(concat(first.body)), "line one\r\nline two\r\n");
  const second = r.push(bytes("bad\nline\r\n.\r\n"));
  assertEquals(second.body, []);
  assert(second.done && r.bareNewline);
});

Deno.test("DataReader: over the size cap, no more body, drained to the terminator", () => {
  const body = "x".repeat(30) + "\r\n";
  const input = body + "more\r\n.\r\nRSET\r\n";
  const got = read(10, [bytes(input)]);
  assertEquals(got.end, input.length - "RSET\r\n".length);
  assert(got.tooLarge);
  assertEquals(got.size, body.length + "more\r\n".length, "size keeps counting past the cap");
  assertEquals(got.body, "", "nothing past the cap is emitted");
  assertSplitInvariant(10, input, got, "x".repeat(10));
});

Deno.test("DataReader: exactly maxSize octets is not too large", () => {
  const input = "12345678\r\n.\r\n";
  assertSplitInvariant(10, input, ok("12345678\r\n", input.length));
  const over = read(9, [bytes(input)]);
  assert(over.tooLarge);
  assertEquals(over.size, 10);
});

Deno.test("DataReader: stuffed dots do not count toward the size", () => {
  const got = read(3, [bytes("..\r\n.\r\n")]);
  assertEquals(got, ok(".\r\n", 7));
});

Deno.test("DataReader: pushes after the end consume nothing", () => {
  const r = new DataReader(100);
  assert(r.push(bytes(".\r\n")).done);
  assertEquals(r.push(bytes("NOOP\r\n")), { body: [], consumed: 0, done: true });
});

Deno.test("DataReader: a large chunk of plain lines comes back as one view", () => {
  const line = "The quick brown fox jumps over the lazy dog.\r\n";
  const chunk = bytes(line.repeat(20000));
  const r = new DataReader(10_000_000);
  const step = r.push(chunk);
  assertEquals(step.body.length, 1);
  assertEquals(step.body[0]?.length, chunk.length);
  assertEquals(step.body[0]?.buffer, chunk.buffer, "a view, not a copy");
});

Deno.test("DataReader: a chunk of bare CRs is flagged and drained", () => {
  const r = new DataReader(100);
  const step = r.push(new Uint8Array(200000).fill(13));
  assert(r.bareNewline && !step.done);
  assert(r.push(bytes("\n.\r\n")).done);
});

// Random messages of CRLF lines (dots, CRs and LFs only inside CRLF pairs), stuffed as
// RFC 5321 §4.5.2 says, fed in random chunk sizes: the body must come back exactly.
Deno.test("DataReader: random stuffed bodies round-trip in random chunks", () => {
  const next = rng(20260501);
  const alphabet = bytes(".. .ab\x00\xff\x7f\t:");
  for (let round = 0; round < 300; round++) {
    const lines: string[] = [];
    const count = Math.floor(next() * 20);
    for (let i = 0; i < count; i++) {
      let line = "";
      const len = Math.floor(next() * (next() < 0.1 ? 3000 : 12));
      for (let j = 0; j < len; j++) {
        line += String.fromCharCode(alphabet[Math.floor(next() * alphabet.length)] ?? 0x61);
      }
      lines.push(line + "\r\n");
    }
    const body = lines.join("");
    const stuffed = lines.map((l) => (l.startsWith(".") ? "." + l : l)).join("") + ".\r\nQUIT\r\n";
    const all = bytes(stuffed);
    const pieces: Uint8Array[] = [];
    for (let o = 0; o < all.length;) {
      const n = 1 + Math.floor(next() * (next() < 0.5 ? 4 : 200));
      pieces.push(all.slice(o, o + n));
      o += n;
    }
    const got = read(1 << 30, pieces);
    assertEquals(got, ok(body, stuffed.length - "QUIT\r\n".length), `round ${round}`);
  }
});
