import { assertEquals } from "../assert.ts";
import { decodeXtext, type Param, parseParams } from "../../src/protocol/params.ts";

const p = (keyword: string, value?: string): Param => ({ keyword, value });

const params: [string, Param[] | null][] = [
  ["", []],
  ["SIZE=1000", [p("SIZE", "1000")]],
  ["size=1000 body=8BITMIME", [p("SIZE", "1000"), p("BODY", "8BITMIME")]],
  ["SMTPUTF8", [p("SMTPUTF8")]],
  ["AUTH=<>", [p("AUTH", "<>")]],
  ["STOKEN=abc_DEF-123 MYSTOKEN=xyz", [p("STOKEN", "abc_DEF-123"), p("MYSTOKEN", "xyz")]],
  ["X-1=a", [p("X-1", "a")]],
  ["9K=v", [p("9K", "v")]],
  ["  SIZE=1   BODY=7BIT  ", [p("SIZE", "1"), p("BODY", "7BIT")]],
  ["ORCPT=rfc822;a+2Bb@example.com", [p("ORCPT", "rfc822;a+2Bb@example.com")]],
  // Syntax errors.
  ["SIZE=", null],
  ["=1", null],
  ["-X=1", null],
  ["SI_ZE=1", null],
  ["SIZE=1=2", null],
  ["SIZE==1", null],
  ["SIZE=1 size=2", null],
  ["STOKEN=a STOKEN=a", null],
  // Control characters and 8-bit octets anywhere.
  ["SIZE=1\tBODY=8BITMIME", null],
  ["\t", null],
  [" \r\n", null],
  ["SIZE=1\x00", null],
  ["SIZE=\x7f", null],
  ["STOKEN=ab\rc", null],
  ["STOKEN=ab\nc", null],
  ["STOKEN=\x01", null],
  ["X\x1b=1", null],
  ["STOKEN=é", null],
];

for (const [input, want] of params) {
  Deno.test(`parseParams ${JSON.stringify(input)}`, () => {
    assertEquals(parseParams(input), want);
  });
}

const xtexts: [string, string | null][] = [
  ["", ""],
  ["plain", "plain"],
  ["a+2Bb", "a+b"],
  ["a+3Db", "a=b"],
  ["+2B+3D+20", "+= "],
  ["rfc822;user@example.com", "rfc822;user@example.com"],
  ["a+2bb", null],
  ["a+2", null],
  ["a+", null],
  ["a=b", null],
  ["a b", null],
  ["a\tb", null],
  ["a+G0", null],
];

for (const [input, want] of xtexts) {
  Deno.test(`decodeXtext ${JSON.stringify(input)}`, () => {
    assertEquals(decodeXtext(input), want);
  });
}
