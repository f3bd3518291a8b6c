// Processes and files the client tests need: certificates made with openssl, a dnsmasq, a
// Postfix smtp-sink. Each start* returns something to stop in a finally block.
import * as net from "node:net";
import { makeResolver } from "../../src/net/dns.ts";

/**
 * A test that opens sockets and child processes and always closes them itself; Deno's
 * sanitizers cannot see through node:net sockets, so they are off.
 */
export function netTest(
  name: string,
  fn: () => Promise<void>,
  opts: { ignore?: boolean } = {},
): void {
  Deno.test({
    name,
    sanitizeOps: false,
    sanitizeResources: false,
    ignore: opts.ignore ?? false,
    fn,
  });
}

/** The path of an executable, or null when it is not installed. */
export function which(name: string): string | null {
  for (const dir of [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/sbin"]) {
    const p = `${dir}/${name}`;
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch {
      // Not here.
    }
  }
  return null;
}

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

export interface Certs {
  dir: string;
  /** PEM of the CA that signed the server certificate. */
  ca: string;
  /** PEM of an unrelated CA. */
  otherCa: string;
  /** Server certificate for DNS:mail.a.test and IP:127.0.0.1, and its key. */
  cert: string;
  key: string;
}

/** A CA, a server certificate for mail.a.test signed by it, and an unrelated CA. */
export async function makeCerts(): Promise<Certs> {
  const dir = await Deno.makeTempDir({ prefix: "stoken-client-certs-" });
  // Removed when the test module's process ends.
  globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  for (const name of ["ca", "other"]) {
    await run("openssl", [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.pem`,
      "-days",
      "2",
      "-subj",
      `/CN=stoken test ${name}`,
    ], dir);
  }
  await run("openssl", [
    "req",
    ...ec,
    "-keyout",
    "srv.key",
    "-out",
    "srv.csr",
    "-subj",
    "/CN=mail.a.test",
  ], dir);
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=DNS:mail.a.test,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n" +
      "extendedKeyUsage=serverAuth\n",
  );
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    "srv.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "srv.pem",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  ], dir);
  const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
  return {
    dir,
    ca: await read("ca.pem"),
    otherCa: await read("other.pem"),
    cert: await read("srv.pem"),
    key: await read("srv.key"),
  };
}

/** A TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface Running {
  port: number;
  stop(): Promise<void>;
}

async function stopChild(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // Already gone.
  }
  await child.status;
}

/** A dnsmasq on 127.0.0.1 answering from `records` only (NXDOMAIN for other *.test names). */
export async function startDnsmasq(records: string[]): Promise<Running> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = new Deno.Command(which("dnsmasq") ?? "dnsmasq", {
      args: [
        "--no-daemon",
        `--port=${port}`,
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--conf-file=/dev/null",
        "--pid-file=",
        "--local=/test/",
        ...records,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    // Ready once it answers a query; gone (port taken) means try another port.
    const r = makeResolver([`127.0.0.1:${port}`], { timeoutMs: 200, tries: 1 });
    for (let i = 0; i < 50; i++) {
      try {
        await r.a("ready.probe.test");
        return { port, stop: () => stopChild(child) };
      } catch {
        // Not listening yet.
      }
    }
    await stopChild(child);
  }
  throw new Error("dnsmasq did not start");
}

/** Waits until something accepts TCP connections on port. */
async function waitListening(port: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect({ host: "127.0.0.1", port });
      c.once("connect", () => {
        c.destroy();
        resolve(true);
      });
      c.once("error", () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Postfix's smtp-sink, dumping each message into dumpDir (file names end with "."+hex). */
export async function startSmtpSink(args: string[], dumpDir: string): Promise<Running> {
  // smtp-sink drops privileges to `nobody` for the dump files.
  await Deno.chmod(dumpDir, 0o777);
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = new Deno.Command(which("smtp-sink")!, {
      args: ["-u", "nobody", "-d", `${dumpDir}/%M.`, ...args, `127.0.0.1:${port}`, "100"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    if (await waitListening(port)) return { port, stop: () => stopChild(child) };
    await stopChild(child);
  }
  throw new Error("smtp-sink did not start");
}
