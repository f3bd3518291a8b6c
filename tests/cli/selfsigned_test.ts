import { connect, createServer, type TLSSocket } from "node:tls";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { selfSignedCertificate } from "../../src/cli/selfsigned.ts";

async function openssl(args: string[]): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
}

Deno.test("the certificate parses in openssl with the requested fields", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stoken-cert-" });
  try {
    const now = new Date("2030-06-01T12:00:00Z");
    const { certPem, keyPem } = await selfSignedCertificate("mail.example.test", now);
    assertMatch(
      certPem,
      /^-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=]{1,64}\n)+-----END CERTIFICATE-----\n$/,
    );
    assertMatch(keyPem, /^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    const cert = join(dir, "cert.pem");
    const key = join(dir, "key.pem");
    await Deno.writeTextFile(cert, certPem);
    await Deno.writeTextFile(key, keyPem);

    const text = await openssl(["x509", "-noout", "-text", "-in", cert]);
    assertEquals(text.code, 0, text.out);
    assertMatch(text.out, /Version: 3 \(0x2\)/);
    assertMatch(text.out, /Signature Algorithm: ecdsa-with-SHA256/);
    assertMatch(text.out, /Subject: CN ?= ?mail\.example\.test/);
    assertMatch(text.out, /Issuer: CN ?= ?mail\.example\.test/);
    assertMatch(text.out, /NIST CURVE: P-256/);
    assertMatch(text.out, /Basic Constraints: critical\s+CA:FALSE/);
    assertMatch(text.out, /Key Usage: critical\s+Digital Signature\n/);
    assertMatch(text.out, /Extended Key Usage:\s+TLS Web Server Authentication\n/);
    assertMatch(text.out, /DNS:mail\.example\.test, DNS:localhost, IP Address:127\.0\.0\.1/);
    assertMatch(text.out, /Not Before: Jun {2}1 11:55:00 2030 GMT/);
    assertMatch(text.out, /Not After : Jun {2}1 12:00:00 2031 GMT/);

    // The signature checks out against its own key, and the key is sound.
    const verify = await openssl([
      "verify",
      "-attime",
      String(now.getTime() / 1000),
      "-CAfile",
      cert,
      cert,
    ]);
    assertEquals(verify.code, 0, verify.out);
    const pkey = await openssl(["pkey", "-check", "-noout", "-in", key]);
    assertEquals(pkey.code, 0, pkey.out);
    // The key belongs to the certificate.
    const fromCert = await openssl(["x509", "-noout", "-pubkey", "-in", cert]);
    const fromKey = await openssl(["pkey", "-pubout", "-in", key]);
    assertEquals(fromCert.out, fromKey.out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serial numbers are random and positive; localhost is not listed twice", async () => {
  const a = await selfSignedCertificate("localhost");
  const b = await selfSignedCertificate("localhost");
  assert(a.certPem !== b.certPem && a.keyPem !== b.keyPem);
  const dir = await Deno.makeTempDir({ prefix: "stoken-cert-" });
  try {
    await Deno.writeTextFile(join(dir, "c.pem"), a.certPem);
    const text = await openssl(["x509", "-noout", "-text", "-in", join(dir, "c.pem")]);
    assertMatch(text.out, /DNS:localhost, IP Address:127\.0\.0\.1\n/);
    const serial = await openssl(["x509", "-noout", "-serial", "-in", join(dir, "c.pem")]);
    assertMatch(serial.out, /^serial=[0-7][0-9A-F]{31}\n$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a TLS handshake with the certificate verifies against it as the trust anchor", async () => {
  const { certPem, keyPem } = await selfSignedCertificate("mail.example.test");
  const server = createServer({ cert: certPem, key: keyPem }, (s) => s.end("hello\n"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  try {
    for (const servername of ["mail.example.test", "localhost"]) {
      const sock: TLSSocket = connect({ host: "127.0.0.1", port, servername, ca: [certPem] });
      let cn: unknown;
      const got = await new Promise<string>((resolve, reject) => {
        let data = "";
        sock.on("secureConnect", () => {
          if (!sock.authorized) reject(new Error(`not authorized: ${sock.authorizationError}`));
          cn = sock.getPeerCertificate().subject?.CN;
        });
        sock.on("data", (d) => data += d);
        sock.on("end", () => resolve(data));
        sock.on("error", reject);
      });
      assertEquals(got, "hello\n");
      assertEquals(cn, "mail.example.test");
      sock.destroy();
    }
    // A name the certificate does not carry fails verification: the check above is real.
    const bad = connect({ host: "127.0.0.1", port, servername: "other.example", ca: [certPem] });
    const failed = await new Promise<boolean>((resolve) => {
      bad.on("secureConnect", () => resolve(false));
      bad.on("error", () => resolve(true));
    });
    bad.destroy();
    assert(failed, "a wrong host name must not verify");
  } finally {
    await new Promise((r) => server.close(r));
  }
});
