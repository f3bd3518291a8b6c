import { assertEquals, assertMatch } from "../assert.ts";
import { receivedHeader, rfc5322Date, type TraceInfo } from "../../src/protocol/trace.ts";

Deno.test("rfc5322Date: UTC, two-digit day, +0000", () => {
  assertEquals(
    rfc5322Date(new Date(Date.UTC(2026, 10, 28, 13, 45, 1))),
    "Sat, 28 Nov 2026 13:45:01 +0000",
  );
  assertEquals(
    rfc5322Date(new Date(Date.UTC(2024, 0, 1, 0, 0, 0))),
    "Mon, 01 Jan 2024 00:00:00 +0000",
  );
  assertEquals(
    rfc5322Date(new Date(Date.UTC(2025, 11, 31, 23, 59, 59, 999))),
    "Wed, 31 Dec 2025 23:59:59 +0000",
  );
});

Deno.test("rfc5322Date: an invalid date throws", () => {
  let threw = false;
  try {
    rfc5322Date(new Date(NaN));
  } catch {
    threw = true;
  }
  assertEquals(threw, true);
});

const base: TraceInfo = {
  helo: "mx.remote.example",
  ip: "192.0.2.7",
  host: "mail.foo.com",
  protocol: "LMTPSA",
  id: "a1B2c3D4e5",
  rcpt: "local@foo.com",
  date: new Date(Date.UTC(2026, 10, 28, 13, 45, 1)),
};

Deno.test("receivedHeader: with a recipient", () => {
  assertEquals(
    receivedHeader(base),
    "Received: from mx.remote.example ([192.0.2.7])\r\n" +
      "\tby mail.foo.com with LMTPSA id a1B2c3D4e5\r\n" +
      "\tfor <local@foo.com>; Sat, 28 Nov 2026 13:45:01 +0000\r\n",
  );
});

Deno.test("receivedHeader: without a recipient", () => {
  assertEquals(
    receivedHeader({ ...base, rcpt: undefined, protocol: "ESMTPSA" }),
    "Received: from mx.remote.example ([192.0.2.7])\r\n" +
      "\tby mail.foo.com with ESMTPSA id a1B2c3D4e5;\r\n" +
      "\tSat, 28 Nov 2026 13:45:01 +0000\r\n",
  );
});

Deno.test("receivedHeader: client addresses become address literals", () => {
  const ip = (ip: string) => receivedHeader({ ...base, ip }).split("\r\n")[0] ?? "";
  assertEquals(ip("2001:db8::1"), "Received: from mx.remote.example ([IPv6:2001:db8::1])");
  assertEquals(ip("[192.0.2.7]"), "Received: from mx.remote.example ([192.0.2.7])");
  assertEquals(
    ip("::ffff:192.0.2.7"),
    "Received: from mx.remote.example ([IPv6:::ffff:192.0.2.7])",
  );
  assertEquals(ip("/run/stoken.sock"), "Received: from mx.remote.example (/run/stoken.sock)");
  assertEquals(ip(""), "Received: from mx.remote.example (unknown)");
});

Deno.test("receivedHeader: the HELO name is sanitized", () => {
  const from = (helo: string) => receivedHeader({ ...base, helo }).split("\r\n")[0] ?? "";
  assertEquals(from("evil (fake) host; x"), "Received: from evil__fake__host__x ([192.0.2.7])");
  assertEquals(from("a\tb\x7fc\xe9"), "Received: from a_b_c_ ([192.0.2.7])");
  assertEquals(from(""), "Received: from unknown ([192.0.2.7])");
  assertEquals(from("[192.0.2.7]"), "Received: from [192.0.2.7] ([192.0.2.7])");
  assertEquals(from("x".repeat(600)).length, "Received: from  ([192.0.2.7])".length + 255);
});

Deno.test("receivedHeader: every line ends with CRLF and continuation lines are folded", () => {
  for (const rcpt of ["local@foo.com", undefined]) {
    const h = receivedHeader({ ...base, rcpt });
    assertMatch(h, /^Received: [^\r\n]*\r\n(\t[^\r\n]*\r\n)+$/);
  }
});
