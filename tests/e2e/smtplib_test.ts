// Python's smtplib against a real `stoken serve`: submission (STARTTLS and implicit TLS)
// and LMTP (TCP and unix socket) with per-recipient replies (RFC 2033 §4.2).
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { e2eTest, parseJson, readLatin1, receivedHeader, simpleMessage } from "../helpers/e2e.ts";
import { runPython, startServer, type TestServer } from "../helpers/server.ts";

type Pair = [number, string];
interface SubmitOut {
  ehlo: Pair | null;
  auth: Pair | null;
  mail: Pair | null;
  rcpt: [string, number, string][];
  data: Pair | null;
  error: string | null;
}
interface LmtpOut {
  lhlo: Pair | null;
  mail: Pair | null;
  rcpt: [string, number, string][];
  data: Pair[];
  error: string | null;
}

async function messageFile(srv: TestServer, name: string, text: string): Promise<string> {
  const path = `${srv.dir}/${name}`;
  await Deno.writeTextFile(path, text);
  return path;
}

async function submit(
  srv: TestServer,
  mode: "starttls" | "ssl",
  subject: string,
  mech?: "PLAIN" | "LOGIN",
): Promise<SubmitOut> {
  const msg = await messageFile(
    srv,
    `${subject}.eml`,
    simpleMessage(srv.user, srv.user, subject, `Hello from smtplib (${subject}).`),
  );
  const port = mode === "ssl" ? srv.ports.submissions : srv.ports.submission;
  const args = ["--mode", mode, "--port", String(port), "--user", srv.user];
  args.push("--password", srv.password, "--from", srv.user, "--to", srv.user, "--message", msg);
  if (mech) args.push("--mech", mech);
  return parseJson<SubmitOut>(await runPython("submit.py", args), "submit.py");
}

async function assertStoredOnce(srv: TestServer, addr: string, subject: string, proto: string) {
  const files = await srv.maildir(addr);
  const matching: string[] = [];
  for (const f of files) {
    const text = await readLatin1(f);
    if (text.includes(`Subject: ${subject}\r\n`)) matching.push(text);
  }
  assertEquals(matching.length, 1, `messages with subject ${subject} in ${addr}'s new/`);
  const received = receivedHeader(matching[0]!);
  assertMatch(received, new RegExp(`\\bwith ${proto}\\b`));
  assertMatch(received, /\bfor <?[^ ;>]+>?;/);
}

e2eTest("smtplib: STARTTLS, AUTH PLAIN and AUTH LOGIN, sendmail to a local user", async () => {
  await using srv = await startServer();
  for (const mech of ["PLAIN", "LOGIN"] as const) {
    const subject = `starttls-${mech}`;
    const out = await submit(srv, "starttls", subject, mech);
    assertEquals(out.error, null, "smtplib error");
    assertMatch(out.ehlo![1], /AUTH PLAIN LOGIN/);
    assertEquals(out.auth?.[0], 235);
    assertEquals(out.mail?.[0], 250);
    assertEquals(out.rcpt.map((r) => r[1]), [250]);
    assertEquals(out.data?.[0], 250);
    assertMatch(out.data![1], /^2\.0\.0 [A-Za-z0-9]{10,32} Message accepted$/);
    await assertStoredOnce(srv, srv.user, subject, "ESMTPSA");
  }
  assertEquals((await srv.maildir(srv.user)).length, 2);
});

e2eTest("smtplib: SMTP_SSL on the implicit-TLS port", async () => {
  await using srv = await startServer();
  const out = await submit(srv, "ssl", "implicit-tls");
  assertEquals(out.error, null, "smtplib error");
  assertEquals(out.auth?.[0], 235);
  assertEquals(out.data?.[0], 250);
  await assertStoredOnce(srv, srv.user, "implicit-tls", "ESMTPSA");
});

e2eTest("smtplib: login with a wrong password gets 535 and nothing is stored", async () => {
  await using srv = await startServer();
  const args = ["--mode", "starttls", "--port", String(srv.ports.submission), "--user", srv.user];
  args.push("--password", srv.password + "x");
  const out = parseJson<SubmitOut>(await runPython("submit.py", args), "submit.py");
  assertMatch(out.error ?? "", /^535 5\.7\.8 /);
  assertEquals(await srv.maildir(srv.user), []);
});

async function lmtpThreeRecipients(useSocket: boolean) {
  await using srv = await startServer();
  const bob = "bob@example.test";
  const added = await srv.cli(["user", "add", bob], "bob-password-0123\n");
  assertEquals(added.code, 0, `user add failed: ${added.stderr}`);

  const subject = useSocket ? "lmtp-unix" : "lmtp-tcp";
  const msg = await messageFile(
    srv,
    "lmtp.eml",
    simpleMessage("sender@remote.test", srv.user, subject, "Three recipients, one unknown."),
  );
  const nobody = "nobody@example.test";
  const args = useSocket ? ["--socket", srv.lmtpSocket] : ["--port", String(srv.ports.lmtp)];
  args.push("--from", "sender@remote.test", "--message", msg);
  for (const to of [srv.user, nobody, bob]) args.push("--to", to);
  const out = parseJson<LmtpOut>(await runPython("lmtp.py", args), "lmtp.py");

  assertEquals(out.error, null, "smtplib.LMTP error");
  assertEquals(out.lhlo?.[0], 250);
  assertEquals(out.mail?.[0], 250);
  assertEquals(out.rcpt.map((r) => [r[0], r[1]]), [[srv.user, 250], [nobody, 550], [bob, 250]]);
  assertMatch(out.rcpt[1]![2], /^5\.1\.1 /);
  // One reply per accepted recipient, in RCPT order (RFC 2033 §4.2).
  assertEquals(out.data.length, 2);
  assertEquals(out.data.map((d) => d[0]), [250, 250]);
  assertMatch(out.data[0]![1], new RegExp(`^2\\.0\\.0 <${srv.user}> [A-Za-z0-9]{10,32} Saved$`));
  assertMatch(out.data[1]![1], new RegExp(`^2\\.0\\.0 <${bob}> [A-Za-z0-9]{10,32} Saved$`));

  await assertStoredOnce(srv, srv.user, subject, "LMTP");
  await assertStoredOnce(srv, bob, subject, "LMTP");
  assertEquals(await srv.maildir(nobody), []);
}

e2eTest(
  "smtplib.LMTP over TCP: three recipients, the unknown one refused with 5.1.1",
  () => lmtpThreeRecipients(false),
);

e2eTest(
  "smtplib.LMTP over the unix socket: three recipients, one unknown",
  () => lmtpThreeRecipients(true),
);

e2eTest("smtplib: the Received header names the authenticated protocol and recipient", async () => {
  await using srv = await startServer();
  const out = await submit(srv, "starttls", "trace");
  assertEquals(out.data?.[0], 250);
  const [file] = await srv.maildir(srv.user);
  assert(file !== undefined, "message stored");
  const received = receivedHeader(await readLatin1(file));
  assertMatch(received, /^Received: from client\.example\.test \(.*127\.0\.0\.1.*\)/);
  assertMatch(received, new RegExp(`for <?${srv.user.replace(".", "\\.")}>?;`));
});
