import { assertEquals } from "../assert.ts";
import {
  formatMailbox,
  isIPv6,
  normalizeAddress,
  parseMailbox,
} from "../../src/protocol/address.ts";

// [input, canonical form or null when invalid]
const mailboxes: [string, string | null][] = [
  ["user@example.com", "user@example.com"],
  ["User.Name+tag@Example.COM", "User.Name+tag@example.com"],
  ["a!#$%&'*+-/=?^_`{|}~@example.com", "a!#$%&'*+-/=?^_`{|}~@example.com"],
  ["user@localhost", "user@localhost"],
  ["u@a-b.c-d.example", "u@a-b.c-d.example"],
  ["u@123.example", "u@123.example"],
  // Quoted local parts (RFC 5321 §4.1.2 Quoted-string).
  ['"john doe"@example.com', '"john doe"@example.com'],
  ['"john"@example.com', "john@example.com"],
  ['"john.doe"@example.com', "john.doe@example.com"],
  ['"a\\"b"@example.com', '"a\\"b"@example.com'],
  ['"a\\\\b"@example.com', '"a\\\\b"@example.com'],
  ['"a\\b"@example.com', "ab@example.com"],
  ['"a@b"@example.com', '"a@b"@example.com'],
  ['"a..b"@example.com', '"a..b"@example.com'],
  ['"a>b"@example.com', '"a>b"@example.com'],
  ['""@example.com', null],
  ['"unterminated@example.com', null],
  ['"a"b"@example.com', null],
  ['"a"x@example.com', null],
  ['"a\\', null],
  // Address literals (RFC 5321 §4.1.3).
  ["a@[192.0.2.1]", "a@[192.0.2.1]"],
  ["a@[255.255.255.255]", "a@[255.255.255.255]"],
  ["a@[256.0.0.1]", null],
  ["a@[1.2.3]", null],
  ["a@[1.2.3.4.5]", null],
  ["a@[1.2.3.a]", null],
  ["a@[IPv6:::1]", "a@[IPv6:::1]"],
  ["a@[ipv6:2001:DB8::1]", "a@[IPv6:2001:db8::1]"],
  ["a@[IPv6:2001:db8:0:0:0:0:0:1]", "a@[IPv6:2001:db8:0:0:0:0:0:1]"],
  ["a@[IPv6:::ffff:192.0.2.1]", "a@[IPv6:::ffff:192.0.2.1]"],
  ["a@[IPv6:1:2:3:4:5:6:192.0.2.1]", "a@[IPv6:1:2:3:4:5:6:192.0.2.1]"],
  ["a@[IPv6:1:2:3:4:5:6:7]", null],
  ["a@[IPv6:1:2:3:4:5:6:7:8:9]", null],
  ["a@[IPv6:1::2::3]", null],
  ["a@[IPv6:12345::1]", null],
  ["a@[IPv6:g::1]", null],
  ["a@[::1]", null],
  ["a@[x-tag:whatever]", null],
  ["a@[192.0.2.1", null],
  ["a@192.0.2.1]", null],
  // Empty atoms and other bad dot-strings.
  ["remoteuser..@example.com", null],
  ["a..b@example.com", null],
  [".a@example.com", null],
  ["a.@example.com", null],
  ["@example.com", null],
  ["a b@example.com", null],
  ["a(b)@example.com", null],
  ["a,b@example.com", null],
  ["a<b@example.com", null],
  ["a\\b@example.com", null],
  // Domains.
  ["user", null],
  ["user@", null],
  ["user@@example.com", null],
  ["user@example..com", null],
  ["user@.example.com", null],
  ["user@example.com.", null],
  ["user@-example.com", null],
  ["user@example-.com", null],
  ["user@exa_mple.com", null],
  ["user@exa mple.com", null],
  ["user@example.com ", null],
  [" user@example.com", null],
  [`user@${"a".repeat(63)}.example`, `user@${"a".repeat(63)}.example`],
  [`user@${"a".repeat(64)}.example`, null],
  // Characters outside printable ASCII.
  ["us\ter@example.com", null],
  ['"us\ter"@example.com', null],
  ["user@example.com\r\n", null],
  ["usér@example.com", null],
  ["user@exämple.com", null],
  ['"a\x7fb"@example.com', null],
  ["\u{1F600}@example.com", null],
];

for (const [input, want] of mailboxes) {
  Deno.test(`parseMailbox ${JSON.stringify(input)}`, () => {
    const m = parseMailbox(input);
    assertEquals(m === null ? null : formatMailbox(m), want);
  });
}

Deno.test("parseMailbox: the local part is the unquoted value", () => {
  assertEquals(parseMailbox('"john doe"@Example.com'), {
    local: "john doe",
    domain: "example.com",
  });
  assertEquals(parseMailbox('"a\\"b"@x.example'), { local: 'a"b', domain: "x.example" });
});

Deno.test("parseMailbox: local part limit is 64 octets (RFC 5321 §4.5.3.1.1)", () => {
  assertEquals(parseMailbox(`${"a".repeat(64)}@example.com`)?.local, "a".repeat(64));
  assertEquals(parseMailbox(`${"a".repeat(65)}@example.com`), null);
  assertEquals(parseMailbox(`"${"a".repeat(63)}"@example.com`), null, "quotes count");
});

Deno.test("parseMailbox: whole mailbox limit is 254 octets", () => {
  const domain = ["a".repeat(60), "b".repeat(60), "c".repeat(60), "d".repeat(60)].join(".");
  const local = "u".repeat(254 - 1 - domain.length);
  assertEquals(parseMailbox(`${local}@${domain}`)?.domain, domain);
  assertEquals(parseMailbox(`${local}x@${domain}`), null);
});

Deno.test("formatMailbox: quotes only what is not a dot-string", () => {
  assertEquals(
    formatMailbox({ local: "plain.user", domain: "example.com" }),
    "plain.user@example.com",
  );
  assertEquals(
    formatMailbox({ local: "two words", domain: "example.com" }),
    '"two words"@example.com',
  );
  assertEquals(formatMailbox({ local: "a..b", domain: "example.com" }), '"a..b"@example.com');
  assertEquals(formatMailbox({ local: 'q"\\', domain: "example.com" }), '"q\\"\\\\"@example.com');
});

const normalized: [string, string | null][] = [
  ["User@Example.COM", "user@example.com"],
  ['"User"@example.com', "user@example.com"],
  ['"John Doe"@Example.com', '"john doe"@example.com'],
  ["localuser@foo.com", "localuser@foo.com"],
  ["remoteuser..@example.com", null],
  ["<user@example.com>", null],
  ["", null],
];

for (const [input, want] of normalized) {
  Deno.test(`normalizeAddress ${JSON.stringify(input)}`, () => {
    assertEquals(normalizeAddress(input), want);
  });
}

Deno.test("isIPv6: '::' stands for at least two groups (RFC 5321 §4.1.3)", () => {
  assertEquals(isIPv6("1:2:3:4:5::6"), true);
  assertEquals(isIPv6("1:2:3:4:5:6::7"), false);
  assertEquals(isIPv6("1:2:3:4::192.0.2.1"), true);
  assertEquals(isIPv6("1:2:3:4:5::192.0.2.1"), false);
  assertEquals(isIPv6("::192.0.2.1"), true);
  assertEquals(isIPv6("::"), true);
  assertEquals(isIPv6(":1.2.3.4"), false);
  assertEquals(isIPv6(":::"), false);
  assertEquals(isIPv6("1:2:3:4:5:6:7:"), false);
});
