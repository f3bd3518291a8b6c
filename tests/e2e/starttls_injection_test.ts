// STARTTLS command injection (RFC 3207 §4.2; PROTOCOL.md §10): plaintext pipelined after
// STARTTLS is discarded, never executed inside the TLS session.
import { assertEquals, assertMatch } from "../assert.ts";
import { e2eTest, parseJson } from "../helpers/e2e.ts";
import { runPython, startServer } from "../helpers/server.ts";
import { SmtpConn } from "../helpers/smtp_conn.ts";

interface Out {
  starttls: string | null;
  after_tls: string[] | null;
  noop: string | null;
  quit: string | null;
  error: string | null;
}

e2eTest(
  "STARTTLS injection: a NOOP sent with STARTTLS is not answered after the handshake",
  async () => {
    await using srv = await startServer();
    const out = parseJson<Out>(
      await runPython("starttls_injection.py", [String(srv.ports.submission)]),
      "starttls_injection.py",
    );
    assertEquals(out.error, null);
    assertMatch(out.starttls!, /^220 /);
    // The first reply inside TLS is the EHLO's (multi-line, now offering AUTH), not a NOOP's 250.
    const first = out.after_tls!;
    assertMatch(first[0]!, /^250-/);
    assertMatch(first.join("\n"), /^250[ -]AUTH PLAIN LOGIN$/m);
    assertMatch(out.noop!, /^250 /);
    assertMatch(out.quit!, /^221 /);
  },
);

e2eTest(
  "STARTTLS injection: a pipelined AUTH before the handshake does not authenticate",
  async () => {
    await using srv = await startServer();
    const c = await SmtpConn.tcp(srv.ports.submission);
    try {
      assertEquals((await c.readReply()).code, 220);
      assertEquals((await c.command("EHLO client.example.test")).code, 250);
      const plain = new TextEncoder().encode(`\0${srv.user}\0${srv.password}`).toBase64();
      await c.write(`STARTTLS\r\nAUTH PLAIN ${plain}\r\n`);
      assertEquals((await c.readReply()).code, 220);
      await c.startTls();
      assertEquals((await c.command("EHLO client.example.test")).code, 250);
      // Not authenticated: MAIL needs AUTH (PROTOCOL.md §10).
      const mail = await c.command(`MAIL FROM:<${srv.user}>`);
      assertEquals(mail.code, 530, mail.lines.join("\n"));
      assertEquals((await c.command("QUIT")).code, 221);
    } finally {
      c.close();
    }
  },
);
