import { domainAuth, mayHarvest } from "../../src/protocol/auth_results.ts";
import { parseHeaderFields } from "../../src/protocol/headers.ts";
import { assertEquals } from "../assert.ts";

const H = (s: string) => parseHeaderFields(s.split("\n").join("\r\n") + "\r\n\r\n");

Deno.test("dkim and spf pass for the sender's domain", () => {
  const a = domainAuth(
    H(`Authentication-Results: mx.b.test;
 dkim=pass (2048-bit key) header.d=a.test header.i=@a.test;
 spf=pass (sender SPF authorized) smtp.mailfrom=alice@a.test`),
    "a.test",
    "mx.b.test",
  );
  assertEquals(a, { dkimPass: true, spfPass: true, dkimFail: false, spfFail: false });
  assertEquals(mayHarvest(a, true), true);
});

Deno.test("both failed: refused by default and with requirePass; none recorded: kept by default only", () => {
  const a = domainAuth(
    H(`Authentication-Results: mx.b.test; dkim=fail header.d=a.test; spf=softfail smtp.mailfrom=a.test`),
    "a.test",
    "mx.b.test",
  );
  assertEquals([mayHarvest(a, false), mayHarvest(a, true)], [false, false]);
  const none = domainAuth(H("Subject: x"), "a.test", "mx.b.test");
  assertEquals([mayHarvest(none, false), mayHarvest(none, true)], [true, false]);
  const oneFailed = domainAuth(
    H(`Authentication-Results: mx.b.test; spf=fail smtp.mailfrom=a.test`),
    "a.test",
    "mx.b.test",
  );
  assertEquals([mayHarvest(oneFailed, false), mayHarvest(oneFailed, true)], [true, false]);
});

Deno.test("a pass for another domain does not count; a forged field below ours is ignored", () => {
  const a = domainAuth(
    H(`Authentication-Results: mx.b.test; dkim=pass header.d=evil.test; spf=fail smtp.mailfrom=a.test; dkim=fail header.d=a.test
Authentication-Results: mx.b.test.evil; dkim=pass header.d=a.test; spf=pass smtp.mailfrom=a.test`),
    "a.test",
    "mx.b.test",
  );
  assertEquals(a, { dkimPass: false, spfPass: false, dkimFail: true, spfFail: true });
  assertEquals(mayHarvest(a, false), false);
});
