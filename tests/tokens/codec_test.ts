import { assert, assertEquals } from "../assert.ts";
import { isTokenString } from "../../src/tokens/engine.ts";
import {
  decodeToken,
  encodeHeader,
  encodeToken,
  TOKEN_BYTES,
  TOKEN_CHARS,
} from "../../src/tokens/token_codec.ts";

const nonce = new Uint8Array([1, 2, 3, 4, 5, 6]);

function sample(kind: "temp" | "perm" = "temp"): string {
  const header = encodeHeader({
    kind,
    keyId: "k0a1b2c3d",
    expiresS: 1_800_000_000,
    generation: 7,
    nonce,
  });
  return encodeToken(header, new Uint8Array(32).fill(0xaa), new Uint8Array(32).fill(0x55));
}

Deno.test("isTokenString: 20–64 characters of [A-Za-z0-9_-] (PROTOCOL §5)", () => {
  assert(isTokenString("a".repeat(20)));
  assert(isTokenString("A-z_09".repeat(10) + "abcd"));
  assert(!isTokenString("a".repeat(19)));
  assert(!isTokenString("a".repeat(65)));
  for (const bad of ["+", "/", "=", " ", ".", "é", "\0"]) {
    assert(!isTokenString("a".repeat(25) + bad), `accepted ${JSON.stringify(bad)}`);
  }
});

Deno.test("encode/decode round trip: 45 bytes, 60 characters, fields intact", () => {
  const t = sample("perm");
  assertEquals(t.length, TOKEN_CHARS);
  assert(isTokenString(t));
  const d = decodeToken(t);
  assert(d !== null);
  assertEquals(d.fields.kind, "perm");
  assertEquals(d.fields.keyId, "k0a1b2c3d");
  assertEquals(d.fields.expiresS, 1_800_000_000);
  assertEquals(d.fields.generation, 7);
  assertEquals([...d.fields.nonce], [...nonce]);
  assertEquals([...d.macLocal], new Array(10).fill(0xaa));
  assertEquals([...d.macPair], new Array(16).fill(0x55));
  assertEquals(decodeToken(sample("temp"))?.fields.kind, "temp");
});

Deno.test("decode is strict: length, alphabet, padding, type byte", () => {
  const t = sample();
  assert(decodeToken(t) !== null);
  assertEquals(decodeToken(t.slice(0, -1)), null, "59 characters");
  assertEquals(decodeToken(t + "A"), null, "61 characters");
  assertEquals(decodeToken(t.slice(0, -4)), null, "56 characters (42 bytes)");
  assertEquals(decodeToken(t + "===="), null, "padding");
  assertEquals(decodeToken(t.slice(0, -2) + "=="), null, "padding in place of data");
  for (const c of ["+", "/"]) {
    assertEquals(decodeToken(c + t.slice(1)), null, `"${c}" first`);
    assertEquals(decodeToken(t.slice(0, 40) + c + t.slice(41)), null, `"${c}" inside`);
  }
  assertEquals(decodeToken(" " + t.slice(1)), null, "space");
  assertEquals(decodeToken(t.slice(0, 30) + "\n" + t.slice(31)), null, "newline");
  const b = Uint8Array.fromBase64(t, { alphabet: "base64url" });
  b[0] = 0x58; // 'X': not a known type byte
  assertEquals(decodeToken(b.toBase64({ alphabet: "base64url", omitPadding: true })), null);
  assertEquals(TOKEN_BYTES % 3, 0, "no padding bits");
});

Deno.test("encodeHeader refuses out-of-range fields", () => {
  const ok = { kind: "temp" as const, keyId: "k00000000", expiresS: 1, generation: 0, nonce };
  encodeHeader(ok);
  for (
    const bad of [
      { ...ok, keyId: "k0000000" },
      { ...ok, keyId: "K00000000" },
      { ...ok, keyId: "k0000000g" },
      { ...ok, expiresS: 2 ** 32 },
      { ...ok, generation: -1 },
      { ...ok, generation: 1.5 },
      { ...ok, nonce: new Uint8Array(5) },
    ]
  ) {
    let threw = false;
    try {
      encodeHeader(bad);
    } catch {
      threw = true;
    }
    assert(threw, JSON.stringify(bad));
  }
});
