// TLS on the client side: implicit TLS and STARTTLS against a test server whose certificate
// (for mail.a.test) is signed by a CA made here. Verification passes with that CA and the
// right name, and fails without the CA, with another CA, or for another name. Plaintext sent
// after the STARTTLS 220 is never taken as a reply.
import * as net from "node:net";
import * as tls from "node:tls";
import { assert, assertEquals, assertMatch, assertRejects } from "../assert.ts";
import { ClientError, type OpenOptions, SmtpClient } from "../../src/client/smtp_client.ts";
import { connect, startTlsClient } from "../../src/net/connect.ts";
import { type Certs, freePort, makeCerts, netTest } from "./_helpers.ts";
import { type ServerOptions, startServer } from "./_server.ts";

let certs: Certs | null = null;
async function getCerts(): Promise<Certs> {
  certs ??= await makeCerts();
  return certs;
}

async function withServer(
  opts: ServerOptions,
  fn: (
    port: number,
    c: Certs,
    rec: Awaited<ReturnType<typeof startServer>>["rec"],
  ) => Promise<void>,
): Promise<void> {
  const c = await getCerts();
  const s = await startServer({ cert: c.cert, key: c.key, ...opts });
  try {
    await fn(s.port, c, s.rec);
  } finally {
    await s.close();
  }
}

function base(port: number, tlsMode: OpenOptions["tls"]): OpenOptions {
  return {
    host: "127.0.0.1",
    port,
    tls: tlsMode,
    lmtp: false,
    helo: "client.example",
    servername: "mail.a.test",
    timeoutMs: 5000,
  };
}

async function tlsFailure(opts: OpenOptions): Promise<ClientError> {
  const e = await assertRejects(() => SmtpClient.open(opts));
  assert(e instanceof ClientError, `expected a ClientError, got ${e}`);
  assertEquals(e.kind, "tls", e.message);
  return e;
}

netTest("implicit TLS: verified with the CA and the right name", async () => {
  await withServer({ tls: "implicit", extensions: ["STOKEN"] }, async (port, c, rec) => {
    const client = await SmtpClient.open({ ...base(port, "implicit"), ca: c.ca });
    try {
      assert(client.secure);
      assert(client.extensions.has("STOKEN"));
      assertEquals(client.greeting.code, 220);
      assertEquals(rec.secureCommands, ["EHLO client.example"]);
    } finally {
      await client.quit();
    }
  });
});

netTest("implicit TLS: refused without the CA, with another CA, for another name", async () => {
  await withServer({ tls: "implicit" }, async (port, c, rec) => {
    await tlsFailure(base(port, "implicit"));
    await tlsFailure({ ...base(port, "implicit"), ca: c.otherCa });
    const e = await tlsFailure({ ...base(port, "implicit"), ca: c.ca, servername: "mx.b.test" });
    assertMatch(e.message, /mx\.b\.test|altname|name/i);
    // Not one command was sent to an unverified server.
    assertEquals(rec.commands, []);
  });
});

netTest("implicit TLS without servername checks the host (an IP SAN here)", async () => {
  await withServer({ tls: "implicit" }, async (port, c) => {
    const { servername: _, ...opts } = base(port, "implicit");
    const client = await SmtpClient.open({ ...opts, ca: c.ca });
    assert(client.secure);
    await client.quit();
  });
});

netTest("implicit TLS against a plaintext server is a TLS failure", async () => {
  await withServer({ tls: "none" }, async (port, c) => {
    await tlsFailure({ ...base(port, "implicit"), ca: c.ca });
  });
});

netTest("STARTTLS: upgrade, verify, and EHLO again", async () => {
  await withServer({ tls: "starttls", extensions: ["STOKEN"] }, async (port, c, rec) => {
    const client = await SmtpClient.open({ ...base(port, "starttls"), ca: c.ca });
    try {
      assert(client.secure);
      // STOKEN is only offered after TLS: the extensions are the second EHLO's.
      assert(client.extensions.has("STOKEN"));
      assert(!client.extensions.has("STARTTLS"));
      assertEquals(rec.commands, ["EHLO client.example", "STARTTLS", "EHLO client.example"]);
      assertEquals(rec.secureCommands, ["EHLO client.example"]);
      assertEquals(rec.violations, []);
    } finally {
      await client.quit();
    }
  });
});

netTest("STARTTLS: refused without the CA, with another CA, for another name", async () => {
  await withServer({ tls: "starttls" }, async (port, c, rec) => {
    await tlsFailure(base(port, "starttls"));
    await tlsFailure({ ...base(port, "starttls"), ca: c.otherCa });
    await tlsFailure({ ...base(port, "starttls"), ca: c.ca, servername: "mx.b.test" });
    assertEquals(rec.secureCommands, []);
  });
});

netTest("LMTP over STARTTLS says LHLO both times", async () => {
  await withServer(
    { tls: "starttls", lmtp: true, extensions: ["STOKEN"] },
    async (port, c, rec) => {
      const client = await SmtpClient.open({ ...base(port, "starttls"), lmtp: true, ca: c.ca });
      assert(client.extensions.has("STOKEN"));
      await client.quit();
      assertEquals(rec.commands.slice(0, 3), [
        "LHLO client.example",
        "STARTTLS",
        "LHLO client.example",
      ]);
    },
  );
});

netTest("STARTTLS injection: plaintext after the 220 is discarded (RFC 3207 §4.2)", async () => {
  // A complete fake EHLO reply follows the 220 in the same write. Taken as the reply to the
  // second EHLO it would bring X-INJECTED and shift every later reply by one.
  const inject = "250-evil.example\r\n250-X-INJECTED\r\n250 STOKEN\r\n";
  await withServer(
    { tls: "starttls", injectAfterStartTls: inject, extensions: ["REAL"] },
    async (port, c) => {
      const client = await SmtpClient.open({ ...base(port, "starttls"), ca: c.ca });
      try {
        assert(!client.extensions.has("X-INJECTED"), "the injected reply was used");
        assert(client.extensions.has("REAL"));
        // Still in step: NOOP gets its own reply, not the second EHLO's.
        const r = await client.command("NOOP");
        assertEquals([r.code, r.enhanced, r.text], [250, "2.0.0", "OK"]);
      } finally {
        await client.quit();
      }
    },
  );
});

netTest("STARTTLS required but not offered fails; optional goes on in clear", async () => {
  await withServer({ tls: "none" }, async (port, c, rec) => {
    const e = await tlsFailure({ ...base(port, "starttls"), ca: c.ca });
    assertMatch(e.message, /STARTTLS/);
    const client = await SmtpClient.open({ ...base(port, "starttls"), requireTls: false });
    assert(!client.secure);
    await client.quit();
    assert(!rec.commands.includes("STARTTLS"));
  });
});

netTest("STARTTLS refused by the server is a TLS failure with the reply", async () => {
  await withServer(
    {
      tls: "starttls",
      override: (l) => (l === "STARTTLS" ? "454 4.7.0 TLS not available\r\n" : undefined),
    },
    async (port, c) => {
      const e = await tlsFailure({ ...base(port, "starttls"), ca: c.ca });
      assertEquals(e.reply?.code, 454);
    },
  );
});

netTest("requireTls with tls none is refused before connecting", async () => {
  const e = await assertRejects(() => SmtpClient.open({ ...base(1, "none"), requireTls: true }));
  assert(e instanceof TypeError);
});

netTest("startTlsClient drops unread plaintext before the handshake", async () => {
  // The server writes a fake reply, then waits for a TLS ClientHello and sends "secret".
  const c = await getCerts();
  const ctx = tls.createSecureContext({ cert: c.cert, key: c.key });
  let written!: () => void;
  const injected = new Promise<void>((r) => (written = r));
  const server = net.createServer((s) => {
    s.on("error", () => {});
    s.write("250 injected\r\n", () => {
      s.removeAllListeners("data");
      const t = new tls.TLSSocket(s, { isServer: true, secureContext: ctx });
      t.on("error", () => {});
      t.once("secure", () => t.write("secret\r\n"));
      written();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const conn = await connect({ host: "127.0.0.1", port, tls: false, timeoutMs: 5000 });
    await injected;
    try {
      const secured = await startTlsClient(conn, {
        servername: "mail.a.test",
        ca: c.ca,
        timeoutMs: 5000,
      });
      // If the handshake got through, the first bytes read are the ones sent under TLS.
      const first = await secured.read();
      assertEquals(new TextDecoder().decode(first ?? new Uint8Array()), "secret\r\n");
      assert(secured.secure);
      secured.close();
    } catch (e) {
      // Or the plaintext reached the TLS layer and broke the handshake: also safe.
      assertEquals((e as { kind?: string }).kind, "tls", String(e));
    }
    // The old connection is unusable either way.
    assertEquals(await conn.read(), null);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});

netTest("connect: refused port is a network failure, silence is a timeout", async () => {
  const port = await freePort();
  const e = await assertRejects(() => SmtpClient.open(base(port, "none")));
  assert(e instanceof ClientError);
  assertEquals(e.kind, "network");

  // A server that accepts and never greets.
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => void sockets.push(s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const silent = (server.address() as net.AddressInfo).port;
  try {
    const t = await assertRejects(() =>
      SmtpClient.open({ ...base(silent, "none"), timeoutMs: 200 })
    );
    assert(t instanceof ClientError);
    assertEquals(t.kind, "timeout");
    // An implicit-TLS handshake that never gets an answer times out too.
    const h = await assertRejects(() =>
      SmtpClient.open({ ...base(silent, "implicit"), timeoutMs: 200 })
    );
    assert(h instanceof ClientError);
    assertEquals(h.kind, "timeout");
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
