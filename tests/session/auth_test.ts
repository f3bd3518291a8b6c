// PROTOCOL.md §3 for user sessions: AUTH PLAIN and LOGIN (RFC 4954, RFC 4616).
import { assertEquals } from "../assert.ts";
import { b64, fakeDeps, newSession, transcript } from "./harness.ts";

const EHLO_TLS = `
  C: EHLO client.example
  S: 250-mx.example.test
  S: 250-PIPELINING
  S: 250-SIZE 10240
  S: 250-ENHANCEDSTATUSCODES
  S: 250-8BITMIME
  S: 250 AUTH PLAIN LOGIN
`;
const PLAIN_OK = b64("\0alice@example.test\0alice-secret");

Deno.test("AUTH before TLS: 538 5.7.11", async () => {
  await transcript(
    newSession(fakeDeps()),
    `
    C: EHLO client.example
    S: 250-mx.example.test
    S: 250-PIPELINING
    S: 250-SIZE 10240
    S: 250-ENHANCEDSTATUSCODES
    S: 250-8BITMIME
    S: 250 STARTTLS
    C: AUTH PLAIN ${PLAIN_OK}
    S: 538 5.7.11 Encryption required for requested authentication mechanism
  `,
  );
});

Deno.test("AUTH PLAIN with initial response", async () => {
  await transcript(
    newSession(fakeDeps(), "submissions"),
    `${EHLO_TLS}
    C: AUTH PLAIN ${PLAIN_OK}
    S: 235 2.7.0 Authentication successful
  `,
  );
});

Deno.test("AUTH PLAIN with a 334 continuation; mechanism is case-insensitive", async () => {
  await transcript(
    newSession(fakeDeps(), "submissions"),
    `${EHLO_TLS}
    C: auth plain
    S: 334 
    C: ${PLAIN_OK}
    S: 235 2.7.0 Authentication successful
  `,
  );
});

Deno.test("AUTH PLAIN with authzid equal to authcid is accepted, another authzid refused", async () => {
  await transcript(
    newSession(fakeDeps(), "submissions"),
    `${EHLO_TLS}
    C: AUTH PLAIN ${b64("bob@example.test\0alice@example.test\0alice-secret")}
    S: 535 5.7.8 Authentication credentials invalid
    C: AUTH PLAIN ${b64("alice@example.test\0alice@example.test\0alice-secret")}
    S: 235 2.7.0 Authentication successful
  `,
  );
});

Deno.test("AUTH LOGIN in three steps", async () => {
  await transcript(
    newSession(fakeDeps(), "submissions"),
    `${EHLO_TLS}
    C: AUTH LOGIN
    S: 334 VXNlcm5hbWU6
    C: ${b64("alice@example.test")}
    S: 334 UGFzc3dvcmQ6
    C: ${b64("alice-secret")}
    S: 235 2.7.0 Authentication successful
  `,
  );
});

Deno.test("AUTH LOGIN with the username as initial response", async () => {
  await transcript(
    newSession(fakeDeps(), "submissions"),
    `${EHLO_TLS}
    C: AUTH LOGIN ${b64("alice@example.test")}
    S: 334 UGFzc3dvcmQ6
    C: ${b64("alice-secret")}
    S: 235 2.7.0 Authentication successful
  `,
  );
});

Deno.test("bad credentials: 535 5.7.8, paced to the failure delay", async () => {
  const fake = fakeDeps();
  await transcript(
    newSession(fake, "submissions"),
    `${EHLO_TLS}
    C: AUTH PLAIN ${b64("\0alice@example.test\0wrong")}
    S: 535 5.7.8 Authentication credentials invalid
    C: AUTH PLAIN ${b64("\0nobody@example.test\0wrong")}
    S: 535 5.7.8 Authentication credentials invalid
  `,
  );
  // The fake clock does not move, so each failure waits the whole delay.
  assertEquals(fake.sleeps, [1000, 1000]);
});

Deno.test("AUTH twice: 503 5.5.1 Already authenticated", async () => {
  await transcript(
    newSession(fakeDeps(), "submissions"),
    `${EHLO_TLS}
    C: AUTH PLAIN ${PLAIN_OK}
    S: 235 2.7.0 Authentication successful
    C: AUTH PLAIN ${PLAIN_OK}
    S: 503 5.5.1 Already authenticated
  `,
  );
});

Deno.test("malformed base64 and cancel: 501 5.5.2", async () => {
  await transcript(
    newSession(fakeDeps(), "submissions"),
    `${EHLO_TLS}
    C: AUTH PLAIN not*base64
    S: 501 5.5.2 Malformed authentication data
    C: AUTH PLAIN QQ=
    S: 501 5.5.2 Malformed authentication data
    C: AUTH PLAIN
    S: 334 
    C: *
    S: 501 5.5.2 Authentication cancelled
    C: AUTH LOGIN
    S: 334 VXNlcm5hbWU6
    C: *
    S: 501 5.5.2 Authentication cancelled
    C: AUTH PLAIN ${b64("no-nuls-here")}
    S: 501 5.5.2 Malformed authentication data
    C: AUTH PLAIN ${PLAIN_OK}
    S: 235 2.7.0 Authentication successful
  `,
  );
});

Deno.test("AUTH STOKEN in an EHLO session and PLAIN in an LHLO session: 504 5.5.4", async () => {
  await transcript(
    newSession(fakeDeps(), "submissions"),
    `${EHLO_TLS}
    C: AUTH STOKEN ${b64("alice@example.test\0sometokensometoken")}
    S: 504 5.5.4 Unrecognized authentication type
    C: AUTH CRAM-MD5
    S: 504 5.5.4 Unrecognized authentication type
  `,
  );
  await transcript(
    newSession(fakeDeps(), "submissions"),
    `
    C: LHLO remote.example
    S: 250-mx.example.test
    S: 250-PIPELINING
    S: 250-SIZE 10240
    S: 250-ENHANCEDSTATUSCODES
    S: 250-8BITMIME
    S: 250-AUTH STOKEN
    S: 250 STOKEN
    C: AUTH PLAIN ${PLAIN_OK}
    S: 504 5.5.4 Unrecognized authentication type
    C: AUTH LOGIN
    S: 504 5.5.4 Unrecognized authentication type
  `,
  );
});

Deno.test("too many failures from one address: 421 4.7.0 and close; later connections refused", async () => {
  const fake = fakeDeps({ authLimit: 2 });
  await transcript(
    newSession(fake, "submissions"),
    `${EHLO_TLS}
    C: AUTH PLAIN ${b64("\0alice@example.test\0x")}
    S: 535 5.7.8 Authentication credentials invalid
    C: AUTH PLAIN ${b64("\0alice@example.test\0y")}
    S: 421 4.7.0 Too many authentication failures
    CLOSED
  `,
  );
  await transcript(
    newSession(fake, "submissions"),
    `${EHLO_TLS}
    C: AUTH PLAIN ${PLAIN_OK}
    S: 421 4.7.0 Too many authentication failures
    CLOSED
  `,
  );
  // Another address is not affected.
  await transcript(
    newSession(fake, "submissions", true, "198.51.100.1"),
    `${EHLO_TLS}
    C: AUTH PLAIN ${PLAIN_OK}
    S: 235 2.7.0 Authentication successful
  `,
  );
});

Deno.test("AUTH before EHLO and on the LMTP listener", async () => {
  await transcript(
    newSession(fakeDeps(), "submissions"),
    `
    C: AUTH PLAIN ${PLAIN_OK}
    S: 503 5.5.1 Bad sequence of commands
  `,
  );
  await transcript(
    newSession(fakeDeps(), "lmtp"),
    `
    C: LHLO mta
    S: 250-mx.example.test
    S: 250-PIPELINING
    S: 250-SIZE 10240
    S: 250-ENHANCEDSTATUSCODES
    S: 250 8BITMIME
    C: AUTH PLAIN ${PLAIN_OK}
    S: 502 5.5.1 Command not available on this listener
  `,
  );
});

Deno.test("STARTTLS forgets an authentication made before it and buffered commands", async () => {
  const fake = fakeDeps();
  await transcript(
    newSession(fake),
    `
    C: EHLO client.example
    S: 250-mx.example.test
    S: 250-PIPELINING
    S: 250-SIZE 10240
    S: 250-ENHANCEDSTATUSCODES
    S: 250-8BITMIME
    S: 250 STARTTLS
    C: STARTTLS
    C: NOOP
    C: MAIL FROM:<alice@example.test>
    S: 220 2.0.0 Ready to start TLS
    TLS
    C: MAIL FROM:<alice@example.test>
    S: 503 5.5.1 Bad sequence of commands
    C: STARTTLS
    S: 503 5.5.1 TLS already active
  `,
  );
});
