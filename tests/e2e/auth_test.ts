// Users made with `stoken user add` survive a restart; failed authentication is paced
// (limits.auth_failure_delay_ms) and limited per client address (limits.auth_failure_limit).
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { authPlain, e2eTest, parseJson } from "../helpers/e2e.ts";
import { runPython, startServer, type TestServer } from "../helpers/server.ts";
import { SmtpConn } from "../helpers/smtp_conn.ts";

const DELAY_MS = 300;
const LIMIT = 3;

async function login(srv: TestServer, user: string, password: string) {
  const args = ["--mode", "ssl", "--port", String(srv.ports.submissions)];
  args.push("--user", user, "--password", password);
  return parseJson<{ auth: [number, string] | null; error: string | null }>(
    await runPython("submit.py", args),
    "submit.py",
  );
}

async function authenticated(srv: TestServer): Promise<SmtpConn> {
  const c = await SmtpConn.tls(srv.ports.submissions);
  assertEquals((await c.readReply()).code, 220);
  assertEquals((await c.command("EHLO client.example.test")).code, 250);
  return c;
}

e2eTest(
  "user add: the new user authenticates, also after a restart; a wrong password gets 535",
  async () => {
    await using srv = await startServer({ limits: { auth_failure_delay_ms: DELAY_MS } });
    const carol = "carol@example.test";
    const add = await srv.cli(["user", "add", carol], "carol-password-0123\n");
    assertEquals(add.code, 0, `user add failed: ${add.stderr}`);
    assertEquals((await login(srv, carol, "carol-password-0123")).auth?.[0], 235);

    await srv.restart();
    assertEquals((await login(srv, carol, "carol-password-0123")).auth?.[0], 235);
    assertEquals((await login(srv, srv.user, srv.password)).auth?.[0], 235);
    const wrong = await login(srv, carol, "not-her-password");
    assertEquals(wrong.auth, null);
    assertMatch(wrong.error ?? "", /^535 5\.7\.8 /);
  },
);

e2eTest("a failed AUTH takes at least limits.auth_failure_delay_ms", async () => {
  await using srv = await startServer({ limits: { auth_failure_delay_ms: DELAY_MS } });
  const c = await authenticated(srv);
  try {
    const t0 = performance.now();
    const r = await c.command(`AUTH PLAIN ${authPlain(srv.user, "wrong-password")}`);
    const elapsed = performance.now() - t0;
    assertEquals(r.code, 535, r.lines.join("\n"));
    // A minimum only: the pacing is the behaviour; never assert an upper bound.
    assert(elapsed >= DELAY_MS - 1, `failed AUTH answered after ${elapsed.toFixed(1)} ms`);
    // The session is still usable and the right password works.
    const ok = await c.command(`AUTH PLAIN ${authPlain(srv.user, srv.password)}`);
    assertEquals(ok.code, 235, ok.lines.join("\n"));
  } finally {
    c.close();
  }
});

e2eTest(
  "after limits.auth_failure_limit failures: 421 4.7.0 and the connection is closed",
  async () => {
    await using srv = await startServer({
      limits: { auth_failure_delay_ms: 10, auth_failure_limit: LIMIT },
    });
    const c = await authenticated(srv);
    const codes: number[] = [];
    try {
      for (let i = 0; i <= LIMIT; i++) {
        const r = await c.command(`AUTH PLAIN ${authPlain(srv.user, `wrong-${i}`)}`);
        codes.push(r.code);
        if (r.code === 421) {
          assertMatch(r.text, /^4\.7\.0 /);
          break;
        }
        assertEquals(r.code, 535, r.lines.join("\n"));
      }
      // The limit-th failure or the attempt after it is the last one answered.
      assert(
        codes.at(-1) === 421 && codes.length >= LIMIT && codes.length <= LIMIT + 1,
        `replies to ${codes.length} failed attempts: ${codes.join(" ")}`,
      );
      assert(await c.closedByPeer(10_000), "connection closed after 421");
    } finally {
      c.close();
    }

    // The limit is per client address: a new connection from 127.0.0.1 is refused too, even
    // with the right password, at the greeting or at AUTH.
    const d = await SmtpConn.tls(srv.ports.submissions);
    try {
      const greeting = await d.readReply();
      if (greeting.code === 220) {
        assertEquals((await d.command("EHLO client.example.test")).code, 250);
        const r = await d.command(`AUTH PLAIN ${authPlain(srv.user, srv.password)}`);
        assertEquals(r.code, 421, r.lines.join("\n"));
        assertMatch(r.text, /^4\.7\.0 /);
      } else {
        assertEquals(greeting.code, 421, greeting.lines.join("\n"));
      }
    } finally {
      d.close();
    }
  },
);

e2eTest("AUTH before STARTTLS: 538 5.7.11, and EHLO offers no AUTH in clear text", async () => {
  await using srv = await startServer();
  const c = await SmtpConn.tcp(srv.ports.submission);
  try {
    assertEquals((await c.readReply()).code, 220);
    const ehlo = await c.command("EHLO client.example.test");
    assertEquals(ehlo.code, 250);
    assertEquals(/^AUTH\b/m.test(ehlo.text), false, `EHLO offers AUTH before TLS: ${ehlo.text}`);
    const r = await c.command(`AUTH PLAIN ${authPlain(srv.user, srv.password)}`);
    assertEquals(r.code, 538, r.lines.join("\n"));
    assertMatch(r.text, /^5\.7\.11 /);
    assertEquals((await c.command(`MAIL FROM:<${srv.user}>`)).code, 530);
    assertEquals((await c.command("QUIT")).code, 221);
  } finally {
    c.close();
  }
});
