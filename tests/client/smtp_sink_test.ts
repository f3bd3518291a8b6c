// The client against a server nobody here wrote: Postfix's smtp-sink, in SMTP and LMTP mode.
// It dumps each message (headers it adds, then the message with LF line ends), which shows
// what a real server made of our envelope, parameters and dot-stuffed body.
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { SmtpClient } from "../../src/client/smtp_client.ts";
import { latin1Bytes, normalized } from "./_bytes.ts";
import { netTest, startSmtpSink, which } from "./_helpers.ts";

const haveSink = which("smtp-sink") !== null;
if (!haveSink) {
  console.warn("smtp-sink not installed (Debian package postfix): smtp_sink_test.ts skipped");
}

async function withSink(
  args: string[],
  fn: (port: number, dumps: () => Promise<string[]>) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stoken-sink-" });
  const sink = await startSmtpSink(args, dir);
  const dumps = async () => {
    const out: string[] = [];
    for await (const e of Deno.readDir(dir)) out.push(await Deno.readTextFile(`${dir}/${e.name}`));
    return out;
  };
  try {
    await fn(sink.port, dumps);
  } finally {
    await sink.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The message part of an smtp-sink dump: after its three-line Received header. */
function dumpedMessage(dump: string): string {
  const at = dump.indexOf("\nReceived: ");
  assert(at >= 0, "no Received header in the dump");
  const lines = dump.slice(at + 1).split("\n");
  return lines.slice(3).join("\n");
}

const BODY = "Subject: sink\r\n\r\n.dot line\n..two dots\r\nbare CR\rend\r\n.\r\nafter dot";

netTest("SMTP to smtp-sink: pipelined envelope with parameters and a tricky body", async () => {
  await withSink([], async (port, dumps) => {
    const c = await SmtpClient.open({
      host: "127.0.0.1",
      port,
      tls: "none",
      lmtp: false,
      helo: "client.example",
      timeoutMs: 5000,
    });
    assert(c.extensions.has("PIPELINING"));
    assertEquals(c.extensions.get("AUTH"), "PLAIN LOGIN");
    // smtp-sink accepts any AUTH, with a plain 250.
    const auth = await c.authPlain("user", "secret");
    assertEquals(Math.floor(auth.code / 100), 2);
    const r = await c.send(
      "from@example.com",
      [{ address: "a@foo.test", params: { STOKEN: "tok_A-1" } }, { address: "b@foo.test" }],
      latin1Bytes(BODY),
    );
    assertEquals([r.mail.code, ...r.rcpts.map((x) => x.code)], [250, 250, 250]);
    assertEquals(r.data.map((x) => x?.code), [250, 250]);
    assertEquals(r.data[0]?.enhanced, "2.0.0");
    await c.quit();
    const [dump, ...more] = await dumps();
    assertEquals(more, []);
    assertMatch(dump!, /^X-Client-Proto: ESMTP$/m);
    assertMatch(dump!, /^X-Mail-Args: <from@example\.com>$/m);
    assertMatch(dump!, /^X-Rcpt-Args: <a@foo\.test> STOKEN=tok_A-1$/m);
    assertMatch(dump!, /^X-Rcpt-Args: <b@foo\.test>$/m);
    // smtp-sink stores LF line ends and adds an empty line after the message.
    assertEquals(dumpedMessage(dump!), normalized(BODY).replaceAll("\r\n", "\n") + "\n");
  });
}, { ignore: !haveSink });

netTest("LMTP to smtp-sink: one reply per recipient", async () => {
  await withSink(["-L"], async (port, dumps) => {
    const c = await SmtpClient.open({
      host: "127.0.0.1",
      port,
      tls: "none",
      lmtp: true,
      helo: "client.example",
      timeoutMs: 5000,
    });
    const r = await c.send(
      "from@example.com",
      [{ address: "a@foo.test" }, { address: "b@foo.test" }, { address: "c@foo.test" }],
      latin1Bytes("Subject: lmtp\r\n\r\nhello"),
    );
    assertEquals(r.data.map((x) => x?.code), [250, 250, 250]);
    await c.quit();
    const [dump] = await dumps();
    assertMatch(dump!, /^X-Client-Proto: LMTP$/m);
    assertEquals(dumpedMessage(dump!), "Subject: lmtp\n\nhello\n\n");
  });
}, { ignore: !haveSink });

netTest("smtp-sink refusing every RCPT: step by step, no DATA, no message", async () => {
  // -f implies no PIPELINING, so this is the step-by-step path against a real server.
  await withSink(["-f", "RCPT"], async (port, dumps) => {
    const c = await SmtpClient.open({
      host: "127.0.0.1",
      port,
      tls: "none",
      lmtp: false,
      helo: "client.example",
      timeoutMs: 5000,
    });
    assert(!c.extensions.has("PIPELINING"));
    const r = await c.send("from@example.com", [{ address: "a@foo.test" }], latin1Bytes("x"));
    assertEquals(r.rcpts.map((x) => Math.floor(x.code / 100)), [5]);
    assertEquals(r.data, [null]);
    assertEquals(r.dataReply, undefined);
    // The client reset the open transaction, so a second one starts cleanly.
    const again = await c.send("from@example.com", [{ address: "b@foo.test" }], latin1Bytes("x"));
    assertEquals(again.mail.code, 250);
    await c.quit();
    assertEquals(await dumps(), []);
  });
}, { ignore: !haveSink });
