// An oversized command line (PROTOCOL.md §10, RFC 5321 §4.5.3.1.4): 500 5.5.6, the session
// goes on, and the server does not buffer the line (memory stays bounded).
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { e2eTest } from "../helpers/e2e.ts";
import { startServer } from "../helpers/server.ts";
import { SmtpConn } from "../helpers/smtp_conn.ts";

const MiB = 1024 * 1024;

/**
 * Send one command line of `totalBytes` without a newline, then CRLF. `maxGrowthKiB` bounds
 * the growth of the server's resident memory (a memory bound, not a timing).
 */
async function longLine(totalBytes: number, maxGrowthKiB: number, label: string) {
  await using srv = await startServer();
  const c = await SmtpConn.tcp(srv.ports.lmtp);
  try {
    assertEquals((await c.readReply()).code, 220);
    assertEquals((await c.command("LHLO mta.example.test")).code, 250);
    const before = await srv.rssKiB();

    // No newline anywhere in the line; written in 1 MiB pieces.
    const piece = new Uint8Array(MiB).fill(0x41);
    for (let sent = 0; sent < totalBytes; sent += MiB) await c.write(piece);
    await c.write("\r\n");

    const r = await c.readReply();
    assertEquals(r.code, 500, `${label}: ${r.lines.join("\n")}`);
    assertMatch(r.text, /^5\.5\.6 Line too long$/);
    const noop = await c.command("NOOP");
    assertEquals(noop.code, 250, `${label}: NOOP after the long line: ${noop.lines.join("\n")}`);
    const after = await srv.rssKiB();
    assert(
      after - before < maxGrowthKiB,
      `${label}: server RSS grew by ${after - before} KiB (from ${before} to ${after})`,
    );
    assertEquals((await c.command("QUIT")).code, 221);
  } finally {
    c.close();
  }
}

e2eTest(
  "a 1 MB command line without a newline: 500 5.5.6, the session goes on",
  () => longLine(MiB, 64 * 1024, "1 MiB line"),
);

// A server that kept the line would grow by at least its size. Garbage not yet collected
// makes the RSS of a streaming server rise too, then level off (about 70 MiB here whatever
// the size of the line): so the bound is half the line.
e2eTest(
  "a 256 MB command line: still one 500 5.5.6 and server memory below half of it",
  () => longLine(256 * MiB, 128 * 1024, "256 MiB line"),
);

e2eTest("a long line on submission before TLS: 500 5.5.6, then STARTTLS still works", async () => {
  await using srv = await startServer();
  const c = await SmtpConn.tcp(srv.ports.submission);
  try {
    assertEquals((await c.readReply()).code, 220);
    await c.write("EHLO " + "x".repeat(600) + "\r\n");
    const r = await c.readReply();
    assertEquals(r.code, 500, r.lines.join("\n"));
    assertMatch(r.text, /^5\.5\.6 /);
    assertEquals((await c.command("EHLO client.example.test")).code, 250);
    assertEquals((await c.command("STARTTLS")).code, 220);
    await c.startTls();
    assertEquals((await c.command("EHLO client.example.test")).code, 250);
    assertEquals((await c.command("QUIT")).code, 221);
  } finally {
    c.close();
  }
});
