import { assert, assertEquals, assertMatch, assertRejects } from "../assert.ts";
import type { ListenSpec } from "../../src/net/mod.ts";
import { Server, type ServerLimits } from "../../src/server/server.ts";
import type { ListenerKind } from "../../src/session/session.ts";
import { LineClient, makeCert } from "../net/_helpers.ts";
import { Control, FakeSession, LogCapture } from "./_fake.ts";

const certs = makeCert();

const LIMITS: ServerLimits = {
  maxConnections: 100,
  maxConnectionsPerIp: 20,
  idleTimeoutS: 30,
  dataTimeoutS: 30,
  shutdownTimeoutS: 10,
};

interface Harness {
  server: Server;
  control: Control;
  log: LogCapture;
  port: (kind?: string) => number;
}

const local = (): ListenSpec => ({ kind: "tcp", host: "127.0.0.1", port: 0 });

/** Start a server on fresh loopback ports, run `fn`, always shut it down. */
async function withServer(
  opts: {
    limits?: Partial<ServerLimits>;
    listeners?: { kind: ListenerKind; spec: ListenSpec }[];
  },
  fn: (h: Harness) => Promise<void>,
): Promise<void> {
  const { cert, key } = await certs;
  const control = new Control();
  const log = new LogCapture();
  const server = new Server({
    listeners: opts.listeners ?? [{ kind: "submission", spec: local() }],
    makeSession: (info) => new FakeSession(info, control),
    tls: () => ({ cert, key }),
    limits: { ...LIMITS, ...opts.limits },
    log: log.logger,
  });
  await server.start();
  try {
    await fn({ server, control, log, port: (k = "submission") => server.ports()[k]! });
  } finally {
    control.release();
    await server.shutdown();
  }
}

Deno.test("server: greeting, pipelined replies in one batch, QUIT closes", async () => {
  await withServer({}, async ({ port, control, log }) => {
    const c = await LineClient.tcp(port());
    assertEquals(await c.reply(), "220 test submission ready");
    const connect = await log.waitFor("connect");
    assertEquals(connect.ip, "127.0.0.1");
    assertEquals(connect.listener, "submission");
    await c.send("ONE\r\nTWO\r\nQUIT\r\n");
    assertEquals(await c.line(), "250 2.0.0 echo ONE tls=false");
    assertEquals(await c.line(), "250 2.0.0 echo TWO tls=false");
    assertEquals(await c.line(), "221 2.0.0 Bye");
    assertEquals(await c.line(), null, "the server closes after QUIT");
    c.close();
    const bye = await log.waitFor("disconnect");
    assertEquals(bye.reason, "closed by session");
    assertEquals(bye.bytes_in, "ONE\r\nTWO\r\nQUIT\r\n".length);
    assert((bye.bytes_out as number) > 0);
    assertEquals(bye.session, connect.session, "one session id on every line of a connection");
    assertEquals(control.sessions[0]!.ended, 1, "end() once");
    assert(!log.raw.some((l) => l.includes("ONE")), "commands are not logged");
  });
});

Deno.test("server: one session per connection, peer close ends the session", async () => {
  await withServer({}, async ({ port, control, log, server }) => {
    const a = await LineClient.tcp(port());
    const b = await LineClient.tcp(port());
    assertEquals(await a.reply(), "220 test submission ready");
    assertEquals(await b.reply(), "220 test submission ready");
    await a.send("A\r\n");
    await b.send("B\r\n");
    assertEquals(await a.line(), "250 2.0.0 echo A tls=false");
    assertEquals(await b.line(), "250 2.0.0 echo B tls=false");
    assertEquals(server.connections, 2);
    a.close();
    assertEquals((await log.waitFor("disconnect")).reason, "peer closed");
    assertEquals(control.sessions.map((s) => s.ended).sort(), [0, 1]);
    b.close();
    await log.waitFor("disconnect", 2);
    assertEquals(server.connections, 0);
  });
});

Deno.test("server: STARTTLS, and input pipelined after it is never executed", async () => {
  const { cert } = await certs;
  await withServer({}, async ({ port, log }) => {
    const c = await LineClient.tcp(port());
    assertEquals(await c.reply(), "220 test submission ready");
    await c.send("STARTTLS\r\nNOOP\r\n");
    assertEquals(await c.line(), "220 2.0.0 Ready to start TLS");
    await c.startTls(cert);
    await log.waitFor("tls");
    await c.send("EHLO x\r\n");
    assertEquals(await c.line(), "250 2.0.0 echo EHLO x tls=true", "no reply to the NOOP");
    await c.send("QUIT\r\n");
    assertEquals(await c.line(), "221 2.0.0 Bye");
    c.close();
  });
});

Deno.test("server: a failed STARTTLS handshake closes only that connection", async () => {
  await withServer({ limits: { maxConnectionsPerIp: 1 } }, async ({ port, log }) => {
    const c = await LineClient.tcp(port());
    assertEquals(await c.reply(), "220 test submission ready");
    await c.send("STARTTLS\r\n");
    assertEquals(await c.line(), "220 2.0.0 Ready to start TLS");
    await c.send("not a client hello\r\n");
    assertEquals(await c.line(), null);
    c.close();
    assertEquals((await log.waitFor("disconnect")).reason, "tls failed");
    assertEquals((await log.waitFor("tls_failed")).level, "warn");
    // The per-IP slot was given back.
    const d = await LineClient.tcp(port());
    assertEquals(await d.reply(), "220 test submission ready");
    d.close();
  });
});

Deno.test("server: implicit TLS listener; a plaintext client does not stop it", async () => {
  const { cert, key } = await certs;
  const tls = () => ({ cert, key });
  const listeners = [{ kind: "submissions" as const, spec: { ...local(), tls } }];
  await withServer({ listeners }, async ({ port, control }) => {
    const plain = await LineClient.tcp(port("submissions"));
    await plain.send("EHLO plain\r\n");
    assertEquals(await plain.line(), null);
    plain.close();
    const c = await LineClient.tls(port("submissions"), cert);
    assertEquals(await c.reply(), "220 test submissions ready");
    await c.send("EHLO x\r\n");
    assertEquals(await c.line(), "250 2.0.0 echo EHLO x tls=true");
    assertEquals(control.sessions.length, 1, "no session for the failed handshake");
    assertEquals(control.sessions[0]!.info.secure, true);
    c.close();
  });
});

Deno.test("server: LMTP on a unix socket; unix peers share one connection count", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/lmtp.sock`;
  const listeners = [{ kind: "lmtp" as const, spec: { kind: "unix" as const, path } }];
  await withServer({ listeners, limits: { maxConnectionsPerIp: 1 } }, async ({ control }) => {
    const a = await LineClient.unix(path);
    assertEquals(await a.reply(), "220 test lmtp ready");
    assertEquals(control.sessions[0]!.info.remoteAddress, "unix");
    const b = await LineClient.unix(path);
    assertEquals(await b.reply(), "421 4.7.0 Too many connections");
    assertEquals(await b.line(), null);
    b.close();
    a.close();
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("server: over the global limit a client gets 421 4.7.0 and no session", async () => {
  await withServer({ limits: { maxConnections: 1 } }, async ({ port, control, log }) => {
    const a = await LineClient.tcp(port());
    assertEquals(await a.reply(), "220 test submission ready");
    const b = await LineClient.tcp(port());
    assertEquals(await b.reply(), "421 4.7.0 Too many connections");
    assertEquals(await b.line(), null);
    b.close();
    assertEquals(control.sessions.length, 1);
    assertEquals((await log.waitFor("refused")).reason, "connection limit");
    a.close();
    await log.waitFor("disconnect");
    const c = await LineClient.tcp(port());
    assertEquals(await c.reply(), "220 test submission ready", "the slot is free again");
    c.close();
  });
});

Deno.test("server: over the per-IP limit a client gets 421 4.7.0", async () => {
  await withServer({ limits: { maxConnectionsPerIp: 2 } }, async ({ port, log }) => {
    const a = await LineClient.tcp(port());
    const b = await LineClient.tcp(port());
    assertEquals(await a.reply(), "220 test submission ready");
    assertEquals(await b.reply(), "220 test submission ready");
    const c = await LineClient.tcp(port());
    assertEquals(await c.reply(), "421 4.7.0 Too many connections");
    assertEquals(await c.line(), null);
    assertEquals((await log.waitFor("refused")).reason, "per-ip limit");
    for (const x of [a, b, c]) x.close();
  });
});

Deno.test("server: idle timeout gives 421 4.4.2 and closes", async () => {
  await withServer({ limits: { idleTimeoutS: 1 } }, async ({ port, log }) => {
    const c = await LineClient.tcp(port());
    assertEquals(await c.reply(), "220 test submission ready");
    assertEquals(await c.reply(), "421 4.4.2 Idle timeout");
    assertEquals(await c.line(), null);
    c.close();
    assertEquals((await log.waitFor("disconnect")).reason, "idle timeout");
  });
});

Deno.test("server: the idle timeout counts from the last command, not the first", async () => {
  await withServer({ limits: { idleTimeoutS: 2 } }, async ({ port, log }) => {
    const c = await LineClient.tcp(port());
    assertEquals(await c.reply(), "220 test submission ready");
    // Four commands 0.7 s apart: 2.8 s of a busy connection outlive the first deadline.
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 700));
      await c.send(`PING${i}\r\n`);
      assertEquals(await c.reply(), `250 2.0.0 echo PING${i} tls=false`);
    }
    assertEquals(log.events("disconnect"), [], "still connected");
    assertEquals(await c.reply(), "421 4.4.2 Idle timeout");
    assertEquals(await c.line(), null);
    c.close();
    assertEquals((await log.waitFor("disconnect")).reason, "idle timeout");
  });
});

Deno.test("server: DATA uses the data timeout, not the idle one", async () => {
  await withServer({ limits: { idleTimeoutS: 30, dataTimeoutS: 1 } }, async ({ port, log }) => {
    const c = await LineClient.tcp(port());
    assertEquals(await c.reply(), "220 test submission ready");
    await c.send("DATA\r\nSubject: partial\r\n");
    assertEquals(await c.reply(), "354 Go ahead");
    assertEquals(await c.reply(), "421 4.4.2 Idle timeout");
    assertEquals(await c.line(), null);
    c.close();
    assertEquals((await log.waitFor("disconnect")).reason, "data timeout");
  });
});

Deno.test("server: a session error gives 421 4.3.0, is logged, and others go on", async () => {
  await withServer({}, async ({ port, log }) => {
    const a = await LineClient.tcp(port());
    assertEquals(await a.reply(), "220 test submission ready");
    await a.send("BOOM\r\n");
    assertEquals(await a.reply(), "421 4.3.0 Temporary server error");
    assertEquals(await a.line(), null);
    a.close();
    const err = await log.waitFor("session_error");
    assertEquals(err.level, "error");
    assertEquals(err.cause, "boom");
    const b = await LineClient.tcp(port());
    assertEquals(await b.reply(), "220 test submission ready");
    b.close();
  });
});

Deno.test("server: shutdown says 421 4.3.2 to idle sessions, lets a command finish", async () => {
  await withServer({}, async ({ port, server, control, log }) => {
    const idle = await LineClient.tcp(port());
    const busy = await LineClient.tcp(port());
    const data = await LineClient.tcp(port());
    for (const c of [idle, busy, data]) assertEquals(await c.reply(), "220 test submission ready");
    await data.send("DATA\r\nSubject: x\r\n");
    assertEquals(await data.reply(), "354 Go ahead");
    await busy.send("SLOW\r\n");
    await control.slowEntered;

    const stopped = server.shutdown();
    assertEquals(await idle.reply(), "421 4.3.2 Service shutting down");
    assertEquals(await idle.line(), null);
    await assertRejects(() => LineClient.tcp(port()), "new connections are refused");

    // The message in DATA is completed, then the session is told to go.
    await data.send("body\r\n.\r\n");
    assertEquals(await data.reply(), "250 2.0.0 Message accepted");
    assertEquals(await data.reply(), "421 4.3.2 Service shutting down");
    assertEquals(await data.line(), null);

    // The command in progress finishes and its reply is sent before the 421.
    control.release();
    assertEquals(await busy.reply(), "250 2.0.0 Slow command done");
    assertEquals(await busy.reply(), "421 4.3.2 Service shutting down");
    assertEquals(await busy.line(), null);
    await stopped;
    assertEquals(server.connections, 0);
    assertEquals(log.events("disconnect").map((l) => l.reason), [
      "shutdown",
      "shutdown",
      "shutdown",
    ]);
    for (const c of [idle, busy, data]) c.close();
  });
});

Deno.test("server: after the shutdown timeout a stuck command is cut off", async () => {
  await withServer({ limits: { shutdownTimeoutS: 1 } }, async ({ port, server, control, log }) => {
    const busy = await LineClient.tcp(port());
    assertEquals(await busy.reply(), "220 test submission ready");
    await busy.send("SLOW\r\n");
    await control.slowEntered;
    await server.shutdown();
    assertEquals(await busy.line(), null, "closed without a reply");
    assertEquals((await log.waitFor("shutdown_forced")).connections, 1);
    busy.close();
  });
});

Deno.test("server: start() names the address it cannot bind, and binds nothing", async () => {
  const { cert, key } = await certs;
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const takenPort = (taken.addr as Deno.NetAddr).port;
  const log = new LogCapture();
  const server = new Server({
    listeners: [
      { kind: "lmtp", spec: local() },
      { kind: "submission", spec: { kind: "tcp", host: "127.0.0.1", port: takenPort } },
    ],
    makeSession: (info) => new FakeSession(info, new Control()),
    tls: () => ({ cert, key }),
    limits: LIMITS,
    log: log.logger,
  });
  const e = await assertRejects(() => server.start());
  assertMatch(e.message, new RegExp(`submission.*"127\\.0\\.0\\.1:${takenPort}"`));
  assertEquals(log.events("listening"), [], "no listener left running");
  taken.close();
  await server.shutdown();
});

Deno.test("server: ports() by listener kind", async () => {
  const listeners = [
    { kind: "submission" as const, spec: local() },
    { kind: "lmtp" as const, spec: local() },
    { kind: "submission" as const, spec: local() },
  ];
  await withServer({ listeners }, async ({ server }) => {
    const p = server.ports();
    assertEquals(Object.keys(p).sort(), ["lmtp", "submission", "submission_2"]);
    assert(Object.values(p).every((n) => n > 0));
    const c = await LineClient.tcp(p.lmtp!);
    assertEquals(await c.reply(), "220 test lmtp ready");
    c.close();
  });
});
