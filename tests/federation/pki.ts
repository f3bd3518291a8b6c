// A private CA and server certificates made with the openssl command line, for the
// federation scenario: each stoken's certificate for mail.<domain> is signed by the test CA
// and is an end-entity certificate (basicConstraints CA:FALSE; TLS clients refuse a CA
// certificate presented as a server's own).
import { join } from "node:path";
import { run } from "../helpers/server.ts";

export interface Ca {
  /** PEM file of the CA certificate (what remote.ca_file points at). */
  readonly cert: string;
  readonly key: string;
}

export interface ServerCert {
  readonly cert: string;
  readonly key: string;
}

async function openssl(args: string[]): Promise<void> {
  const r = await run("openssl", args, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`openssl ${args[0]} failed (exit ${r.code}):\n${r.stderr}`);
}

/** A random positive 64-bit serial number: no shared serial file, so certificates can be made at once. */
function serial(): string {
  const b = crypto.getRandomValues(new Uint8Array(8));
  b[0] = b[0]! & 0x7f;
  return "0x" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** A self-signed CA named `name`, files in `dir`. */
export async function makeCa(dir: string, name: string): Promise<Ca> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  // deno-fmt-ignore
  await openssl([
    "req", "-x509", ...EC_KEY, "-keyout", key, "-out", cert, "-days", "2",
    "-subj", `/CN=${name}`,
    "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  return { cert, key };
}

/** A server certificate for `host` signed by `ca`, files in `dir`. */
export async function makeServerCert(dir: string, ca: Ca, host: string): Promise<ServerCert> {
  const key = join(dir, `${host}.key`);
  const csr = join(dir, `${host}.csr`);
  const cert = join(dir, `${host}.pem`);
  const ext = join(dir, `${host}.ext`);
  await Deno.writeTextFile(
    ext,
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth",
      `subjectAltName=DNS:${host}`,
      "",
    ].join("\n"),
  );
  await openssl(["req", "-new", ...EC_KEY, "-keyout", key, "-out", csr, "-subj", `/CN=${host}`]);
  // deno-fmt-ignore
  await openssl([
    "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-set_serial", serial(),
    "-out", cert, "-days", "2", "-extfile", ext,
  ]);
  return { cert, key };
}
