// SMTP smuggling (PROTOCOL.md §10): a bare LF or bare CR "end of data" never ends DATA. The
// message is read to the real CRLF.CRLF, refused with 550 5.5.2, nothing is stored, and the
// commands hidden in the body are never executed (the dialog stays in sync).
import { assertEquals, assertMatch } from "../assert.ts";
import { authPlain, e2eTest } from "../helpers/e2e.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { SmtpConn } from "../helpers/smtp_conn.ts";

const VARIANTS: [string, string][] = [
  ["\\n.\\n", "\n.\n"],
  ["\\r.\\r", "\r.\r"],
  ["\\n.\\r\\n", "\n.\r\n"],
  ["\\r\\n.\\n", "\r\n.\n"],
  ["\\r.\\r\\n", "\r.\r\n"],
];

function smuggledBody(fake: string, rcpt: string): string {
  return `Subject: smuggling\r\n\r\nfirst message` + fake +
    `MAIL FROM:<attacker@evil.test>\r\nRCPT TO:<${rcpt}>\r\nDATA\r\n` +
    `Subject: smuggled\r\n\r\nsmuggled message\r\n.\r\n`;
}

async function maildirState(srv: TestServer, addr: string) {
  return { new: await srv.maildir(addr, "new"), tmp: await srv.maildir(addr, "tmp") };
}

/** After the 550: one NOOP gets exactly one 250, then QUIT gets 221 and nothing else came. */
async function assertInSync(c: SmtpConn) {
  const noop = await c.command("NOOP");
  assertEquals(noop.code, 250, `NOOP reply: ${noop.lines.join("\n")}`);
  const quit = await c.command("QUIT");
  assertEquals(quit.code, 221, `QUIT reply: ${quit.lines.join("\n")}`);
  assertEquals(c.buffered.length, 0, "no further replies");
}

for (const [name, fake] of VARIANTS) {
  e2eTest(
    `smuggling over LMTP with ${name}: 550 5.5.2, nothing stored, dialog in sync`,
    async () => {
      await using srv = await startServer();
      const before = await maildirState(srv, srv.user);
      const c = await SmtpConn.tcp(srv.ports.lmtp);
      try {
        assertEquals((await c.readReply()).code, 220);
        assertEquals((await c.command("LHLO mta.example.test")).code, 250);
        assertEquals((await c.command("MAIL FROM:<sender@remote.test>")).code, 250);
        assertEquals((await c.command(`RCPT TO:<${srv.user}>`)).code, 250);
        assertEquals((await c.command("DATA")).code, 354);
        await c.write(smuggledBody(fake, srv.user));
        const r = await c.readReply();
        assertEquals(r.code, 550, r.lines.join("\n"));
        assertMatch(r.text, /^5\.5\.2 /);
        await assertInSync(c);
      } finally {
        c.close();
      }
      assertEquals(await maildirState(srv, srv.user), before);
    },
  );
}

e2eTest(
  "smuggling on authenticated submission with \\n.\\r\\n: 550 5.5.2, nothing stored",
  async () => {
    await using srv = await startServer();
    const before = await maildirState(srv, srv.user);
    const c = await SmtpConn.tls(srv.ports.submissions);
    try {
      assertEquals((await c.readReply()).code, 220);
      assertEquals((await c.command("EHLO client.example.test")).code, 250);
      assertEquals((await c.command(`AUTH PLAIN ${authPlain(srv.user, srv.password)}`)).code, 235);
      assertEquals((await c.command(`MAIL FROM:<${srv.user}>`)).code, 250);
      assertEquals((await c.command(`RCPT TO:<${srv.user}>`)).code, 250);
      assertEquals((await c.command("DATA")).code, 354);
      await c.write(smuggledBody("\n.\r\n", srv.user));
      const r = await c.readReply();
      assertEquals(r.code, 550, r.lines.join("\n"));
      assertMatch(r.text, /^5\.5\.2 /);
      await assertInSync(c);
    } finally {
      c.close();
    }
    assertEquals(await maildirState(srv, srv.user), before);
  },
);

e2eTest("after a refused smuggling attempt the same session still delivers", async () => {
  await using srv = await startServer();
  const c = await SmtpConn.tcp(srv.ports.lmtp);
  try {
    assertEquals((await c.readReply()).code, 220);
    assertEquals((await c.command("LHLO mta.example.test")).code, 250);
    assertEquals((await c.command("MAIL FROM:<sender@remote.test>")).code, 250);
    assertEquals((await c.command(`RCPT TO:<${srv.user}>`)).code, 250);
    assertEquals((await c.command("DATA")).code, 354);
    await c.write(smuggledBody("\n.\n", srv.user));
    assertEquals((await c.readReply()).code, 550);
    assertEquals((await c.command("MAIL FROM:<sender@remote.test>")).code, 250);
    assertEquals((await c.command(`RCPT TO:<${srv.user}>`)).code, 250);
    assertEquals((await c.command("DATA")).code, 354);
    await c.write("Subject: clean\r\n\r\nclean message\r\n.\r\n");
    assertEquals((await c.readReply()).code, 250);
    assertEquals((await c.command("QUIT")).code, 221);
  } finally {
    c.close();
  }
  const files = await srv.maildir(srv.user);
  assertEquals(files.length, 1);
  const text = await Deno.readTextFile(files[0]!);
  assertMatch(text, /\r\nSubject: clean\r\n\r\nclean message\r\n$/);
});
