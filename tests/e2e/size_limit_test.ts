// limits.max_message_size (PROTOCOL.md §10, RFC 1870): SIZE= over the limit is refused at
// MAIL; a message over the limit is read to its end, refused with 552 5.3.4, and not stored.
import { assertEquals, assertMatch } from "../assert.ts";
import { authPlain, e2eTest } from "../helpers/e2e.ts";
import { startServer } from "../helpers/server.ts";
import { SmtpConn } from "../helpers/smtp_conn.ts";

const LIMIT = 64 * 1024;

function body(bytes: number): string {
  const line = "x".repeat(78) + "\r\n";
  return "Subject: big\r\n\r\n" + line.repeat(Math.ceil(bytes / line.length)) + ".\r\n";
}

e2eTest(
  "LMTP: SIZE advertised, SIZE= over the limit and an oversized message get 552 5.3.4",
  async () => {
    await using srv = await startServer({ limits: { max_message_size: LIMIT } });
    const c = await SmtpConn.tcp(srv.ports.lmtp);
    try {
      assertEquals((await c.readReply()).code, 220);
      const lhlo = await c.command("LHLO mta.example.test");
      assertMatch(lhlo.text, new RegExp(`^SIZE ${LIMIT}$`, "m"));

      const sized = await c.command(`MAIL FROM:<sender@remote.test> SIZE=${LIMIT + 1}`);
      assertEquals(sized.code, 552, sized.lines.join("\n"));
      assertMatch(sized.text, /^5\.3\.4 /);

      // The refused MAIL left no transaction: a new one starts cleanly.
      assertEquals((await c.command(`MAIL FROM:<sender@remote.test> SIZE=${LIMIT}`)).code, 250);
      assertEquals((await c.command(`RCPT TO:<${srv.user}>`)).code, 250);
      assertEquals((await c.command("DATA")).code, 354);
      await c.write(body(LIMIT * 2));
      const r = await c.readReply();
      assertEquals(r.code, 552, r.lines.join("\n"));
      assertMatch(r.text, /^5\.3\.4 /);
      assertEquals((await c.command("NOOP")).code, 250);

      // A message under the limit on the same session is delivered.
      assertEquals((await c.command("MAIL FROM:<sender@remote.test>")).code, 250);
      assertEquals((await c.command(`RCPT TO:<${srv.user}>`)).code, 250);
      assertEquals((await c.command("DATA")).code, 354);
      await c.write(body(LIMIT / 2));
      assertEquals((await c.readReply()).code, 250);
      assertEquals((await c.command("QUIT")).code, 221);
    } finally {
      c.close();
    }
    assertEquals((await srv.maildir(srv.user)).length, 1);
    assertEquals(await srv.maildir(srv.user, "tmp"), []);
  },
);

e2eTest("submission: an oversized message gets 552 5.3.4 and the session goes on", async () => {
  await using srv = await startServer({ limits: { max_message_size: LIMIT } });
  const c = await SmtpConn.tls(srv.ports.submissions);
  try {
    assertEquals((await c.readReply()).code, 220);
    assertEquals((await c.command("EHLO client.example.test")).code, 250);
    assertEquals((await c.command(`AUTH PLAIN ${authPlain(srv.user, srv.password)}`)).code, 235);
    const sized = await c.command(`MAIL FROM:<${srv.user}> SIZE=${LIMIT * 10}`);
    assertEquals(sized.code, 552, sized.lines.join("\n"));
    assertMatch(sized.text, /^5\.3\.4 /);
    assertEquals((await c.command(`MAIL FROM:<${srv.user}>`)).code, 250);
    assertEquals((await c.command(`RCPT TO:<${srv.user}>`)).code, 250);
    assertEquals((await c.command("DATA")).code, 354);
    await c.write(body(LIMIT + 1024));
    const r = await c.readReply();
    assertEquals(r.code, 552, r.lines.join("\n"));
    assertMatch(r.text, /^5\.3\.4 /);
    assertEquals((await c.command("NOOP")).code, 250);
    assertEquals((await c.command("QUIT")).code, 221);
  } finally {
    c.close();
  }
  assertEquals(await srv.maildir(srv.user), []);
  assertEquals(await srv.maildir(srv.user, "tmp"), []);
});
