// Dot-stuffing must survive any body: the stuffed output is read back with the server's own
// strict DataReader, which must see no bare line end, stop exactly at the end of the output,
// and return the body with its line ends normalised to CRLF.
import { assert, assertEquals } from "../assert.ts";
import { DotStuffer, stuffedChunks, WRITE_SIZE } from "../../src/client/dot_stuffer.ts";
import { DataReader } from "../../src/protocol/data_reader.ts";
import { concatBytes, latin1Bytes, latin1Text, normalized, seeded } from "./_bytes.ts";

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of it) out.push(c.slice());
  return out;
}

async function* inPieces(b: Uint8Array, sizes: () => number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length;) {
    const n = Math.max(1, sizes());
    yield b.slice(i, i + n);
    i += n;
  }
}

/** The server's view of the stuffed bytes, fed in random chunk sizes. */
function readBack(wire: Uint8Array, seed: number): string {
  const r = new DataReader(Number.MAX_SAFE_INTEGER);
  const rand = seeded(seed);
  const body: Uint8Array[] = [];
  let i = 0;
  let end = -1;
  while (i < wire.length) {
    const n = 1 + Math.floor(rand() * 700);
    const chunk = wire.subarray(i, i + n);
    const step = r.push(chunk);
    for (const b of step.body) body.push(b.slice());
    if (step.done) {
      end = i + step.consumed;
      break;
    }
    i += chunk.length;
  }
  assert(!r.bareNewline, "the stuffed body holds a bare CR or LF");
  assertEquals(end, wire.length, "DATA must end exactly at the end of the output");
  return latin1Text(concatBytes(body));
}

const TRICKY: [string, string][] = [
  ["empty", ""],
  ["LF dot LF", "\n.\n"],
  ["CR dot CR", "\r.\r"],
  ["dot CRLF at start", ".\r\nafter"],
  ["lone dot", "."],
  ["two dots", ".."],
  ["terminator inside", "a\r\n.\r\nb\r\n"],
  ["terminator with bare LFs", "a\n.\nRSET\r\nb"],
  ["mixed endings around a dot", "x\r\n.\nMAIL FROM:<evil>\r\n.\r\n"],
  ["no final CRLF", "Subject: x\r\n\r\nlast line"],
  ["final dot without CRLF", "text\r\n."],
  ["only CRLF", "\r\n"],
  ["only CR", "\r"],
  ["only LF", "\n"],
  ["CR CR LF", "a\r\r\nb"],
  ["LF CR", "a\n\rb"],
  ["dot lines", ".\r\n..\r\n...\r\n"],
  ["8-bit and NUL", "caf\xe9 \x00\x80\x9f\xff\r\n.\xff\r\n"],
  ["CR at a chunk edge", "a\r"],
];

Deno.test("tricky bodies come back as their CRLF-normalised selves", async () => {
  for (const [name, body] of TRICKY) {
    const want = normalized(body);
    const b = latin1Bytes(body);
    // Whole, byte by byte, and in random pieces: CRs and dots at chunk edges included.
    const rand = seeded(7);
    for (
      const input of [
        b,
        inPieces(b, () => 1),
        inPieces(b, () => 1 + Math.floor(rand() * 3)),
      ]
    ) {
      const wire = concatBytes(await collect(stuffedChunks(input)));
      assertEquals(readBack(wire, 1), want, name);
    }
  }
});

Deno.test("the stuffed form of a few bodies, byte for byte", async () => {
  const stuffed = async (s: string) =>
    latin1Text(concatBytes(await collect(stuffedChunks(latin1Bytes(s)))));
  assertEquals(await stuffed(""), ".\r\n");
  assertEquals(await stuffed("a"), "a\r\n.\r\n");
  assertEquals(await stuffed(".\r\n"), "..\r\n.\r\n");
  assertEquals(await stuffed("\n.\n"), "\r\n..\r\n.\r\n");
  assertEquals(await stuffed("\r.\r"), "\r\n..\r\n.\r\n");
  assertEquals(await stuffed("a\r\n.b"), "a\r\n..b\r\n.\r\n");
  assertEquals(await stuffed("a.\r\nb."), "a.\r\nb.\r\n.\r\n");
});

Deno.test("random bodies over a small alphabet of line-end bytes and dots", async () => {
  const rand = seeded(42);
  const alphabet = ["\r", "\n", ".", "a", "\r\n", "\xff"];
  for (let n = 0; n < 300; n++) {
    let body = "";
    const len = Math.floor(rand() * 40);
    for (let i = 0; i < len; i++) body += alphabet[Math.floor(rand() * alphabet.length)];
    const b = latin1Bytes(body);
    const wire = concatBytes(
      await collect(stuffedChunks(inPieces(b, () => 1 + Math.floor(rand() * 5)))),
    );
    assertEquals(readBack(wire, n), normalized(body), JSON.stringify(body));
  }
});

Deno.test("a 2 MB body survives and goes out in writes of at least 64 KiB", async () => {
  const rand = seeded(2);
  const b = new Uint8Array(2 * 1024 * 1024);
  // Mostly text with frequent line ends, dots at line starts and 8-bit bytes.
  const pool = latin1Bytes("abc .\r\n\n\r\xe9\x00.");
  for (let i = 0; i < b.length; i++) b[i] = pool[Math.floor(rand() * pool.length)]!;
  const want = normalized(latin1Text(b));
  for (const input of [b, inPieces(b, () => 1 + Math.floor(rand() * 3000))]) {
    const writes = await collect(stuffedChunks(input));
    for (const w of writes.slice(0, -1)) {
      assert(w.length >= WRITE_SIZE, `a write of ${w.length} bytes`);
    }
    // Streamed, never one buffer for the whole body.
    assert(writes.length > 10, `only ${writes.length} writes`);
    for (const w of writes) assert(w.length <= 3 * WRITE_SIZE, `a write of ${w.length} bytes`);
    assertEquals(readBack(concatBytes(writes), 3), want);
  }
});

Deno.test("small input chunks are gathered into big writes", async () => {
  const line = latin1Bytes("0123456789012345678901234567890123456789\r\n");
  async function* lines() {
    for (let i = 0; i < 5000; i++) yield line;
  }
  const writes = await collect(stuffedChunks(lines()));
  assert(writes.length <= 5, `${writes.length} writes`);
  for (const w of writes.slice(0, -1)) assert(w.length >= WRITE_SIZE);
});

Deno.test("the DotStuffer cannot be used after end()", () => {
  const s = new DotStuffer();
  s.end();
  let threw = false;
  try {
    s.push(new Uint8Array(1));
  } catch {
    threw = true;
  }
  assert(threw);
});
