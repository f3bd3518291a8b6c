import { assert, assertEquals, assertMatch } from "../assert.ts";
import {
  DUMMY_HASH,
  hashPassword,
  ITERATIONS,
  parseHash,
  verifyPassword,
} from "../../src/store/password.ts";

Deno.test("hashPassword: stored form, salted, and verifies", async () => {
  const h1 = await hashPassword("correct horse");
  const h2 = await hashPassword("correct horse");
  assertMatch(h1, /^pbkdf2-sha256\$600000\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
  assert(h1 !== h2, "a fresh salt each time");
  assert(await verifyPassword("correct horse", h1));
  assert(!(await verifyPassword("correct horsE", h1)));
  assert(!(await verifyPassword("", h1)));
});

Deno.test("verifyPassword reads the iteration count and length from the stored hash", async () => {
  // The common PBKDF2-HMAC-SHA256 test vector (RFC 6070's inputs with SHA-256):
  // P="passwordPASSWORDpassword", S="saltSALTsaltSALTsaltSALTsaltSALTsalt", c=4096, dkLen=40.
  const salt = new TextEncoder().encode("saltSALTsaltSALTsaltSALTsaltSALTsalt").toBase64();
  const hex = "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9";
  const hash = Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16))).toBase64();
  assert(await verifyPassword("passwordPASSWORDpassword", `pbkdf2-sha256$4096$${salt}$${hash}`));
  assert(!(await verifyPassword("passwordPASSWORDpassword", `pbkdf2-sha256$4095$${salt}$${hash}`)));
});

Deno.test("verifyPassword: NFC normalization makes composed and decomposed input equal", async () => {
  // A 1-iteration hash of the composed spelling, made here without password.ts.
  const salt = new Uint8Array(16);
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode("caf\u00e9"),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations: 1 },
    key,
    256,
  );
  const h = `pbkdf2-sha256$1$${salt.toBase64()}$${new Uint8Array(bits).toBase64()}`;
  assert(await verifyPassword("caf\u00e9", h));
  assert(await verifyPassword("cafe\u0301", h), "decomposed spelling");
});

Deno.test("malformed stored hashes never verify", async () => {
  for (
    const bad of [
      "",
      "plain",
      "pbkdf2-sha1$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
      "pbkdf2-sha256$0$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
      "pbkdf2-sha256$99999999$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
      "pbkdf2-sha256$1$!!$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
      "pbkdf2-sha256$1$AAAAAAAAAAAAAAAAAAAAAA==",
    ]
  ) {
    assertEquals(await verifyPassword("x", bad), false, bad);
  }
});

Deno.test("the dummy hash for unknown users uses the current cost", () => {
  const p = parseHash(DUMMY_HASH);
  assert(p !== null);
  assertEquals(p.iterations, ITERATIONS);
  assertEquals(p.salt.length, 16);
  assertEquals(p.hash.length, 32);
});
