import { assert, assertEquals, assertMatch, assertRejects } from "../assert.ts";
import { listen, readTlsCredentials } from "../../src/net/mod.ts";
import type { Conn, Listener, TlsCredentials } from "../../src/net/mod.ts";
import { bytes, LineClient, makeCert, sleep, text } from "./_helpers.ts";

const certs = makeCert();

/** The first connection the listener yields. */
async function acceptOne(l: Listener): Promise<Conn> {
  for await (const c of l.accept()) return c;
  throw new Error("Listener closed before a connection arrived");
}

/** Read until `want` has been seen (chunks may split anywhere). */
async function readUntil(conn: Conn, want: string): Promise<string> {
  let got = "";
  while (!got.includes(want)) {
    const chunk = await conn.read();
    if (chunk === null) throw new Error(`End of stream before ${JSON.stringify(want)}: ${got}`);
    got += text(chunk);
  }
  return got;
}

Deno.test("tcp: read and write round trip, address and port", async () => {
  const l = await listen({ kind: "tcp", host: "127.0.0.1", port: 0 });
  assert(l.port > 0, "a port was bound");
  assertEquals(l.addr, `127.0.0.1:${l.port}`);
  const client = await LineClient.tcp(l.port);
  const conn = await acceptOne(l);
  assertEquals(conn.remoteAddress, "127.0.0.1");
  assert(conn.remotePort > 0);
  assertEquals(conn.secure, false);
  await client.send("hello\r\n");
  assertEquals(await readUntil(conn, "\r\n"), "hello\r\n");
  await conn.write("world\r\n");
  await conn.write(bytes("again\r\n"));
  assertEquals(await client.line(), "world");
  assertEquals(await client.line(), "again");
  client.close();
  assertEquals(await conn.read(), null);
  conn.close();
  await l.close();
});

Deno.test("tcp: bytes sent before the peer closes are read before null", async () => {
  const l = await listen({ kind: "tcp", host: "127.0.0.1", port: 0 });
  const client = await LineClient.tcp(l.port);
  const conn = await acceptOne(l);
  await client.send("one\r\n");
  await client.send("two\r\n");
  await client.closeWrite();
  assertEquals(await readUntil(conn, "two\r\n"), "one\r\ntwo\r\n");
  assertEquals(await conn.read(), null);
  // Half-closed by the peer: our reply still gets through (QUIT then FIN).
  await conn.write("221 bye\r\n");
  conn.close();
  assertEquals(await client.line(), "221 bye");
  assertEquals(await client.line(), null);
  client.close();
  await l.close();
});

Deno.test("tcp: close() ends a pending read, later writes reject, close is idempotent", async () => {
  const l = await listen({ kind: "tcp", host: "127.0.0.1", port: 0 });
  const client = await LineClient.tcp(l.port);
  const conn = await acceptOne(l);
  const pending = conn.read();
  conn.close();
  assertEquals(await pending, null);
  assertEquals(await conn.read(), null);
  await assertRejects(() => conn.write("x"));
  conn.close();
  assertEquals(await client.line(), null);
  client.close();
  await l.close();
});

Deno.test("tcp: a bind failure names the address", async () => {
  const l = await listen({ kind: "tcp", host: "127.0.0.1", port: 0 });
  const e = await assertRejects(() => listen({ kind: "tcp", host: "127.0.0.1", port: l.port }));
  assertMatch(e.message, new RegExp(`"127\\.0\\.0\\.1:${l.port}"`));
  await l.close();
});

Deno.test("tcp: after close() new connections are refused, open ones keep working", async () => {
  const l = await listen({ kind: "tcp", host: "127.0.0.1", port: 0 });
  const client = await LineClient.tcp(l.port);
  const conn = await acceptOne(l);
  await l.close();
  await assertRejects(() => LineClient.tcp(l.port));
  for await (const _ of l.accept()) throw new Error("a closed listener yielded a connection");
  await client.send("still here\r\n");
  assertEquals(await readUntil(conn, "\r\n"), "still here\r\n");
  await conn.write("yes\r\n");
  assertEquals(await client.line(), "yes");
  conn.close();
  client.close();
});

Deno.test("tcp: an IPv4 client on a dual-stack socket has no ::ffff: prefix", async () => {
  let l: Listener;
  try {
    l = await listen({ kind: "tcp", host: "::", port: 0 });
  } catch {
    return; // No IPv6 on this machine.
  }
  const client = await LineClient.tcp(l.port, "127.0.0.1");
  const conn = await acceptOne(l);
  assertEquals(conn.remoteAddress, "127.0.0.1");
  assertEquals(l.addr, `[::]:${l.port}`);
  conn.close();
  client.close();
  await l.close();
});

Deno.test("startTls: upgrade, then plaintext sent before the 220 is never read", async () => {
  const { cert, key } = await certs;
  const l = await listen({ kind: "tcp", host: "127.0.0.1", port: 0 });
  const client = await LineClient.tcp(l.port);
  const conn = await acceptOne(l);
  await client.send("STARTTLS\r\n");
  assertEquals(await readUntil(conn, "\r\n"), "STARTTLS\r\n");
  // A pipelined command after STARTTLS (RFC 3207 §6 attack); give it time to reach the server.
  await client.send("RCPT TO:<evil@example.com>\r\n");
  await sleep(200);
  await conn.write("220 2.0.0 Ready\r\n");
  const upgrading = conn.startTls(() => ({ cert, key }));
  assertEquals(await client.line(), "220 2.0.0 Ready");
  await client.startTls(cert);
  const tls = await upgrading;
  assertEquals(tls.secure, true);
  assertEquals(tls.remoteAddress, "127.0.0.1");
  assertEquals(await conn.read(), null, "the plaintext Conn reads nothing more");
  await client.send("EHLO x\r\n");
  assertEquals(await readUntil(tls, "\r\n"), "EHLO x\r\n");
  await tls.write("250 ok\r\n");
  assertEquals(await client.line(), "250 ok");
  client.close();
  assertEquals(await tls.read(), null);
  tls.close();
  await l.close();
});

Deno.test("startTls: a client hello that arrives before startTls() is called is kept", async () => {
  const { cert, key } = await certs;
  const l = await listen({ kind: "tcp", host: "127.0.0.1", port: 0 });
  const client = await LineClient.tcp(l.port);
  const conn = await acceptOne(l);
  // A read first, so the runtime is already pulling bytes off the socket.
  await client.send("STARTTLS\r\n");
  assertEquals(await readUntil(conn, "\r\n"), "STARTTLS\r\n");
  await conn.write("220 2.0.0 Ready\r\n");
  assertEquals(await client.line(), "220 2.0.0 Ready");
  const clientUpgrade = client.startTls(cert);
  // The server is slow to start its side: the client's handshake is already buffered.
  await sleep(200);
  const tls = await conn.startTls(() => ({ cert, key }));
  await clientUpgrade;
  await client.send("EHLO x\r\n");
  assertEquals(await readUntil(tls, "\r\n"), "EHLO x\r\n");
  tls.close();
  client.close();
  await l.close();
});

Deno.test("startTls: a failed handshake rejects", async () => {
  const { cert, key } = await certs;
  const l = await listen({ kind: "tcp", host: "127.0.0.1", port: 0 });
  const client = await LineClient.tcp(l.port);
  const conn = await acceptOne(l);
  await conn.write("220 go ahead\r\n");
  const upgrading = conn.startTls(() => ({ cert, key }));
  assertEquals(await client.line(), "220 go ahead");
  await client.send("this is not a TLS client hello\r\n");
  const e = await assertRejects(() => upgrading);
  assertMatch(e.message, /TLS handshake failed/);
  conn.close();
  client.close();
  await l.close();
});

Deno.test("implicit TLS: handshake before accept, round trip", async () => {
  const { cert, key } = await certs;
  const l = await listen({ kind: "tcp", host: "127.0.0.1", port: 0, tls: () => ({ cert, key }) });
  const client = await LineClient.tls(l.port, cert);
  const conn = await acceptOne(l);
  assertEquals(conn.secure, true);
  assertEquals(conn.remoteAddress, "127.0.0.1");
  await client.send("EHLO x\r\n");
  assertEquals(await readUntil(conn, "\r\n"), "EHLO x\r\n");
  await conn.write("250 ok\r\n");
  assertEquals(await client.line(), "250 ok");
  conn.close();
  assertEquals(await client.line(), null);
  client.close();
  await l.close();
});

Deno.test("implicit TLS: a failed handshake is dropped and the listener keeps serving", async () => {
  const { cert, key } = await certs;
  const l = await listen({ kind: "tcp", host: "127.0.0.1", port: 0, tls: () => ({ cert, key }) });
  const plain = await LineClient.tcp(l.port);
  await plain.send("EHLO plain\r\n");
  assertEquals(await plain.line(), null, "the server hangs up on a non-TLS client");
  plain.close();
  const client = await LineClient.tls(l.port, cert);
  const conn = await acceptOne(l);
  assertEquals(conn.secure, true, "the first connection yielded is the TLS one");
  await client.send("NOOP\r\n");
  assertEquals(await readUntil(conn, "\r\n"), "NOOP\r\n");
  conn.close();
  client.close();
  await l.close();
});

Deno.test("TLS: credentials that cannot be used fail that connection only", async () => {
  const { cert, key } = await certs;
  let broken = true;
  const source = () => {
    if (broken) throw new Error("no credentials");
    return { cert, key };
  };
  const l = await listen({ kind: "tcp", host: "127.0.0.1", port: 0, tls: source });
  await assertRejects(() => LineClient.tls(l.port, cert));
  broken = false;
  const client = await LineClient.tls(l.port, cert);
  const conn = await acceptOne(l);
  assertEquals(conn.secure, true);
  conn.close();
  client.close();
  // STARTTLS with the broken source: startTls() rejects and the client is hung up on.
  broken = true;
  await l.close();
  const l2 = await listen({ kind: "tcp", host: "127.0.0.1", port: 0 });
  const p2 = await LineClient.tcp(l2.port);
  const conn2 = await acceptOne(l2);
  const e = await assertRejects(() => conn2.startTls(source));
  assertMatch(e.message, /no credentials/);
  conn2.close();
  assertEquals(await p2.line(), null);
  p2.close();
  await l2.close();
});

Deno.test("implicit TLS: new credentials apply to new connections only", async () => {
  const a = await certs;
  const b = await makeCert();
  let current: TlsCredentials = { cert: a.cert, key: a.key };
  const l = await listen({ kind: "tcp", host: "127.0.0.1", port: 0, tls: () => current });
  const first = await LineClient.tls(l.port, a.cert);
  const firstConn = await acceptOne(l);
  current = { cert: b.cert, key: b.key };
  await assertRejects(() => LineClient.tls(l.port, a.cert), "old certificate no longer served");
  const second = await LineClient.tls(l.port, b.cert);
  const secondConn = await acceptOne(l);
  // The connection made before the reload still works.
  await first.send("one\r\n");
  assertEquals(await readUntil(firstConn, "\r\n"), "one\r\n");
  await second.send("two\r\n");
  assertEquals(await readUntil(secondConn, "\r\n"), "two\r\n");
  for (const c of [firstConn, secondConn]) c.close();
  first.close();
  second.close();
  await l.close();
});

Deno.test("unix: listen, mode 0660, peer address is unix, file removed on close", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/lmtp.sock`;
  const l = await listen({ kind: "unix", path });
  assertEquals(l.addr, `unix:${path}`);
  assertEquals(l.port, 0);
  assertEquals((await Deno.stat(path)).mode! & 0o777, 0o660);
  const client = await LineClient.unix(path);
  const conn = await acceptOne(l);
  assertEquals(conn.remoteAddress, "unix");
  await client.send("LHLO x\r\n");
  assertEquals(await readUntil(conn, "\r\n"), "LHLO x\r\n");
  await conn.write("250 ok\r\n");
  assertEquals(await client.line(), "250 ok");
  conn.close();
  client.close();
  await l.close();
  await assertRejects(() => Deno.stat(path), "socket file removed");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("unix: a stale socket file is replaced, a live one or a regular file is not", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/lmtp.sock`;
  // A socket file nobody listens on, as a crashed process leaves behind.
  const made = await new Deno.Command("python3", {
    args: ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path],
  }).output();
  assert(made.success, "python3 made a socket file");
  const l = await listen({ kind: "unix", path });
  const e = await assertRejects(() => listen({ kind: "unix", path }));
  assertMatch(e.message, /in use/);
  const client = await LineClient.unix(path);
  const conn = await acceptOne(l);
  conn.close();
  client.close();
  await l.close();
  const file = `${dir}/file`;
  await Deno.writeTextFile(file, "keep me");
  const e2 = await assertRejects(() => listen({ kind: "unix", path: file }));
  assertMatch(e2.message, /not a socket/);
  assertEquals(await Deno.readTextFile(file), "keep me");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("readTlsCredentials: reads a good pair, names the file that is missing or bad", async () => {
  const a = await certs;
  const b = await makeCert();
  const creds = await readTlsCredentials(a.certPath, a.keyPath);
  assertEquals(creds, { cert: a.cert, key: a.key });
  const missing = await assertRejects(() => readTlsCredentials("/nonexistent/cert.pem", a.keyPath));
  assertMatch(missing.message, /"\/nonexistent\/cert\.pem"/);
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/bad.pem`, "-----BEGIN CERTIFICATE-----\nnope\n");
  const badCert = await assertRejects(() => readTlsCredentials(`${dir}/bad.pem`, a.keyPath));
  assertMatch(badCert.message, /Invalid TLS certificate ".*bad\.pem"/);
  const badKey = await assertRejects(() => readTlsCredentials(a.certPath, `${dir}/bad.pem`));
  assertMatch(badKey.message, /Invalid TLS key ".*bad\.pem"/);
  const mismatch = await assertRejects(() => readTlsCredentials(a.certPath, b.keyPath));
  assertMatch(mismatch.message, /do not fit together/);
  await Deno.remove(dir, { recursive: true });
});
