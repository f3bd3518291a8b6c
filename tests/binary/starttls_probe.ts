// Server-side STARTTLS on node:net + node:tls, the way src/net does it, with nothing else:
// accept a plain socket, answer a tiny SMTP dialogue, and on STARTTLS wrap the accepted
// socket with `new tls.TLSSocket(sock, { isServer: true, secureContext })`. A second port does
// implicit TLS the same way. Runs unchanged on Bun and Deno (`bun|deno run -A
// starttls_probe.ts CERT KEY`); bun_starttls_test.ts drives it with Python's smtplib, because
// Bun's server-side TLS upgrade is known to have had bugs.
//
// Prints {"starttls": port, "implicit": port} on stdout once listening; SIGTERM ends it.
// Commands: EHLO, STARTTLS, NOOP (replies with the TLS state), DATA (replies with the size
// and sha256 of what it received, so the client can check every byte arrived), QUIT.
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as net from "node:net";
import process from "node:process";
import * as tls from "node:tls";

const [certFile, keyFile] = process.argv.slice(2);
if (!certFile || !keyFile) {
  console.error("usage: starttls_probe.ts CERT KEY");
  process.exit(2);
}
const secureContext = tls.createSecureContext({
  cert: readFileSync(certFile, "utf8"),
  key: readFileSync(keyFile, "utf8"),
});

/** One SMTP-like dialogue on `sock`, which may be replaced by its TLS wrapper mid-way. */
function serve(plain: net.Socket, implicit: boolean): void {
  let sock: net.Socket = plain;
  let secure = false;
  let buf = Buffer.alloc(0);
  let inData = false;

  const onData = (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (inData) {
        const end = buf.indexOf("\r\n.\r\n");
        if (end < 0) return;
        const body = buf.subarray(0, end + 2);
        buf = buf.subarray(end + 5);
        inData = false;
        const sha = createHash("sha256").update(body).digest("hex");
        sock.write(`250 2.0.0 ${body.length} ${sha}\r\n`);
        continue;
      }
      const eol = buf.indexOf("\r\n");
      if (eol < 0) return;
      const line = buf.subarray(0, eol).toString("latin1");
      buf = buf.subarray(eol + 2);
      const verb = line.split(" ")[0]!.toUpperCase();
      if (verb === "EHLO") {
        sock.write(secure ? "250-probe\r\n250 AUTH PLAIN\r\n" : "250-probe\r\n250 STARTTLS\r\n");
      } else if (verb === "NOOP") {
        const proto = secure ? (sock as tls.TLSSocket).getProtocol() : "none";
        sock.write(`250 2.0.0 secure=${secure ? "yes" : "no"} protocol=${proto}\r\n`);
      } else if (verb === "DATA") {
        inData = true;
        sock.write("354 End data with <CR><LF>.<CR><LF>\r\n");
      } else if (verb === "QUIT") {
        sock.end("221 2.0.0 Bye\r\n");
        return;
      } else if (verb === "STARTTLS" && !secure) {
        // RFC 3207 §4.2: nothing received before the handshake is used after it. Pause
        // before the 220: without it, on Deno 2.9 about half of the handshakes hung (the
        // client's first TLS bytes reached the flowing plain socket, not the TLS wrapper);
        // Bun 1.4 did not mind. (src/net pauses its sockets whenever no read() waits.)
        plain.pause();
        buf = Buffer.alloc(0);
        sock.removeListener("data", onData);
        sock.write("220 2.0.0 Ready to start TLS\r\n");
        upgrade();
        return;
      } else {
        sock.write("500 5.5.2 Command not recognized\r\n");
      }
    }
  };

  const upgrade = () => {
    const t = new tls.TLSSocket(plain, { isServer: true, secureContext });
    t.on("error", (e) => console.error(`probe: TLS error: ${e.message}`));
    t.once("secure", () => {
      sock = t;
      secure = true;
      t.on("data", onData);
      if (implicit) t.write("220 probe ESMTP\r\n");
    });
  };

  plain.on("error", (e) => console.error(`probe: socket error: ${e.message}`));
  if (implicit) {
    upgrade();
  } else {
    plain.on("data", onData);
    plain.write("220 probe ESMTP\r\n");
  }
  // The servers pause new sockets (as src/net does) until the dialogue is set up.
  plain.resume();
}

function listen(implicit: boolean): Promise<net.Server> {
  const server = net.createServer(
    { allowHalfOpen: false, pauseOnConnect: true },
    (s) => serve(s, implicit),
  );
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

const port = (s: net.Server) => (s.address() as net.AddressInfo).port;
const starttls = await listen(false);
const implicit = await listen(true);
console.log(JSON.stringify({ starttls: port(starttls), implicit: port(implicit) }));
process.on("SIGTERM", () => process.exit(0));
