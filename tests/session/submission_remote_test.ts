// PROTOCOL.md §7 (remote recipients of a user submission, retries) and §9 (harvesting).
import { assertEquals, assertMatch } from "../assert.ts";
import { fakeDeps, LOGIN_ALICE, newSession, transcript } from "./harness.ts";

const LOGIN = LOGIN_ALICE;
const MESSAGE = `
  C: Message-ID: <m1@example.test>
  C: Subject: hi
  C:
  C: hello
  C: .
`;

Deno.test("remote recipients: routable ones accepted, delivered with the local ones, 250 only when all are", async () => {
  const fake = fakeDeps();
  fake.routes.set("bob@remote.example", "ok");
  await transcript(
    newSession(fake, "submissions"),
    `${LOGIN}
    C: MAIL FROM:<al@example.test>
    S: 250 2.1.0 OK
    C: RCPT TO:<carol@nowhere.example>
    S: 550 5.7.1 Relay not configured
    C: RCPT TO:<Bob@Remote.Example>
    S: 250 2.1.5 OK
    C: RCPT TO:<bob@example.test>
    S: 250 2.1.5 OK
    C: DATA
    S: 354 *
    ${MESSAGE}
    S: 250 2.0.0 * Message accepted
  `,
  );
  assertEquals(fake.sent.map((x) => [x.from, x.local, x.rcpt]), [[
    "al@example.test",
    "alice@example.test",
    "Bob@remote.example",
  ]]);
  assertEquals(fake.delivered.map((d) => d.user), ["bob@example.test"]);
});

Deno.test("a temporary remote failure: 451, and the retry reaches only the recipient that lacked it", async () => {
  const fake = fakeDeps();
  fake.routes.set("bob@remote.example", "temporary");
  const send = `${LOGIN}
    C: MAIL FROM:<alice@example.test>
    C: RCPT TO:<bob@remote.example>
    C: RCPT TO:<bob@example.test>
    C: DATA
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 250 2.1.5 OK
    S: 354 *
    ${MESSAGE}`;
  await transcript(
    newSession(fake, "submissions"),
    `${send}
    S: 451 4.3.0 Temporary failure, please try again later
  `,
  );
  assertEquals(fake.delivered.length, 1);
  fake.routes.set("bob@remote.example", "ok");
  await transcript(
    newSession(fake, "submissions"),
    `${send}
    S: 250 2.0.0 * Message accepted
  `,
  );
  assertEquals(fake.delivered.length, 1, "the local copy is not delivered twice");
  assertEquals(fake.sent.length, 1);
});

Deno.test("only permanent refusals left: 554 5.0.0", async () => {
  const fake = fakeDeps();
  fake.routes.set("bob@remote.example", "permanent");
  await transcript(
    newSession(fake, "submissions"),
    `${LOGIN}
    C: MAIL FROM:<alice@example.test>
    C: RCPT TO:<bob@remote.example>
    C: DATA
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 354 *
    ${MESSAGE}
    S: 554 5.0.0 *
  `,
  );
});

const LMTP_HEADER_MAIL = (auth: string) => `
  C: LHLO mta
  S: 250-*
  S: 250-*
  S: 250-*
  S: 250-*
  S: 250 8BITMIME
  C: MAIL FROM:<Carol@Remote.Example>
  C: RCPT TO:<al@example.test>
  C: DATA
  S: 250 2.1.0 OK
  S: 250 2.1.5 OK
  S: 354 *
  ${auth}
  C: Submission-Token: ${"T".repeat(60)}
  C: Subject: hi
  C:
  C: body
  C: .
  S: 250 2.0.0 <al@example.test> * Saved
`;

Deno.test("LMTP: a Submission-Token header is held for (envelope sender, recipient's user)", async () => {
  const fake = fakeDeps();
  await transcript(newSession(fake, "lmtp"), LMTP_HEADER_MAIL(""));
  assertEquals(fake.held, [{
    remote: "carol@remote.example",
    local: "alice@example.test",
    token: "T".repeat(60),
    source: "header",
  }]);
  assertMatch(fake.delivered[0]!.body, /^Submission-Token: T{60}\r\n/);
});

Deno.test("LMTP: not harvested when DKIM and SPF both failed; with require_auth_pass only after a pass", async () => {
  const failed =
    "C: Authentication-Results: mx.example.test; dkim=fail header.d=remote.example; spf=fail smtp.mailfrom=remote.example";
  const fake = fakeDeps();
  await transcript(newSession(fake, "lmtp"), LMTP_HEADER_MAIL(failed));
  assertEquals(fake.held.length, 0);
  const strict = fakeDeps({ harvest: { enabled: true, requireAuthPass: true } });
  await transcript(newSession(strict, "lmtp"), LMTP_HEADER_MAIL(""));
  assertEquals(strict.held.length, 0);
  const passed =
    "C: Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=carol@remote.example";
  await transcript(newSession(strict, "lmtp"), LMTP_HEADER_MAIL(passed));
  assertEquals(strict.held.length, 1);
});
