// Certificates are reloaded on SIGHUP (issue 5: Let's Encrypt renewals): a new connection
// sees the new certificate, an open session keeps working on the old one. A missing
// certificate at start is a clear error naming the file.
import { copyFile, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertMatch, assertNotEquals } from "../assert.ts";
import { startServer, stoken } from "../helpers/server.ts";

const SCRIPT = fileURLToPath(new URL("./peer_cert.py", import.meta.url));

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

Deno.test("SIGHUP reloads the certificate for new connections; an open session keeps working", async () => {
  await using srv = await startServer();
  const config = JSON.parse(await readFile(srv.config, "utf8"));
  const certPath = join(srv.dir, config.tls.cert);
  const keyPath = join(srv.dir, config.tls.key);
  // A second certificate, made the way `init` makes one.
  const other = join(srv.dir, "other");
  const init = await stoken(["init", "--dir", other, "--hostname", "renewed.example.test"]);
  assertEquals(init.code, 0, init.stderr);

  const child = new Deno.Command("python3", {
    args: [SCRIPT, "127.0.0.1", String(srv.ports.submissions)],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const first = JSON.parse((await lines.read()).value!);

  await copyFile(join(other, "tls", "cert.pem"), certPath);
  await copyFile(join(other, "tls", "key.pem"), keyPath);
  srv.kill("SIGHUP");
  await waitFor(() => srv.logs().includes('"event":"tls_reloaded"'), "the reload");

  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode("go\n"));
  await w.close();
  let rest = "";
  for (;;) {
    const { value, done } = await lines.read();
    if (done) break;
    rest += value;
  }
  const status = await child.status;
  assert(status.success, "peer_cert.py failed");
  const second = JSON.parse(rest);
  assertNotEquals(second.new, first.old, "a new connection sees the new certificate");
  assertEquals(second.old_again, first.old, "the open session keeps its certificate");
  assertEquals(second.old_noop, 250, "the open session keeps working");
  await child.stderr.cancel();
});

Deno.test("a missing certificate at start is an error naming the file", async () => {
  await using srv = await startServer();
  await srv.stop();
  const config = JSON.parse(await readFile(srv.config, "utf8"));
  const certPath = join(srv.dir, config.tls.cert);
  await rm(certPath);
  const r = await stoken(["serve", "--config", srv.config], { timeoutMs: 20_000 });
  assertNotEquals(r.code, 0);
  assertMatch(r.stderr, new RegExp(certPath.replace(/[.]/g, "\\.")));
});
