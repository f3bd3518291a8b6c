// swaks (a stock SMTP/LMTP test client) against a real `stoken serve`.
import { assertEquals, assertMatch } from "../assert.ts";
import { e2eTest, readLatin1, receivedHeader } from "../helpers/e2e.ts";
import { run, type RunResult, startServer, type TestServer } from "../helpers/server.ts";

function swaks(args: string[]): Promise<RunResult> {
  return run("swaks", ["--timeout", "60", ...args]);
}

async function storedWith(srv: TestServer, addr: string, subject: string): Promise<string> {
  const texts = await Promise.all((await srv.maildir(addr)).map(readLatin1));
  const hits = texts.filter((t) => t.includes(`Subject: ${subject}\r\n`));
  assertEquals(hits.length, 1, `messages with subject ${subject} in ${addr}'s new/`);
  return receivedHeader(hits[0]!);
}

e2eTest("swaks: STARTTLS and AUTH PLAIN on the submission port", async () => {
  await using srv = await startServer();
  const r = await swaks([
    ...["--server", "127.0.0.1", "--port", String(srv.ports.submission)],
    ...["--tls", "--auth", "PLAIN", "--auth-user", srv.user, "--auth-password", srv.password],
    ...["--from", srv.user, "--to", srv.user, "--header", "Subject: swaks-starttls"],
    ...["--body", "Sent by swaks."],
  ]);
  assertEquals(r.code, 0, `swaks failed:\n${r.stdout}${r.stderr}`);
  assertMatch(r.stdout, /<~ +235 2\.7\.0 /);
  assertMatch(r.stdout, /<~ +250 2\.0\.0 [A-Za-z0-9]+ Message accepted/);
  assertMatch(await storedWith(srv, srv.user, "swaks-starttls"), /\bwith ESMTPSA\b/);
});

e2eTest("swaks: implicit TLS (--tls-on-connect) on the submissions port", async () => {
  await using srv = await startServer();
  const r = await swaks([
    ...["--server", "127.0.0.1", "--port", String(srv.ports.submissions), "--tls-on-connect"],
    ...["--auth", "LOGIN", "--auth-user", srv.user, "--auth-password", srv.password],
    ...["--from", srv.user, "--to", srv.user, "--header", "Subject: swaks-implicit"],
  ]);
  assertEquals(r.code, 0, `swaks failed:\n${r.stdout}${r.stderr}`);
  assertMatch(r.stdout, /<~ +235 2\.7\.0 /);
  assertMatch(await storedWith(srv, srv.user, "swaks-implicit"), /\bwith ESMTPSA\b/);
});

e2eTest("swaks: without STARTTLS no AUTH is offered, so nothing is sent", async () => {
  await using srv = await startServer();
  const r = await swaks([
    ...["--server", "127.0.0.1", "--port", String(srv.ports.submission)],
    ...["--auth", "PLAIN", "--auth-user", srv.user, "--auth-password", srv.password],
    ...["--from", srv.user, "--to", srv.user],
  ]);
  // Without STARTTLS the server does not advertise AUTH, so swaks cannot authenticate.
  assertEquals(r.code !== 0, true, `swaks should fail:\n${r.stdout}`);
  assertEquals(await srv.maildir(srv.user), []);
});

e2eTest("swaks: --protocol LMTP to the LMTP port and to the unix socket", async () => {
  await using srv = await startServer();
  const tcp = await swaks([
    ...["--protocol", "LMTP", "--server", "127.0.0.1", "--port", String(srv.ports.lmtp)],
    ...["--from", "sender@remote.test", "--to", srv.user, "--header", "Subject: swaks-lmtp"],
  ]);
  assertEquals(tcp.code, 0, `swaks failed:\n${tcp.stdout}${tcp.stderr}`);
  assertMatch(tcp.stdout, new RegExp(`<- +250 2\\.0\\.0 <${srv.user}> [A-Za-z0-9]+ Saved`));
  assertMatch(await storedWith(srv, srv.user, "swaks-lmtp"), /\bwith LMTP\b/);

  const unix = await swaks([
    ...["--protocol", "LMTP", "--socket", srv.lmtpSocket],
    ...["--from", "sender@remote.test", "--to", srv.user, "--header", "Subject: swaks-unix"],
  ]);
  assertEquals(unix.code, 0, `swaks failed:\n${unix.stdout}${unix.stderr}`);
  assertMatch(await storedWith(srv, srv.user, "swaks-unix"), /\bwith LMTP\b/);
});
