// PROTOCOL.md §7 (local recipients), §9 (local LMTP) and §10 (limits and bad input) as transcripts.
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { b64, fakeDeps, LOGIN_ALICE, newSession, transcript } from "./harness.ts";

const LOGIN = LOGIN_ALICE;
const LHLO = `
  C: LHLO mta.example
  S: 250-mx.example.test
  S: 250-PIPELINING
  S: 250-SIZE 10240
  S: 250-ENHANCEDSTATUSCODES
  S: 250 8BITMIME
`;

Deno.test("submission: a message to a local user and an alias lands with an ESMTPSA trace header", async () => {
  const fake = fakeDeps();
  await transcript(
    newSession(fake, "submissions"),
    `${LOGIN}
    C: MAIL FROM:<alice@example.test> SIZE=100 BODY=8BITMIME
    S: 250 2.1.0 OK
    C: RCPT TO:<bob@example.test>
    S: 250 2.1.5 OK
    C: RCPT TO:<AL@Example.Test>
    S: 250 2.1.5 OK
    C: DATA
    S: 354 End data with <CR><LF>.<CR><LF>
    C: Subject: hi
    C:
    C: ..dotted line
    C: .
    S: 250 2.0.0 ID00000001 Message accepted
    C: QUIT
    S: 221 2.0.0 Bye
    CLOSED
  `,
  );
  assertEquals(fake.delivered.map((d) => d.user), ["bob@example.test", "alice@example.test"]);
  const d = fake.delivered[0]!;
  assertEquals(d.body, "Subject: hi\r\n\r\n.dotted line\r\n");
  assertMatch(d.prefix, /^Received: from client\.example \(\[192\.0\.2\.7\]\)\r\n/);
  assertMatch(d.prefix, /with ESMTPSA id ID00000001/);
  assertMatch(d.prefix, /for <bob@example\.test>/);
  assert(d.prefix.endsWith("\r\n"));
});

Deno.test("submission: MAIL FROM must be an address of the user (alias allowed)", async () => {
  await transcript(
    newSession(fakeDeps(), "submissions"),
    `${LOGIN}
    C: MAIL FROM:<bob@example.test>
    S: 553 5.7.1 Sender address not owned by user
    C: MAIL FROM:<>
    S: 553 5.7.1 Sender address not owned by user
    C: MAIL FROM:<al@example.test>
    S: 250 2.1.0 OK
  `,
  );
});

Deno.test("submission: MAIL before AUTH 530, remote recipient 550 Relay not configured, unknown 550 5.1.1", async () => {
  await transcript(
    newSession(fakeDeps(), "submissions"),
    `
    C: EHLO client.example
    S: 250-*
    S: 250-*
    S: 250-*
    S: 250-*
    S: 250-*
    S: 250 AUTH PLAIN LOGIN
    C: MAIL FROM:<alice@example.test>
    S: 530 5.7.0 Authentication required
    C: AUTH PLAIN ${b64("\0alice@example.test\0alice-secret")}
    S: 235 2.7.0 Authentication successful
    C: MAIL FROM:<alice@example.test>
    S: 250 2.1.0 OK
    C: RCPT TO:<someone@remote.example>
    S: 550 5.7.1 Relay not configured
    C: RCPT TO:<nobody@example.test>
    S: 550 5.1.1 User unknown
    C: DATA
    S: 554 5.5.1 No valid recipients
  `,
  );
});

Deno.test("submission: a failed local delivery means 451 for the whole message (no queue)", async () => {
  const fake = fakeDeps();
  fake.failFor.set("bob@example.test", "temporary");
  await transcript(
    newSession(fake, "submissions"),
    `${LOGIN}
    C: MAIL FROM:<alice@example.test>
    C: RCPT TO:<bob@example.test>
    C: DATA
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 354 End data with <CR><LF>.<CR><LF>
    C: hello
    C: .
    S: 451 4.3.0 Temporary failure, please try again later
  `,
  );
});

Deno.test("LMTP: one reply per recipient after DATA, unknown recipient refused at RCPT", async () => {
  const fake = fakeDeps();
  fake.failFor.set("postmaster@example.test", "quota");
  await transcript(
    newSession(fake, "lmtp"),
    `${LHLO}
    C: MAIL FROM:<sender@remote.example>
    C: RCPT TO:<alice@example.test>
    C: RCPT TO:<nobody@example.test>
    C: RCPT TO:<bob@example.test>
    C: RCPT TO:<postmaster>
    C: DATA
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 550 5.1.1 User unknown
    S: 250 2.1.5 OK
    S: 250 2.1.5 OK
    S: 354 End data with <CR><LF>.<CR><LF>
    C: Subject: x
    C:
    C: body
    C: .
    S: 250 2.0.0 <alice@example.test> ID00000001 Saved
    S: 250 2.0.0 <bob@example.test> ID00000002 Saved
    S: 552 5.2.2 <postmaster> Mailbox full
  `,
  );
  assertEquals(fake.delivered.length, 2);
  assertMatch(fake.delivered[0]!.prefix, /with LMTP id ID00000001/);
});

Deno.test("LMTP: null sender accepted; remote domain refused", async () => {
  await transcript(
    newSession(fakeDeps(), "lmtp"),
    `${LHLO}
    C: MAIL FROM:<>
    S: 250 2.1.0 OK
    C: RCPT TO:<x@remote.example>
    S: 550 5.7.1 Relay access denied
  `,
  );
});

Deno.test("commands out of order: 503 5.5.1", async () => {
  await transcript(
    newSession(fakeDeps(), "lmtp"),
    `
    C: MAIL FROM:<a@b.example>
    S: 503 5.5.1 Bad sequence of commands
    ${LHLO}
    C: RCPT TO:<alice@example.test>
    S: 503 5.5.1 Bad sequence of commands
    C: DATA
    S: 503 5.5.1 Bad sequence of commands
    C: MAIL FROM:<a@b.example>
    S: 250 2.1.0 OK
    C: MAIL FROM:<a@b.example>
    S: 503 5.5.1 Bad sequence of commands
    C: RSET
    S: 250 2.0.0 OK
    C: RCPT TO:<alice@example.test>
    S: 503 5.5.1 Bad sequence of commands
  `,
  );
});

Deno.test("unknown command 500 5.5.2; VRFY 252; HELP 214; NOOP; EXPN 502", async () => {
  await transcript(
    newSession(fakeDeps()),
    `
    C: FOO bar
    S: 500 5.5.2 Command not recognized
    C: VRFY alice
    S: 252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery
    C: HELP
    S: 214 2.0.0 Commands: *
    C: NOOP
    S: 250 2.0.0 OK
    C: EXPN list
    S: 502 5.5.1 Command not implemented
  `,
  );
});

Deno.test("command line over 512 octets: 500 5.5.6, the session goes on", async () => {
  await transcript(
    newSession(fakeDeps()),
    `
    C: NOOP ${"x".repeat(600)}
    S: 500 5.5.6 Line too long
    C: NOOP ${"x".repeat(20000)}
    S: 500 5.5.6 Line too long
    C: NOOP
    S: 250 2.0.0 OK
  `,
  );
});

Deno.test("AUTH lines may be up to 12288 octets", async () => {
  await transcript(
    newSession(fakeDeps(), "submissions"),
    `
    C: EHLO c
    S: 250-*
    S: 250-*
    S: 250-*
    S: 250-*
    S: 250-*
    S: 250 AUTH PLAIN LOGIN
    C: AUTH PLAIN ${b64("\0alice@example.test\0" + "p".repeat(3000))}
    S: 535 5.7.8 Authentication credentials invalid
  `,
  );
});

Deno.test("SIZE over the limit at MAIL and a message over the limit: 552 5.3.4, session goes on", async () => {
  const fake = fakeDeps({ maxMessageSize: 2048 });
  await transcript(
    newSession(fake, "lmtp"),
    `
    C: LHLO mta
    S: 250-*
    S: 250-*
    S: 250-SIZE 2048
    S: 250-*
    S: 250 8BITMIME
    C: MAIL FROM:<a@b.example> SIZE=2049
    S: 552 5.3.4 Message size exceeds fixed maximum
    C: MAIL FROM:<a@b.example> SIZE=abc
    S: 501 5.5.4 Syntax error in parameters
    C: MAIL FROM:<a@b.example> SIZE=100
    S: 250 2.1.0 OK
    C: RCPT TO:<alice@example.test>
    S: 250 2.1.5 OK
    C: DATA
    S: 354 *
    ${Array.from({ length: 40 }, () => "C: " + "y".repeat(100)).join("\n")}
    C: .
    S: 552 5.3.4 Message size exceeds fixed maximum
    C: NOOP
    S: 250 2.0.0 OK
  `,
  );
  assertEquals(fake.delivered.length, 0);
});

Deno.test("more recipients than the limit: 452 4.5.3", async () => {
  await transcript(
    newSession(fakeDeps({ maxRecipients: 2 }), "lmtp"),
    `${LHLO}
    C: MAIL FROM:<a@b.example>
    C: RCPT TO:<alice@example.test>
    C: RCPT TO:<bob@example.test>
    C: RCPT TO:<postmaster@example.test>
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 250 2.1.5 OK
    S: 452 4.5.3 Too many recipients
  `,
  );
});

Deno.test("unknown MAIL/RCPT parameters, STOKEN outside a token session: 555 5.5.4", async () => {
  await transcript(
    newSession(fakeDeps(), "lmtp"),
    `${LHLO}
    C: MAIL FROM:<a@b.example> FOO=bar
    S: 555 5.5.4 Unsupported parameter
    C: MAIL FROM:<a@b.example>
    S: 250 2.1.0 OK
    C: RCPT TO:<alice@example.test> STOKEN=abcdefghijklmnopqrstuvwxyz
    S: 555 5.5.4 Unsupported parameter
  `,
  );
});

const SMUGGLES: [string, string][] = [
  ["\\n.\\n", "\n.\n"],
  ["\\r.\\r", "\r.\r"],
  ["\\n.\\r\\n", "\n.\r\n"],
  ["\\r\\n.\\n", "\r\n.\n"],
  ["\\r.\\r\\n", "\r.\r\n"],
];

for (const [name, seq] of SMUGGLES) {
  Deno.test(`SMTP smuggling with ${name}: 550 5.5.2 after the real end, nothing stored, in sync`, async () => {
    const fake = fakeDeps();
    const s = newSession(fake, "lmtp");
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    const out: string[] = [];
    const send = async (t: string) => {
      const o = await s.feed(enc.encode(t));
      for (const r of o.replies) out.push(`${r.code} ${r.enhanced ?? ""}`.trim());
    };
    await send("LHLO mta\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
    await send(
      `Subject: smuggle\r\n\r\nhello${seq}MAIL FROM:<evil@b.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nevil\r\n.\r\n`,
    );
    await send("NOOP\r\n");
    assertEquals(out, ["250", "250 2.1.0", "250 2.1.5", "354", "550 5.5.2", "250 2.0.0"]);
    assertEquals(fake.delivered.length, 0);
    void dec;
  });
}

Deno.test("DATA split across many chunks and pipelined commands after the end are answered", async () => {
  const fake = fakeDeps();
  const s = newSession(fake, "lmtp");
  const enc = new TextEncoder();
  const input = "LHLO mta\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n" +
    "line one\r\n..two\r\n.\r\nMAIL FROM:<c@d.example>\r\nRSET\r\nQUIT\r\n";
  const codes: number[] = [];
  for (const byte of enc.encode(input)) {
    const o = await s.feed(new Uint8Array([byte]));
    codes.push(...o.replies.map((r) => r.code));
    if (o.after === "close") break;
  }
  assertEquals(codes, [250, 250, 250, 354, 250, 250, 250, 221]);
  assertEquals(fake.delivered[0]!.body, "line one\r\n.two\r\n");
});

Deno.test("a control character in a command is refused, not executed", async () => {
  await transcript(
    newSession(fakeDeps(), "lmtp"),
    `
    C: NOOP\x00
    S: 500 5.5.2 *
  `,
  );
  // A bare LF does not end a command line: the whole line is refused.
  const fake = fakeDeps();
  const s = newSession(fake, "lmtp");
  const o = await s.feed(new TextEncoder().encode("LHLO a\nMAIL FROM:<a@b.example>\r\n"));
  assertEquals(o.replies.map((r) => `${r.code} ${r.enhanced}`), ["500 5.5.2"]);
});

Deno.test("end() during DATA discards the spooled message", async () => {
  const fake = fakeDeps();
  const s = newSession(fake, "lmtp");
  const o = await s.feed(
    new TextEncoder().encode(
      "LHLO m\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\npart",
    ),
  );
  assertEquals(o.replies.at(-1)?.code, 354);
  assert(s.inData);
  await s.end();
  assert(!s.inData);
  assertEquals(fake.delivered.length, 0);
});
