// The client end to end against the scripted test server (plain TCP; TLS is in tls_test.ts):
// pipelined and step-by-step transactions, LMTP per-recipient replies, refusals, AUTH, and a
// hostile or broken server.
import * as net from "node:net";
import { assert, assertEquals, assertMatch, assertRejects } from "../assert.ts";
import {
  ClientError,
  type OpenOptions,
  type SendResult,
  SmtpClient,
} from "../../src/client/smtp_client.ts";
import { latin1Bytes, normalized, seeded } from "./_bytes.ts";
import { netTest } from "./_helpers.ts";
import { type Recorded, type ServerOptions, startServer } from "./_server.ts";

function options(port: number, lmtp = false): OpenOptions {
  return { host: "127.0.0.1", port, tls: "none", lmtp, helo: "client.example", timeoutMs: 5000 };
}

async function withClient(
  server: ServerOptions,
  fn: (c: SmtpClient, rec: Recorded) => Promise<void>,
  timeoutMs = 5000,
): Promise<void> {
  const s = await startServer(server);
  try {
    const c = await SmtpClient.open({ ...options(s.port, server.lmtp ?? false), timeoutMs });
    try {
      await fn(c, s.rec);
    } finally {
      c.close();
    }
  } finally {
    await s.close();
  }
}

function codes(r: SendResult) {
  return {
    mail: r.mail.code,
    rcpts: r.rcpts.map((x) => x.code),
    data: r.data.map((x) => x?.code ?? null),
    dataReply: r.dataReply?.code,
  };
}

async function clientError(p: Promise<unknown>, kind: ClientError["kind"]): Promise<ClientError> {
  const e = await assertRejects(() => p);
  assert(e instanceof ClientError, `expected a ClientError, got ${e}`);
  assertEquals(e.kind, kind, e.message);
  return e;
}

const BODY = "Subject: test\r\n\r\n.leading dot\nbare LF\rbare CR\r\nno final newline";

netTest("pipelined: MAIL, RCPTs and DATA in one go (RFC 2920)", async () => {
  // holdUntilData: the server answers MAIL and RCPT only once DATA is in, so a client that
  // waited for each reply would hang until its timeout.
  await withClient({ holdUntilData: true }, async (c, rec) => {
    assert(c.extensions.has("PIPELINING"));
    const r = await c.send(
      "a@example.com",
      [{ address: "x@foo.test" }, { address: "y@foo.test" }],
      latin1Bytes(BODY),
    );
    assertEquals(codes(r), { mail: 250, rcpts: [250, 250], data: [250, 250], dataReply: 354 });
    assertEquals(rec.messages, [{
      from: "a@example.com",
      rcpts: ["x@foo.test", "y@foo.test"],
      body: normalized(BODY),
    }]);
    assertEquals(rec.violations, []);
  }, 2000);
});

netTest("without PIPELINING: one command at a time", async () => {
  await withClient({ pipelining: false }, async (c, rec) => {
    assert(!c.extensions.has("PIPELINING"));
    const r = await c.send("a@example.com", [{ address: "x@foo.test" }], latin1Bytes(BODY));
    assertEquals(codes(r), { mail: 250, rcpts: [250], data: [250], dataReply: 354 });
    assertEquals(rec.messages[0]?.body, normalized(BODY));
    assertEquals(rec.violations, []);
  });
});

netTest("LMTP: one reply per accepted recipient, mapped back by position", async () => {
  const server: ServerOptions = {
    lmtp: true,
    rcpt: (a) => (a.startsWith("refused") ? "550 5.1.1 User unknown" : "250 2.1.5 OK"),
    final: (a) =>
      a === "full@foo.test"
        ? `552 5.2.2 <${a}> Mailbox full`
        : `250 2.1.13 <${a}> tok${a.length}xxxxxxxxxxxxxxxxxxx id${a.length} Saved`,
  };
  for (const pipelining of [true, false]) {
    await withClient({ ...server, pipelining }, async (c, rec) => {
      const r = await c.send("a@example.com", [
        { address: "one@foo.test" },
        { address: "refused@foo.test" },
        { address: "full@foo.test" },
        { address: "four4@foo.test" },
      ], latin1Bytes("hi\r\n"));
      assertEquals(codes(r), {
        mail: 250,
        rcpts: [250, 550, 250, 250],
        data: [250, null, 552, 250],
        dataReply: 354,
      });
      assertEquals(r.data[0]?.text, "<one@foo.test> tok12xxxxxxxxxxxxxxxxxxx id12 Saved");
      assertEquals(r.data[2]?.enhanced, "5.2.2");
      assertEquals(r.data[3]?.text, "<four4@foo.test> tok14xxxxxxxxxxxxxxxxxxx id14 Saved");
      assertEquals(rec.messages[0]?.rcpts, ["one@foo.test", "full@foo.test", "four4@foo.test"]);
      assertEquals(rec.commands[0], "LHLO client.example");
      assertEquals(rec.violations, []);
    });
  }
});

netTest("SMTP: the one final reply is every accepted recipient's outcome", async () => {
  await withClient({
    rcpt: (a) => (a === "bad@foo.test" ? "550 5.7.1 Relay access denied" : "250 2.1.5 OK"),
    final: () => "250 2.0.0 abc Message accepted",
  }, async (c) => {
    const r = await c.send(
      "a@example.com",
      [{ address: "ok@foo.test" }, { address: "bad@foo.test" }],
      latin1Bytes("x"),
    );
    assertEquals(codes(r).data, [250, null]);
    assertEquals(r.data[0]?.text, "abc Message accepted");
  });
});

netTest("every RCPT refused: no body, DATA refusal returned, transaction reset", async () => {
  for (const pipelining of [true, false]) {
    await withClient({ pipelining, rcpt: () => "550 5.1.1 User unknown" }, async (c, rec) => {
      const r = await c.send("a@example.com", [{ address: "x@foo.test" }], latin1Bytes("x"));
      assertEquals(codes(r), {
        mail: 250,
        rcpts: [550],
        data: [null],
        dataReply: pipelining ? 554 : undefined,
      });
      assertEquals(rec.messages, []);
      assertEquals(rec.commands.at(-1), "RSET");
      // Step by step, DATA is never sent when nothing can be delivered.
      assertEquals(rec.commands.includes("DATA"), pipelining);
      // The connection is still good for the next transaction.
      const n = await c.command("NOOP");
      assertEquals(n.code, 250);
    });
  }
});

netTest("every RCPT refused but DATA says 354: only the terminator is sent", async () => {
  await withClient({
    rcpt: () => "550 5.1.1 User unknown",
    dataNoRcpt: "354 Go ahead anyway",
    final: () => "554 5.5.1 No valid recipients",
  }, async (c, rec) => {
    const r = await c.send("a@example.com", [{ address: "x@foo.test" }], latin1Bytes("secret"));
    assertEquals(codes(r), { mail: 250, rcpts: [550], data: [null], dataReply: 354 });
    // The server's view: an empty message with no recipient; the body never left.
    assertEquals(rec.messages, [{ from: "a@example.com", rcpts: [], body: "" }]);
    assertEquals((await c.command("NOOP")).code, 250);
  });
});

netTest("LMTP: 354 with no accepted recipient is a protocol error (RFC 2033 §4.2)", async () => {
  await withClient({
    lmtp: true,
    rcpt: () => "550 5.1.1 User unknown",
    dataNoRcpt: "354 Go ahead anyway",
  }, async (c, rec) => {
    await clientError(
      c.send("a@example.com", [{ address: "x@foo.test" }], latin1Bytes("x")),
      "protocol",
    );
    assertEquals(rec.messages, []);
  });
});

netTest("MAIL refused step by step: no RCPT sent, each recipient gets the MAIL reply", async () => {
  await withClient(
    { pipelining: false, mail: () => "553 5.7.1 Sender not owned" },
    async (c, rec) => {
      const r = await c.send(
        "a@example.com",
        [{ address: "x@foo.test" }, { address: "y@foo.test" }],
        latin1Bytes("x"),
      );
      assertEquals(codes(r), {
        mail: 553,
        rcpts: [553, 553],
        data: [null, null],
        dataReply: undefined,
      });
      assertEquals(rec.commands.filter((l) => l.startsWith("RCPT")), []);
      assert(!rec.commands.includes("RSET"));
    },
  );
});

netTest("DATA refused: accepted recipients get the refusal", async () => {
  await withClient({ data: "451 4.3.0 Try later" }, async (c, rec) => {
    const r = await c.send(
      "a@example.com",
      [{ address: "x@foo.test" }, { address: "y@foo.test" }],
      latin1Bytes("x"),
    );
    assertEquals(codes(r), { mail: 250, rcpts: [250, 250], data: [451, 451], dataReply: 451 });
    assertEquals(rec.messages, []);
    assertEquals(rec.commands.at(-1), "RSET");
  });
});

netTest("DATA answered with 421 and a hang-up: the refusal is the result", async () => {
  const override = (l: string) => (l === "DATA" ? "421 4.3.2 Shutting down\r\n" : undefined);
  await withClient({ override }, async (c, rec) => {
    const r = await c.send("a@example.com", [{ address: "x@foo.test" }], latin1Bytes("x"));
    assertEquals(codes(r), { mail: 250, rcpts: [250], data: [421], dataReply: 421 });
    assertEquals(rec.messages, []);
    // The connection is gone: the next call says so.
    await clientError(c.command("NOOP"), "network");
  });
});

netTest("parameters go on MAIL and RCPT as written", async () => {
  await withClient({}, async (c, rec) => {
    await c.send(
      "a@example.com",
      [
        { address: "x@foo.test", params: { STOKEN: "s6xW15h9Dh_-", MYSTOKEN: "Enm3HX76Mb" } },
        { address: "y@foo.test" },
      ],
      latin1Bytes("x"),
      { BODY: "8BITMIME", SMTPUTF8: "" },
    );
    assertEquals(rec.commands.slice(1, 4), [
      "MAIL FROM:<a@example.com> BODY=8BITMIME SMTPUTF8",
      "RCPT TO:<x@foo.test> STOKEN=s6xW15h9Dh_- MYSTOKEN=Enm3HX76Mb",
      "RCPT TO:<y@foo.test>",
    ]);
    // The null sender is allowed.
    await c.send("", [{ address: "x@foo.test" }], latin1Bytes("x"));
    assertEquals(rec.commands.filter((l) => l.startsWith("MAIL")).at(-1), "MAIL FROM:<>");
  });
});

netTest("bad addresses and parameters are refused before anything is sent", async () => {
  await withClient({}, async (c, rec) => {
    const before = rec.commands.length;
    const bad: [
      string,
      { address: string; params?: Record<string, string> },
      Record<string, string>,
    ][] = [
      ["a@x\r\nRSET", { address: "x@foo.test" }, {}],
      ["a@x", { address: "x@foo.test>\r\nDATA" }, {}],
      ["a@x", { address: "" }, {}],
      ["a@x", { address: "x@foo.test", params: { STOKEN: "tok en" } }, {}],
      ["a@x", { address: "x@foo.test", params: { STOKEN: "a=b" } }, {}],
      ["a@x", { address: "x@foo.test", params: { "BAD KEY": "v" } }, {}],
      ["a@x", { address: "x@foo.test" }, { SIZE: "1\r\nRSET" }],
    ];
    for (const [from, rcpt, mailParams] of bad) {
      const e = await assertRejects(() => c.send(from, [rcpt], latin1Bytes("x"), mailParams));
      assert(e instanceof TypeError, `${e}`);
    }
    const e = await assertRejects(() =>
      c.send(
        "a@x",
        [{ address: "x@foo.test", params: { STOKEN: "SECRETTOKEN value" } }],
        latin1Bytes("x"),
      )
    );
    assert(!e.message.includes("SECRETTOKEN"), e.message);
    assertMatch(e.message, /"STOKEN"/);
    await assertRejects(() => c.send("a@x", [], latin1Bytes("x")));
    await assertRejects(() => c.command("NOOP\r\nRSET"));
    assertEquals(rec.commands.length, before);
    // Nothing was broken by the refused calls.
    assertEquals((await c.command("NOOP")).code, 250);
  });
});

netTest("AUTH STOKEN sends recipient NUL token; AUTH PLAIN NUL user NUL password", async () => {
  await withClient({ lmtp: true, extensions: ["AUTH STOKEN", "STOKEN"] }, async (c, rec) => {
    assertEquals(c.extensions.get("AUTH"), "STOKEN");
    assertEquals(c.extensions.get("STOKEN"), "");
    const r = await c.authStoken("user@foo.com", "s6xW15h9Dh");
    assertEquals([r.code, r.enhanced, r.text], [235, "2.7.0", "OK"]);
    assertEquals(await c.authPlain("me@a.test", "pässword"), r);
    const utf8 = new TextDecoder("latin1").decode(new TextEncoder().encode("pässword"));
    assertEquals(rec.auth, ["user@foo.com\0s6xW15h9Dh", `\0me@a.test\0${utf8}`]);
    // The exact wire form of the draft's example, with a real NUL byte.
    assertEquals(rec.commands[1], "AUTH STOKEN dXNlckBmb28uY29tAHM2eFcxNWg5RGg=");
  });
});

netTest("AUTH answered with 334 is cancelled with *", async () => {
  await withClient({ authReply: "334 " }, async (c, rec) => {
    const r = await c.authPlain("u", "p");
    assertEquals(r.code, 501);
    assertEquals(rec.commands.at(-1), "*");
    assertEquals((await c.command("NOOP")).code, 250);
  });
});

netTest("secrets never appear in error messages", async () => {
  // The server hangs up on AUTH and on RCPT: the errors must not quote what was sent.
  const override = (l: string) => (l.startsWith("AUTH") ? null : undefined);
  await withClient({ override }, async (c) => {
    const e = await clientError(c.authPlain("user", "hunter2-PASSWORD"), "timeout");
    assert(!e.message.includes("hunter2"), e.message);
    assert(!e.message.includes(btoa("\0user\0hunter2-PASSWORD")), e.message);
  }, 300);
  await withClient(
    { override: (l) => (l.startsWith("RCPT") ? "garbage TOKEN123\r\n" : undefined) },
    async (c) => {
      const e = await clientError(
        c.send("a@x", [{ address: "b@y", params: { STOKEN: "TOKEN123" } }], latin1Bytes("x")),
        "protocol",
      );
      assert(!e.message.includes("TOKEN123"), e.message);
    },
  );
});

netTest("a malformed reply mid-session closes the client", async () => {
  await withClient({ override: (l) => (l === "NOOP" ? "2x0 what\r\n" : undefined) }, async (c) => {
    await clientError(c.command("NOOP"), "protocol");
    const e = await clientError(c.command("RSET"), "network");
    assertMatch(e.message, /closed/);
  });
});

netTest("over-long reply lines and over-long replies are protocol errors", async () => {
  await withClient({
    override: (l) => (l === "NOOP" ? "250 " + "x".repeat(5000) + "\r\n" : undefined),
  }, async (c) => {
    await clientError(c.command("NOOP"), "protocol");
  });
  await withClient({
    override: (l) => (l === "RSET" ? "250-x\r\n".repeat(150) + "250 end\r\n" : undefined),
  }, async (c) => {
    await clientError(c.command("RSET"), "protocol");
  });
});

netTest("an empty final reply line is a protocol error", async () => {
  await withClient({ final: () => "" }, async (c) => {
    await clientError(c.send("a@x", [{ address: "b@y" }], latin1Bytes("x")), "protocol");
  });
});

netTest("a silent server times out; a vanished one is a network error", async () => {
  await withClient({ override: (l) => (l === "NOOP" ? null : undefined) }, async (c) => {
    await clientError(c.command("NOOP"), "timeout");
  }, 200);
  // A server that closes right after the greeting.
  const server = net.createServer((s) => {
    // Read (and drop) input, so that the client's close is seen and close() can finish.
    s.resume();
    s.end("220 bye soon\r\n");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const port = (server.address() as net.AddressInfo).port;
    await clientError(SmtpClient.open(options(port)), "network");
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});

netTest("a failing body stream is rethrown as is and no message is delivered", async () => {
  await withClient({}, async (c, rec) => {
    class Boom extends Error {}
    async function* body() {
      yield latin1Bytes("first part\r\n");
      throw new Boom("source failed");
    }
    const e = await assertRejects(() => c.send("a@x", [{ address: "b@y" }], body()));
    assert(e instanceof Boom, `${e}`);
    await clientError(c.command("NOOP"), "network");
    // Give the server a moment to see the connection go, then check nothing was stored.
    await new Promise((r) => setTimeout(r, 50));
    assertEquals(rec.messages, []);
  });
});

netTest("a 2 MB 8-bit body streamed from many chunks arrives intact over LMTP", async () => {
  await withClient({ lmtp: true }, async (c, rec) => {
    const rand = seeded(9);
    const pool = latin1Bytes("abc .\r\n\n\r\xe9\x00.\xff");
    const big = new Uint8Array(2 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = pool[Math.floor(rand() * pool.length)]!;
    async function* chunks() {
      for (let i = 0; i < big.length; i += 1000) yield big.subarray(i, i + 1000);
    }
    const r = await c.send("a@x", [{ address: "b@y" }, { address: "c@y" }], chunks());
    assertEquals(codes(r).data, [250, 250]);
    assertEquals(rec.messages[0]?.body, normalized(new TextDecoder("latin1").decode(big)));
    assertEquals(rec.violations, []);
  });
});

netTest("two transactions on one connection, then QUIT", async () => {
  await withClient({}, async (c, rec) => {
    await c.send("a@x", [{ address: "b@y" }], latin1Bytes("one"));
    await c.send("a@x", [{ address: "c@y" }], latin1Bytes("two"));
    assertEquals(rec.messages.map((m) => m.body), ["one\r\n", "two\r\n"]);
    await c.quit();
    assertEquals(rec.commands.at(-1), "QUIT");
    await clientError(c.command("NOOP"), "network");
  });
});

netTest("calls must not overlap", async () => {
  await withClient({}, async (c) => {
    const first = c.command("NOOP");
    const e = await assertRejects(() => c.command("NOOP"));
    assertMatch(e.message, /busy/);
    assertEquals((await first).code, 250);
  });
});

netTest("a refusing greeting fails open() with the reply attached", async () => {
  const s = await startServer({ greeting: "554 5.3.2 Not now\r\n" });
  try {
    const e = await clientError(SmtpClient.open(options(s.port)), "protocol");
    assertEquals(e.reply?.code, 554);
    assertEquals(e.reply?.text, "Not now");
  } finally {
    await s.close();
  }
});

netTest("EHLO refused: HELO instead, with no extensions; LHLO refused fails", async () => {
  await withClient({
    override: (l) => (l.startsWith("EHLO") ? "502 5.5.2 No EHLO here\r\n" : undefined),
  }, async (c, rec) => {
    assertEquals(c.extensions.size, 0);
    assertEquals(rec.commands, ["EHLO client.example", "HELO client.example"]);
    const r = await c.send("a@x", [{ address: "b@y" }], latin1Bytes("x"));
    assertEquals(codes(r).data, [250]);
  });
  // An SMTP server spoken to in LMTP refuses LHLO.
  const s = await startServer({ lmtp: false });
  try {
    const e = await clientError(SmtpClient.open(options(s.port, true)), "protocol");
    assertEquals(e.reply?.code, 500);
  } finally {
    await s.close();
  }
});
