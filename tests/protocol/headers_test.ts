import { fieldsNamed, headerEnd, parseHeaderFields } from "../../src/protocol/headers.ts";
import { assertEquals } from "../assert.ts";

const enc = new TextEncoder();

Deno.test("headerEnd finds the blank line, or -1", () => {
  assertEquals(headerEnd(enc.encode("A: 1\r\nB: 2\r\n\r\nbody")), 14);
  assertEquals(headerEnd(enc.encode("\r\nbody")), 2);
  assertEquals(headerEnd(enc.encode("A: 1\r\nB: 2\r\n")), -1);
  assertEquals(headerEnd(enc.encode("A: 1\n\nbody")), -1);
});

Deno.test("parseHeaderFields unfolds values, keeps raw text, keeps non-field lines", () => {
  const f = parseHeaderFields(
    "Subject: one\r\n two\r\nsubmission-token:  abc \r\nnot a field\r\nX: y\r\n\r\n",
  );
  assertEquals(f.map((x) => [x.name, x.value]), [
    ["Subject", "one two"],
    ["submission-token", "abc"],
    ["", ""],
    ["X", "y"],
  ]);
  assertEquals(
    f.map((x) => x.raw).join(""),
    "Subject: one\r\n two\r\nsubmission-token:  abc \r\nnot a field\r\nX: y\r\n",
  );
  assertEquals(fieldsNamed(f, "Submission-Token").length, 1);
});
