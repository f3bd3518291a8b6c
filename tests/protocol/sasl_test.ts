import { assertEquals } from "../assert.ts";
import {
  decodeBase64Strict,
  decodePlain,
  decodeStoken,
  encodeBase64,
} from "../../src/protocol/sasl.ts";
import { bytes, text } from "./_bytes.ts";

const base64: [string, string | null][] = [
  ["", ""],
  ["QQ==", "A"],
  ["QUI=", "AB"],
  ["QUJD", "ABC"],
  ["AGZvbwBiYXI=", "\x00foo\x00bar"],
  ["+/+/", "\xfb\xff\xbf"],
  // Non-canonical pad bits (RFC 4648 §3.5).
  ["QR==", null],
  ["QUJ=", null],
  // Length, padding and alphabet.
  ["QQ", null],
  ["QQ=", null],
  ["QQ===", null],
  ["Q===", null],
  ["QUJDRA", null],
  ["=QQ=", null],
  ["QQ==QQ==", null],
  ["QU=I", null],
  ["QUJ", null],
  ["-_-_", null],
  ["QUJD\r\n", null],
  [" QUJD", null],
  ["QU JD", null],
  ["QUJD\t", null],
  ["*", null],
  ["=", null],
];

for (const [input, want] of base64) {
  Deno.test(`decodeBase64Strict ${JSON.stringify(input)}`, () => {
    const got = decodeBase64Strict(input);
    assertEquals(got === null ? null : text(got), want);
  });
}

Deno.test("encodeBase64: bytes and UTF-8 strings", () => {
  assertEquals(encodeBase64(new Uint8Array([0, 0x66, 0xff])), "AGb/");
  assertEquals(encodeBase64(""), "");
  assertEquals(encodeBase64("user@foo.com\\0s6xW15h9Dh"), "dXNlckBmb28uY29tXDBzNnhXMTVoOURo");
  assertEquals(encodeBase64("é"), "w6k=");
});

Deno.test("encodeBase64 and decodeBase64Strict round-trip every length", () => {
  for (let n = 0; n < 40; n++) {
    const b = Uint8Array.from({ length: n }, (_, i) => (i * 97 + n) & 0xff);
    assertEquals(decodeBase64Strict(encodeBase64(b)), b);
  }
});

const utf8 = (s: string) => new TextEncoder().encode(s);

const plain: [string, Uint8Array, ReturnType<typeof decodePlain>][] = [
  ["no authzid", bytes("\x00tim\x00tanstaaftanstaaf"), {
    authzid: "",
    authcid: "tim",
    password: "tanstaaftanstaaf",
  }],
  ["with authzid", bytes("Ursel\x00Kurt\x00xipj3plmq"), {
    authzid: "Ursel",
    authcid: "Kurt",
    password: "xipj3plmq",
  }],
  ["UTF-8 password", utf8("\x00user@foo.com\x00pässwörd ✓"), {
    authzid: "",
    authcid: "user@foo.com",
    password: "pässwörd ✓",
  }],
  ["leading BOM is kept", utf8("\uFEFFz\x00a\x00p"), {
    authzid: "\uFEFFz",
    authcid: "a",
    password: "p",
  }],
  ["spaces are data", bytes(" \x00 a \x00 p "), { authzid: " ", authcid: " a ", password: " p " }],
  ["empty authcid", bytes("\x00\x00secret"), null],
  ["empty password", bytes("\x00user\x00"), null],
  ["one NUL", bytes("user\x00secret"), null],
  ["no NUL", bytes("usersecret"), null],
  ["three NULs", bytes("\x00user\x00sec\x00ret"), null],
  ["empty", new Uint8Array(0), null],
  ["invalid UTF-8 in password", bytes("\x00user\x00\xff\xfe"), null],
  ["invalid UTF-8 in authcid", bytes("\x00us\xc3\x00secret"), null],
  ["overlong encoding", bytes("\x00user\x00\xc0\xaf"), null],
  ["encoded surrogate", bytes("\x00user\x00\xed\xa0\x80"), null],
];

for (const [name, input, want] of plain) {
  Deno.test(`decodePlain: ${name}`, () => {
    assertEquals(decodePlain(input), want);
  });
}

const stoken: [string, Uint8Array, ReturnType<typeof decodeStoken>][] = [
  ["NUL separator", bytes("user@foo.com\x00s6xW15h9Dh"), {
    recipient: "user@foo.com",
    token: "s6xW15h9Dh",
  }],
  [
    "draft example: literal backslash-zero",
    decodeBase64Strict("dXNlckBmb28uY29tXDBzNnhXMTVoOURo") ?? new Uint8Array(),
    { recipient: "user@foo.com", token: "s6xW15h9Dh" },
  ],
  [
    "last backslash-zero separates",
    bytes('"a\\0b"@foo.com\\0tok_EN-1'),
    { recipient: '"a\\0b"@foo.com', token: "tok_EN-1" },
  ],
  [
    "NUL wins over backslash-zero",
    bytes("user@foo.com\x00a\\0b"),
    { recipient: "user@foo.com", token: "a\\0b" },
  ],
  ["no separator", bytes("user@foo.coms6xW15h9Dh"), null],
  ["empty recipient (NUL)", bytes("\x00token"), null],
  ["empty token (NUL)", bytes("user@foo.com\x00"), null],
  ["empty recipient (backslash-zero)", bytes("\\0token"), null],
  ["empty token (backslash-zero)", bytes("user@foo.com\\0"), null],
  ["two NULs", bytes("user@foo.com\x00tok\x00en"), null],
  ["control character", bytes("user@foo.com\x00tok\ten"), null],
  ["8-bit octet", bytes("usér@foo.com\x00token"), null],
  ["CRLF in token", bytes("user@foo.com\x00token\r\n"), null],
  ["draft error example abcdefg", decodeBase64Strict("abcdefg=") ?? bytes("x"), null],
];

for (const [name, input, want] of stoken) {
  Deno.test(`decodeStoken: ${name}`, () => {
    assertEquals(decodeStoken(input), want);
  });
}

Deno.test("decodeStoken: the draft's error example is not even valid base64", () => {
  assertEquals(decodeBase64Strict("abcdefg"), null);
});
