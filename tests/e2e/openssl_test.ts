// `openssl s_client -starttls smtp`: a TLS stack nobody here wrote, scripted through stdin.
import { assertEquals, assertMatch } from "../assert.ts";
import { authPlain, e2eTest } from "../helpers/e2e.ts";
import { run, startServer } from "../helpers/server.ts";

e2eTest("openssl s_client -starttls smtp: EHLO, AUTH PLAIN, QUIT", async () => {
  await using srv = await startServer();
  // -quiet implies -ign_eof: s_client keeps reading until the server closes after QUIT.
  const r = await run("openssl", [
    ...["s_client", "-starttls", "smtp", "-connect", `127.0.0.1:${srv.ports.submission}`],
    "-quiet",
  ], {
    stdin: `EHLO client.example.test\r\nAUTH PLAIN ${
      authPlain(srv.user, srv.password)
    }\r\nQUIT\r\n`,
    timeoutMs: 60_000,
  });
  assertEquals(r.code, 0, `openssl failed:\n${r.stdout}${r.stderr}`);
  // After TLS, EHLO offers AUTH (PROTOCOL.md §2) and the credentials are accepted.
  assertMatch(r.stdout, /^250[ -]AUTH PLAIN LOGIN\r?$/m);
  assertMatch(r.stdout, /^235 2\.7\.0 Authentication successful\r?$/m);
  assertMatch(r.stdout, /^221 /m);
});

e2eTest("openssl s_client -starttls smtp: wrong password gets 535", async () => {
  await using srv = await startServer({ limits: { auth_failure_delay_ms: 0 } });
  const r = await run("openssl", [
    ...["s_client", "-starttls", "smtp", "-connect", `127.0.0.1:${srv.ports.submission}`],
    "-quiet",
  ], {
    stdin: `EHLO client.example.test\r\nAUTH PLAIN ${authPlain(srv.user, "wrong")}\r\nQUIT\r\n`,
    timeoutMs: 60_000,
  });
  assertMatch(r.stdout, /^535 5\.7\.8 Authentication credentials invalid\r?$/m);
  assertMatch(r.stdout, /^221 /m);
});
