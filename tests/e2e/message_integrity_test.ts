// A 2 MB message with lines starting with ".", lines over 1000 octets and 8-bit bytes
// arrives byte-identical, with only the trace header put in front (RFC 5321 §4.4, §4.5.2).
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { e2eTest, parseJson } from "../helpers/e2e.ts";
import { runPython, startServer, type TestServer } from "../helpers/server.ts";

/** Deterministic pseudo-random bytes (xorshift32), so a failure can be reproduced. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

function bigMessage(from: string, to: string, subject: string): Uint8Array {
  const rand = rng(0x5eed);
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [
    enc.encode(
      `From: <${from}>\r\nTo: <${to}>\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\n` +
        `Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n`,
    ),
  ];
  const ascii = (n: number) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = 0x20 + Math.floor(rand() * 95);
    return b;
  };
  const eightBit = (n: number) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const v = Math.floor(rand() * 256);
      b[i] = v === 0 || v === 10 || v === 13 ? 0x80 + (v % 64) : v; // no NUL, CR, LF
    }
    return b;
  };
  let size = parts[0]!.length;
  for (let i = 0; size < 2 * 1024 * 1024; i++) {
    let line: Uint8Array;
    switch (i % 7) {
      case 0:
        line = enc.encode(".");
        break;
      case 1:
        line = enc.encode(".. two dots " + i);
        break;
      case 2:
        line = new Uint8Array([0x2e, ...ascii(20 + Math.floor(rand() * 60))]);
        break;
      case 3:
        line = ascii(1001 + Math.floor(rand() * 4000)); // over RFC 5321's 1000-octet line
        break;
      case 4:
        line = eightBit(40 + Math.floor(rand() * 400));
        break;
      case 5:
        line = enc.encode(""); // empty line
        break;
      default:
        line = ascii(Math.floor(rand() * 78));
    }
    parts.push(line, enc.encode("\r\n"));
    size += line.length + 2;
  }
  parts.push(enc.encode(".\r\n")); // a last line that is only a dot, before the real end
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

async function assertIdentical(srv: TestServer, addr: string, sent: Uint8Array) {
  const files = await srv.maildir(addr);
  assertEquals(files.length, 1, "one message stored");
  const stored = await Deno.readFile(files[0]!);
  assert(stored.length > sent.length, "stored message is longer than the sent one");
  const tail = stored.subarray(stored.length - sent.length);
  let firstDiff = -1;
  for (let i = 0; i < sent.length; i++) {
    if (tail[i] !== sent[i]) {
      firstDiff = i;
      break;
    }
  }
  assertEquals(firstDiff, -1, "offset of the first differing byte after the trace header");
  // What comes before is exactly one header field: "Received:" and its folded lines.
  const prefix = new TextDecoder().decode(stored.subarray(0, stored.length - sent.length));
  assertMatch(prefix, /^Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*$/);
  assertMatch(files[0]!, new RegExp(`,S=${stored.length}$`));
}

e2eTest("2 MB message with dot lines, long lines and 8-bit bytes: submission", async () => {
  await using srv = await startServer();
  const msg = bigMessage(srv.user, srv.user, "big-submission");
  const path = `${srv.dir}/big.eml`;
  await Deno.writeFile(path, msg);
  const args = ["--mode", "starttls", "--port", String(srv.ports.submission)];
  args.push("--user", srv.user, "--password", srv.password);
  args.push("--from", srv.user, "--to", srv.user, "--message", path);
  const out = parseJson<{ data: [number, string] | null; error: string | null }>(
    await runPython("submit.py", args),
    "submit.py",
  );
  assertEquals(out.error, null);
  assertEquals(out.data?.[0], 250);
  await assertIdentical(srv, srv.user, msg);
});

e2eTest("2 MB message with dot lines, long lines and 8-bit bytes: LMTP", async () => {
  await using srv = await startServer();
  const msg = bigMessage("sender@remote.test", srv.user, "big-lmtp");
  const path = `${srv.dir}/big.eml`;
  await Deno.writeFile(path, msg);
  const args = ["--port", String(srv.ports.lmtp), "--from", "sender@remote.test"];
  args.push("--to", srv.user, "--message", path);
  const out = parseJson<{ data: [number, string][]; error: string | null }>(
    await runPython("lmtp.py", args),
    "lmtp.py",
  );
  assertEquals(out.error, null);
  assertEquals(out.data.map((d) => d[0]), [250]);
  await assertIdentical(srv, srv.user, msg);
});
