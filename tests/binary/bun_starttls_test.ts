// Server-side STARTTLS under Bun (issue 5: "known to have had bugs: test it"). The probe
// (starttls_probe.ts) upgrades accepted node:net sockets with node:tls TLSSocket exactly as
// src/net does, and Python's smtplib runs STARTTLS and implicit-TLS sessions against it, 8 of
// each at once, each moving a payload through TLS and checking its sha256. Run on Bun and, as
// the control, on Deno. The full server on Bun is covered by binary_test.ts (the binary is Bun).
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { BINARY_DIR, exec, findBun } from "./_build.ts";
import { selfSignedCertificate } from "../../src/cli/selfsigned.ts";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";

const bun = await findBun();

interface Session {
  mode: "starttls" | "implicit";
  size: number;
  ok: boolean;
  protocol: string | null;
  error: string | null;
}

async function probe(runtime: string[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "stoken-starttls-probe-"));
  const { certPem, keyPem } = await selfSignedCertificate("localhost");
  await writeFile(join(dir, "cert.pem"), certPem);
  await writeFile(join(dir, "key.pem"), keyPem);
  const [cmd, ...pre] = runtime;
  const child = new Deno.Command(cmd!, {
    args: [...pre, join(BINARY_DIR, "starttls_probe.ts"), "cert.pem", "key.pem"],
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let first = "";
    while (!first.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the probe exited before listening:\n${await stderr}`);
      first += value;
    }
    reader.releaseLock();
    const ports = JSON.parse(first) as { starttls: number; implicit: number };
    const r = await exec("python3", [
      join(BINARY_DIR, "starttls_client.py"),
      ...["--starttls-port", String(ports.starttls), "--implicit-port", String(ports.implicit)],
      ...["--parallel", "8"],
    ], { timeoutMs: 120_000 });
    assertEquals(r.code, 0, `starttls_client.py failed:\n${r.stderr}`);
    const { sessions } = JSON.parse(r.stdout) as { sessions: Session[] };
    assertEquals(sessions.length, 16);
    const failed = sessions.filter((s) => !s.ok);
    assertEquals(failed, [], "sessions that failed");
    for (const s of sessions) assertMatch(s.protocol!, /^TLSv1\.[23]$/, `${s.mode} protocol`);
    assert(sessions.some((s) => s.mode === "starttls" && s.size === 1 << 20), "1 MiB via STARTTLS");
  } finally {
    try {
      child.kill("SIGTERM");
    } catch { /* exited */ }
    await child.status;
    await child.stdout.cancel().catch(() => {});
    await stderr;
    await rm(dir, { recursive: true, force: true });
  }
}

Deno.test({
  name: "Bun: server-side STARTTLS and implicit TLS via node:tls TLSSocket, 16 sessions",
  ignore: bun === null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () => probe([bun!]),
});

Deno.test({
  name: "Deno (control): the same probe, the same client",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () => probe([Deno.execPath(), "run", "--allow-all"]),
});
