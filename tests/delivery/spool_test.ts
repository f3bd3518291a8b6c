import { stat } from "node:fs/promises";
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertRejects } from "../assert.ts";
import { MemorySpillSpool } from "../../src/delivery/spool.ts";
import type { SpooledMessage } from "../../src/session/deps.ts";

/** MemorySpillSpool's messages take the reuse option (ChunkOptions) beyond the interface. */
interface ReusableChunks {
  chunks(opts?: { reuse?: boolean }): AsyncIterable<Uint8Array>;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stoken-spool-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function readAll(m: SpooledMessage): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of m.chunks()) parts.push(c);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) names.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return names.sort();
}

/** Pseudo-random but reproducible content, so a misplaced byte shows. */
function pattern(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Write `data` through one reused buffer in uneven chunk sizes, as a network reader would. */
async function writeInChunks(m: SpooledMessage, data: Uint8Array, sizes: number[]): Promise<void> {
  const buf = new Uint8Array(Math.max(...sizes));
  let off = 0;
  for (let i = 0; off < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, data.length - off);
    buf.set(data.subarray(off, off + n));
    await m.write(buf.subarray(0, n));
    buf.fill(0xee); // the caller reuses its buffer at once
    off += n;
  }
}

Deno.test("a small message stays in memory and round-trips byte-exact", async () => {
  await withDir(async (dir) => {
    const spoolDir = join(dir, "spool");
    const m = await new MemorySpillSpool(spoolDir, 1024).create();
    const data = pattern(1000);
    await writeInChunks(m, data, [1, 7, 100, 333]);
    assertEquals(m.size, 1000);
    assertEquals(await readAll(m), data);
    assertEquals(await readAll(m), data, "readable again");
    assertEquals(await listDir(spoolDir), [], "no spool file (nor directory) for a small message");
    await m.discard();
  });
});

Deno.test("a message over the spill size moves to a private file and round-trips byte-exact", async () => {
  await withDir(async (dir) => {
    const spoolDir = join(dir, "spool");
    const spool = new MemorySpillSpool(spoolDir, 4096);
    const m = await spool.create();
    const data = pattern(700_000, 7);
    await writeInChunks(m, data, [1000, 1, 70_000, 4095, 65_536, 13]);
    assertEquals(m.size, data.length);
    const files = await listDir(spoolDir);
    assertEquals(files.length, 1);
    const st = await stat(join(spoolDir, files[0]!));
    assertEquals(st.mode & 0o777, 0o600);
    assertEquals((await stat(spoolDir)).mode & 0o777, 0o700);

    // Several readers at once (one per recipient) each get every byte.
    const [a, b] = await Promise.all([readAll(m), readAll(m)]);
    assertEquals(a, data);
    assertEquals(b, data);
    for await (const c of m.chunks()) assert(c.length <= 256 * 1024, "read back in bounded pieces");

    assertMatch((await assertRejects(() => m.write(new Uint8Array(1)))).message, /being read/);
    await m.discard();
    assertEquals(await listDir(spoolDir), [], "discard removes the file");
    await m.discard(); // idempotent
    assertMatch((await assertRejects(() => m.write(new Uint8Array(1)))).message, /discarded/);
  });
});

Deno.test("exactly at the spill size stays in memory; one byte more spills", async () => {
  await withDir(async (dir) => {
    const spool = new MemorySpillSpool(dir, 100);
    const m1 = await spool.create();
    await m1.write(pattern(100));
    assertEquals(await listDir(dir), []);
    await m1.write(pattern(1, 3));
    assertEquals((await listDir(dir)).length, 1);
    const expected = new Uint8Array(101);
    expected.set(pattern(100));
    expected.set(pattern(1, 3), 100);
    assertEquals(await readAll(m1), expected);
    await m1.discard();
    assertEquals(await listDir(dir), []);
  });
});

Deno.test("the default spill size keeps a 50 MB message out of the heap", async () => {
  await withDir(async (dir) => {
    const spool = new MemorySpillSpool(dir);
    const m = await spool.create();
    const chunk = pattern(64 * 1024, 5);
    const total = 50 * 1024 * 1024;
    const before = Deno.memoryUsage();
    for (let n = 0; n < total; n += chunk.length) await m.write(chunk);
    const after = Deno.memoryUsage();
    assertEquals(m.size, total);
    // A message held in memory would add 50 MB; the spilling one holds one 64 KiB buffer.
    const grown = (after.heapUsed + after.external) - (before.heapUsed + before.external);
    assert(grown < 20 * 1024 * 1024, `memory grew by ${grown} bytes`);
    let seen = 0;
    let ok = true;
    for await (const c of m.chunks()) {
      for (let i = 0; i < c.length; i += 4099) ok &&= c[i] === chunk[(seen + i) % chunk.length];
      seen += c.length;
    }
    assertEquals(seen, total);
    assert(ok, "content read back matches");
    await m.discard();
    assertEquals(await listDir(dir), []);
  });
});

Deno.test("an empty message has no bytes and no file", async () => {
  await withDir(async (dir) => {
    const m = await new MemorySpillSpool(dir, 10).create();
    assertEquals(m.size, 0);
    assertEquals(await readAll(m), new Uint8Array(0));
    await m.discard();
  });
});

Deno.test("chunks({ reuse: true }) reads a spooled file back through one buffer", async () => {
  await withDir(async (dir) => {
    const m = await new MemorySpillSpool(join(dir, "spool"), 4096).create();
    const data = pattern(1_000_000, 3);
    await writeInChunks(m, data, [65_536, 1000]);
    const out = new Uint8Array(data.length);
    const buffers = new Set<ArrayBufferLike>();
    let off = 0;
    let pieces = 0;
    for await (const c of (m as unknown as ReusableChunks).chunks({ reuse: true })) {
      out.set(c, off); // used before the next piece is asked for, as the option requires
      off += c.length;
      pieces++;
      buffers.add(c.buffer);
    }
    assertEquals(off, data.length);
    assertEquals(out, data);
    assert(pieces > 1, "several pieces");
    assertEquals(buffers.size, 1, "every piece in the same buffer");

    // Without the option each piece is a buffer of its own (a consumer may keep them all),
    // and readers with and without it can run at once.
    const kept: Uint8Array[] = [];
    for await (const c of m.chunks()) kept.push(c);
    assertEquals(new Set(kept.map((c) => c.buffer)).size, kept.length);
    assertEquals(await readAll(m), data);
    await m.discard();
  });
});

Deno.test("chunks({ reuse: true }) of a message in memory yields its bytes as they are", async () => {
  await withDir(async (dir) => {
    const m = await new MemorySpillSpool(join(dir, "spool"), 4096).create();
    const data = pattern(3000, 5);
    await writeInChunks(m, data, [1000]);
    const parts: Uint8Array[] = [];
    for await (const c of (m as unknown as ReusableChunks).chunks({ reuse: true })) {
      parts.push(c.slice());
    }
    assertEquals(parts.length, 3);
    assertEquals(new Uint8Array(parts.flatMap((p) => [...p])), data);
    await m.discard();
  });
});
