// Clients that misbehave at the transport level (PROTOCOL.md §10: "no input may crash the
// session or the process"): connect and drop at once, speak plain text to the TLS port,
// vanish in the middle of a command or of DATA. The server keeps serving; nothing is stored.
import { assert, assertEquals } from "../assert.ts";
import { e2eTest, sleep } from "../helpers/e2e.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { SmtpConn } from "../helpers/smtp_conn.ts";

function alive(srv: TestServer): Promise<boolean> {
  return Promise.race([srv.exited.then(() => false), sleep(300).then(() => true)]);
}

async function deliverOne(srv: TestServer, subject: string) {
  const c = await SmtpConn.tcp(srv.ports.lmtp);
  try {
    assertEquals((await c.readReply()).code, 220);
    assertEquals((await c.command("LHLO mta.example.test")).code, 250);
    assertEquals((await c.command("MAIL FROM:<sender@remote.test>")).code, 250);
    assertEquals((await c.command(`RCPT TO:<${srv.user}>`)).code, 250);
    assertEquals((await c.command("DATA")).code, 354);
    await c.write(`Subject: ${subject}\r\n\r\nstill here\r\n.\r\n`);
    assertEquals((await c.readReply()).code, 250);
    assertEquals((await c.command("QUIT")).code, 221);
  } finally {
    c.close();
  }
}

e2eTest("clients that connect and drop at once do not stop the server", async () => {
  await using srv = await startServer();
  for (let i = 0; i < 5; i++) {
    for (
      const conn of [
        () => Deno.connect({ hostname: "127.0.0.1", port: srv.ports.submission }),
        () => Deno.connect({ hostname: "127.0.0.1", port: srv.ports.submissions }),
        () => Deno.connect({ hostname: "127.0.0.1", port: srv.ports.lmtp }),
        () => Deno.connect({ transport: "unix", path: srv.lmtpSocket }),
      ]
    ) (await conn()).close();
  }
  assert(await alive(srv), `server exited; logs:\n${srv.logs()}`);
  await deliverOne(srv, "after-drops");
  assertEquals((await srv.maildir(srv.user)).length, 1);
});

e2eTest(
  "plain text on the implicit-TLS port and half commands do not stop the server",
  async () => {
    await using srv = await startServer();
    const plain = await Deno.connect({ hostname: "127.0.0.1", port: srv.ports.submissions });
    await plain.write(new TextEncoder().encode("EHLO client.example.test\r\n"));
    await sleep(100);
    plain.close();

    const half = await SmtpConn.tcp(srv.ports.submission);
    assertEquals((await half.readReply()).code, 220);
    await half.write("EHLO client.exa");
    half.close();

    assert(await alive(srv), `server exited; logs:\n${srv.logs()}`);
    await deliverOne(srv, "after-garbage");
  },
);

e2eTest("a client that vanishes in the middle of DATA leaves no file behind", async () => {
  await using srv = await startServer();
  const c = await SmtpConn.tcp(srv.ports.lmtp);
  assertEquals((await c.readReply()).code, 220);
  assertEquals((await c.command("LHLO mta.example.test")).code, 250);
  assertEquals((await c.command("MAIL FROM:<sender@remote.test>")).code, 250);
  assertEquals((await c.command(`RCPT TO:<${srv.user}>`)).code, 250);
  assertEquals((await c.command("DATA")).code, 354);
  await c.write("Subject: cut\r\n\r\n" + "partial line\r\n".repeat(20_000));
  c.close();
  await sleep(300);
  assert(await alive(srv), `server exited; logs:\n${srv.logs()}`);
  assertEquals(await srv.maildir(srv.user, "new"), []);
  assertEquals(await srv.maildir(srv.user, "tmp"), []);
  await deliverOne(srv, "after-cut");
  assertEquals((await srv.maildir(srv.user)).length, 1);
});
