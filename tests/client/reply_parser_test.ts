// Reply parsing as the client does it: framing, multi-line replies, enhanced codes, and the
// bounds that keep a hostile server from feeding it garbage or unbounded input.
import { assert, assertEquals, assertMatch, assertThrows } from "../assert.ts";
import {
  type ClientReply,
  MAX_REPLY_LINE,
  MAX_REPLY_LINES,
  ReplyParser,
  ReplyReader,
  summary,
} from "../../src/client/reply_parser.ts";
import { ClientError } from "../../src/client/errors.ts";
import { latin1Bytes } from "./_bytes.ts";

/** All complete replies in `wire`, fed in pieces of `step` bytes. */
function parse(wire: string, step = wire.length): ClientReply[] {
  const r = new ReplyReader();
  const out: ClientReply[] = [];
  const b = latin1Bytes(wire);
  for (let i = 0; i < b.length; i += step) {
    r.push(b.subarray(i, i + step));
    for (let x = r.next(); x !== null; x = r.next()) out.push(x);
  }
  return out;
}

function protocolError(fn: () => unknown): ClientError {
  const e = assertThrows(fn);
  assert(e instanceof ClientError, `expected a ClientError, got ${e}`);
  assertEquals(e.kind, "protocol");
  return e;
}

Deno.test("a single-line reply with an enhanced code", () => {
  assertEquals(parse("250 2.1.5 OK\r\n"), [
    { code: 250, enhanced: "2.1.5", text: "OK", lines: ["OK"] },
  ]);
});

Deno.test("a reply without enhanced code keeps its whole text", () => {
  assertEquals(parse("220 mail.a.test ESMTP stoken\r\n"), [
    { code: 220, text: "mail.a.test ESMTP stoken", lines: ["mail.a.test ESMTP stoken"] },
  ]);
});

Deno.test("a multi-line EHLO reply, fed one byte at a time", () => {
  const wire = "250-mail.a.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 STOKEN\r\n";
  const want = [{
    code: 250,
    text: "mail.a.test\nPIPELINING\nSIZE 1000\nSTOKEN",
    lines: ["mail.a.test", "PIPELINING", "SIZE 1000", "STOKEN"],
  }];
  assertEquals(parse(wire, 1), want);
  assertEquals(parse(wire), want);
});

Deno.test("the enhanced code is stripped from every line that repeats it", () => {
  assertEquals(parse("550-5.7.1 first\r\n550-5.7.1\r\n550 5.7.1 last\r\n"), [
    { code: 550, enhanced: "5.7.1", text: "first\n\nlast", lines: ["first", "", "last"] },
  ]);
});

Deno.test("an enhanced code of another class is plain text (RFC 3463 §2)", () => {
  assertEquals(parse("250 5.0.0 odd\r\n")[0], {
    code: 250,
    text: "5.0.0 odd",
    lines: ["5.0.0 odd"],
  });
});

Deno.test("the 2.1.13 token reply is parsed into its fields' text", () => {
  const [r] = parse("250 2.1.13 <u@foo.com> etLBdTj1iGxxxxxxxxxx NRaaVe83QN Saved\r\n");
  assertEquals(r?.enhanced, "2.1.13");
  assertEquals(r?.text, "<u@foo.com> etLBdTj1iGxxxxxxxxxx NRaaVe83QN Saved");
});

Deno.test("a bare code, and a code with an empty text, are valid last lines", () => {
  // smtp-sink ends its EHLO list with "250 " (empty text); RFC 5321 §4.2 allows "250" too.
  assertEquals(parse("250\r\n250 \r\n250-x\r\n250\r\n"), [
    { code: 250, text: "", lines: [""] },
    { code: 250, text: "", lines: [""] },
    { code: 250, text: "x\n", lines: ["x", ""] },
  ]);
});

Deno.test("several replies in one chunk come out one by one, in order", () => {
  const got = parse("250 2.1.0 OK\r\n550 5.7.1 no\r\n354 go\r\n");
  assertEquals(got.map((r) => r.code), [250, 550, 354]);
});

Deno.test("an incomplete reply waits for more input", () => {
  const r = new ReplyReader();
  r.push(latin1Bytes("250-a\r\n250 b"));
  assertEquals(r.next(), null);
  r.push(latin1Bytes("\r\n"));
  assertEquals(r.next()?.lines, ["a", "b"]);
});

Deno.test("malformed reply codes are protocol errors", () => {
  for (
    const bad of [
      "hello\r\n",
      "25 OK\r\n",
      "2500 OK\r\n",
      "250OK\r\n",
      "650 OK\r\n",
      "190 OK\r\n",
      "260 OK\r\n",
      "25a OK\r\n",
      "\r\n",
      "250\tOK\r\n",
      "250 a\nb\r\n",
      "250 a\rb\r\n",
    ]
  ) {
    protocolError(() => parse(bad));
  }
});

Deno.test("a reply whose code changes between lines is a protocol error", () => {
  protocolError(() => parse("250-a\r\n251 b\r\n"));
});

Deno.test("the error message quotes only the start of a bad line", () => {
  const secret = "xyzSECRETTOKENabcdef";
  const e = protocolError(() => parse(`${secret}\r\n`));
  assert(!e.message.includes("SECRET"), e.message);
  assertMatch(e.message, /"xyzS"/);
});

Deno.test(`a reply line of ${MAX_REPLY_LINE} octets passes, one more is a protocol error`, () => {
  const ok = "250 " + "x".repeat(MAX_REPLY_LINE - 4);
  assertEquals(parse(ok + "\r\n")[0]?.text.length, MAX_REPLY_LINE - 4);
  const e = protocolError(() => parse(ok + "y\r\n", 1000));
  assertMatch(e.message, /longer than 4096/);
});

Deno.test("an endless line without CRLF is refused without being held", () => {
  const r = new ReplyReader();
  const junk = new Uint8Array(64 * 1024).fill(0x41);
  r.push(junk);
  assert(r.buffered <= MAX_REPLY_LINE + 1, `buffered ${r.buffered}`);
  protocolError(() => r.next());
});

Deno.test(`a reply of ${MAX_REPLY_LINES} lines passes, one more is a protocol error`, () => {
  const lines = (n: number) => "250-x\r\n".repeat(n - 1) + "250 end\r\n";
  assertEquals(parse(lines(MAX_REPLY_LINES))[0]?.lines.length, MAX_REPLY_LINES);
  const e = protocolError(() => parse(lines(MAX_REPLY_LINES + 1)));
  assertMatch(e.message, /more than 100 lines/);
});

Deno.test("clear() forgets buffered lines and a partial reply (STARTTLS)", () => {
  const r = new ReplyReader();
  r.push(latin1Bytes("250-injected\r\n250 STOKEN\r\n250-half"));
  r.clear();
  assertEquals(r.buffered, 0);
  r.push(latin1Bytes("250 real\r\n"));
  assertEquals(r.next()?.lines, ["real"]);
  // A partial reply in the parser itself is forgotten too.
  const p = new ReplyParser();
  assertEquals(p.push("250-first"), null);
  p.reset();
  assertEquals(p.push("354 go")?.lines, ["go"]);
});

Deno.test("8-bit reply text is decoded byte for byte", () => {
  assertEquals(parse("250 caf\xe9\r\n")[0]?.text, "caf\xe9");
});

Deno.test("summary() shows the code, enhanced code and first line", () => {
  assertEquals(summary(parse("550-5.7.1 Invalid\r\n550 5.7.1 more\r\n")[0]!), "550 5.7.1 Invalid");
  assertEquals(summary(parse("220 hi\r\n")[0]!), "220 hi");
});
