// Graceful shutdown on SIGTERM (PROTOCOL.md §10): idle sessions get 421 4.3.2, a DATA in
// progress finishes or leaves nothing behind, and the process exits 0.
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { authPlain, e2eTest, sleep } from "../helpers/e2e.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { SmtpConn, type SmtpReply } from "../helpers/smtp_conn.ts";

function messageBody(bytes: number): string {
  const line = "0123456789".repeat(7) + "abcdefgh\r\n";
  return "Subject: shutdown\r\n\r\n" + line.repeat(Math.ceil(bytes / line.length));
}

async function assertNothingStored(srv: TestServer) {
  assertEquals(await srv.maildir(srv.user, "new"), [], "files in new/");
  assertEquals(await srv.maildir(srv.user, "tmp"), [], "files in tmp/");
}

e2eTest(
  "SIGTERM: idle sessions on every listener get 421 4.3.2 and the process exits 0",
  async () => {
    await using srv = await startServer();
    const lmtp = await SmtpConn.tcp(srv.ports.lmtp);
    const sub = await SmtpConn.tcp(srv.ports.submission);
    const subs = await SmtpConn.tls(srv.ports.submissions);
    const conns = [lmtp, sub, subs];
    try {
      for (const c of conns) assertEquals((await c.readReply()).code, 220);
      assertEquals((await lmtp.command("LHLO mta.example.test")).code, 250);
      assertEquals((await subs.command("EHLO client.example.test")).code, 250);
      assertEquals(
        (await subs.command(`AUTH PLAIN ${authPlain(srv.user, srv.password)}`)).code,
        235,
      );

      srv.kill("SIGTERM");
      for (const c of conns) {
        const r = await c.readReply();
        assertEquals(r.code, 421, r.lines.join("\n"));
        assertMatch(r.text, /^4\.3\.2 /);
        assert(await c.closedByPeer(), "connection closed after 421");
      }
      const status = await srv.exited;
      assertEquals([status.code, status.signal], [0, null], `exit status; logs:\n${srv.logs()}`);
    } finally {
      for (const c of conns) c.close();
    }
  },
);

e2eTest("SIGINT also shuts down gracefully with exit status 0", async () => {
  await using srv = await startServer();
  const status = await srv.stop("SIGINT");
  assertEquals([status.code, status.signal], [0, null], `exit status; logs:\n${srv.logs()}`);
});

e2eTest(
  "SIGTERM during DATA: either 250 and the whole message, or no 250 and no file",
  async () => {
    await using srv = await startServer();
    const body = messageBody(512 * 1024);
    const half = Math.floor(body.length / 2);
    const c = await SmtpConn.tcp(srv.ports.lmtp);
    let reply: SmtpReply | null = null;
    try {
      assertEquals((await c.readReply()).code, 220);
      assertEquals((await c.command("LHLO mta.example.test")).code, 250);
      assertEquals((await c.command("MAIL FROM:<sender@remote.test>")).code, 250);
      assertEquals((await c.command(`RCPT TO:<${srv.user}>`)).code, 250);
      assertEquals((await c.command("DATA")).code, 354);
      await c.write(body.slice(0, half));
      srv.kill("SIGTERM");
      // Give the signal time to arrive while the body is still incomplete (not an assertion).
      await sleep(300);
      try {
        await c.write(body.slice(half) + ".\r\n");
        reply = await c.readReply();
      } catch {
        reply = null; // the server closed the connection: allowed, if nothing was stored
      }
    } finally {
      c.close();
    }
    const status = await srv.exited;
    assertEquals([status.code, status.signal], [0, null], `exit status; logs:\n${srv.logs()}`);

    if (reply?.code === 250) {
      const files = await srv.maildir(srv.user);
      assertEquals(files.length, 1, "one message after 250");
      const stored = await Deno.readTextFile(files[0]!);
      assert(stored.endsWith(body), "stored message is complete");
      assertEquals(await srv.maildir(srv.user, "tmp"), []);
    } else {
      await assertNothingStored(srv);
    }
  },
);

e2eTest(
  "SIGTERM during a DATA that never ends: no partial file, exit 0 after the grace period",
  async () => {
    await using srv = await startServer({ limits: { shutdown_timeout_s: 2 } });
    const c = await SmtpConn.tcp(srv.ports.lmtp);
    try {
      assertEquals((await c.readReply()).code, 220);
      assertEquals((await c.command("LHLO mta.example.test")).code, 250);
      assertEquals((await c.command("MAIL FROM:<sender@remote.test>")).code, 250);
      assertEquals((await c.command(`RCPT TO:<${srv.user}>`)).code, 250);
      assertEquals((await c.command("DATA")).code, 354);
      await c.write(messageBody(300 * 1024));
      srv.kill("SIGTERM");
      const status = await srv.exited;
      assertEquals([status.code, status.signal], [0, null], `exit status; logs:\n${srv.logs()}`);
    } finally {
      c.close();
    }
    await assertNothingStored(srv);
  },
);
