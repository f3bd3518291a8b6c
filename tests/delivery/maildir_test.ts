import { open, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { failureKind, mailboxDirName, Maildirs } from "../../src/delivery/maildir.ts";
import { MemorySpillSpool } from "../../src/delivery/spool.ts";
import type { SpooledMessage } from "../../src/session/deps.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stoken-maildir-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

/** Every file under `dir`, relative paths. */
async function walk(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await walk(join(dir, e.name), rel));
    else out.push(rel);
  }
  return out.sort();
}

function pattern(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + (i >> 8)) & 0xff;
  return out;
}

async function message(dir: string, body: Uint8Array, spill = 256 * 1024): Promise<SpooledMessage> {
  const m = await new MemorySpillSpool(join(dir, "spool"), spill).create();
  for (let off = 0; off < body.length; off += 10_000) {
    await m.write(body.subarray(off, off + 10_000));
  }
  return m;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

const PREFIX =
  "Received: from client.example (192.0.2.1)\r\n\tby mx.example.test; Mon, 1 Jan 2030\r\n";
const NAME_RE = /^(\d+)\.M(\d+)P(\d+)R([0-9a-f]{16})Q(\d+)\.mx\.example\.test,S=(\d+)$/;

Deno.test("deliver writes prefix + body into new/ with a Maildir unique name and ,S=<size>", async () => {
  await withDir(async (dir) => {
    const root = join(dir, "mail");
    const md = new Maildirs(root, { fsync: true, hostname: "mx.example.test" });
    const body = new TextEncoder().encode("Subject: hi\r\n\r\nHello.\r\n");
    const r = await md.deliver({ address: "alice@example.test" }, PREFIX, await message(dir, body));
    assert(r.ok, JSON.stringify(r));
    const maildir = join(root, "example.test", "alice", "Maildir");
    assertEquals(dirname(r.path), join(maildir, "new"));
    const expected = concat(new TextEncoder().encode(PREFIX), body);
    assertEquals(await Deno.readFile(r.path), expected);
    const m = NAME_RE.exec(basename(r.path));
    assert(m, `unexpected name ${basename(r.path)}`);
    assertEquals(Number(m[6]), expected.length);
    assertEquals(Number(m[3]), Deno.pid);
    assert(Math.abs(Number(m[1]) - Date.now() / 1000) < 3600, "seconds since the epoch");
    assert(Number(m[2]) < 1_000_000, "microseconds");
    assertEquals(await listDir(join(maildir, "tmp")), []);
    assertEquals(await listDir(join(maildir, "cur")), []);
    assertEquals(await listDir(maildir), ["cur", "new", "tmp"]);
    assertEquals((await stat(maildir)).mode & 0o777, 0o700);
    assertEquals((await stat(r.path)).mode & 0o777, 0o600);

    // A second delivery gets a different name.
    const r2 = await md.deliver({ address: "alice@example.test" }, "", await message(dir, body));
    assert(r2.ok && r2.path !== r.path);
    assertEquals(await Deno.readFile(r2.path), body);
    assertEquals((await listDir(join(maildir, "new"))).length, 2);
  });
});

Deno.test("a large (spooled) message is delivered byte-exact, with fsync off too", async () => {
  await withDir(async (dir) => {
    const root = join(dir, "mail");
    for (const fsync of [true, false]) {
      const md = new Maildirs(root, { fsync, hostname: "mx.example.test" });
      const body = pattern(1_234_567);
      const msg = await message(dir, body, 64 * 1024);
      const r = await md.deliver({ address: "bob@example.test" }, PREFIX, msg);
      assert(r.ok, JSON.stringify(r));
      const expected = concat(new TextEncoder().encode(PREFIX), body);
      assertEquals(await Deno.readFile(r.path), expected);
      assertMatch(r.path, new RegExp(`,S=${expected.length}$`));
      await msg.discard();
    }
  });
});

Deno.test("host names in unique names escape / and : as \\057 and \\072", () => {
  const md = new Maildirs("/nonexistent", { fsync: false, hostname: "a/b:c" });
  assertMatch(md.uniqueName(), /\.a\\057b\\072c$/);
  const n1 = md.uniqueName(1_700_000_000_123.5);
  assertMatch(n1, /^1700000000\.M123500P\d+R[0-9a-f]{16}Q\d+\./);
  const q1 = Number(/Q(\d+)/.exec(n1)![1]);
  const q2 = Number(/Q(\d+)/.exec(md.uniqueName())![1]);
  assertEquals(q2, q1 + 1, "delivery counter");
});

Deno.test("local parts are mapped so nothing escapes the domain directory", async () => {
  assertEquals(mailboxDirName("alice.smith+tag"), "alice.smith+tag");
  assertEquals(mailboxDirName(".."), "%2E.");
  assertEquals(mailboxDirName("."), "%2E");
  assertEquals(mailboxDirName("../../etc/passwd"), "%2E.%2F..%2Fetc%2Fpasswd");
  assertEquals(mailboxDirName('a b\\c"d%e'), "a%20b%5Cc%22d%25e");
  assertEquals(mailboxDirName("x\u0000y"), "x%00y");
  // One-to-one: "%" is encoded too, so "a/b" and "a%2Fb" differ.
  assert(mailboxDirName("a/b") !== mailboxDirName("a%2Fb"));

  await withDir(async (dir) => {
    const root = join(dir, "mail");
    const md = new Maildirs(root, { fsync: true, hostname: "h" });
    const body = new TextEncoder().encode("x\r\n");
    const r = await md.deliver(
      { address: '"../../evil"@example.test' },
      "",
      await message(dir, body),
    );
    assert(r.ok, JSON.stringify(r));
    assertEquals(dirname(dirname(dirname(dirname(r.path)))), join(root, "example.test"));
    assertEquals(
      await walk(dir).then((f) => f.filter((p) => !p.startsWith("mail/example.test/"))),
      [],
    );
    // A domain that is not a host name is refused, not mapped.
    const bad = await md.deliver({ address: "a@.." }, "", await message(dir, body));
    assert(!bad.ok && bad.kind === "temporary");
  });
});

Deno.test("a file where the Maildir should be: ok:false and nothing left behind", async () => {
  await withDir(async (dir) => {
    const root = join(dir, "mail");
    await Deno.mkdir(join(root, "example.test"), { recursive: true });
    await Deno.writeTextFile(join(root, "example.test", "carol"), "not a directory");
    const md = new Maildirs(root, { fsync: true, hostname: "h" });
    const r = await md.deliver(
      { address: "carol@example.test" },
      PREFIX,
      await message(dir, pattern(10)),
    );
    assert(!r.ok);
    assertEquals(r.kind, "temporary");
    assert(r.cause.length > 0);
    assertEquals(await walk(root), ["example.test/carol"]);
  });
});

Deno.test("a message that fails while being read leaves no partial file", async () => {
  await withDir(async (dir) => {
    const root = join(dir, "mail");
    const md = new Maildirs(root, { fsync: true, hostname: "h" });
    for (const size of [1000, 2_000_000]) {
      // Claims `size` bytes, yields some, then fails (a spool read error).
      const broken: SpooledMessage = {
        size,
        write: () => Promise.resolve(),
        async *chunks() {
          yield pattern(Math.min(size, 300_000) / 2);
          throw new Error("spool read failed");
        },
        discard: () => Promise.resolve(),
      };
      const r = await md.deliver({ address: "dave@example.test" }, PREFIX, broken);
      assert(!r.ok);
      assertEquals(r.cause, "spool read failed");
      const maildir = join(root, "example.test", "dave", "Maildir");
      assertEquals(await listDir(join(maildir, "tmp")), []);
      assertEquals(await listDir(join(maildir, "new")), []);
    }
  });
});

Deno.test("a Maildir removed after the first delivery is made again", async () => {
  await withDir(async (dir) => {
    const root = join(dir, "mail");
    const md = new Maildirs(root, { fsync: true, hostname: "h" });
    const body = new TextEncoder().encode("x\r\n");
    const user = { address: "erin@example.test" };
    assert((await md.deliver(user, "", await message(dir, body))).ok);
    await Deno.remove(join(root, "example.test", "erin"), { recursive: true });
    const r = await md.deliver(user, "", await message(dir, body));
    assert(r.ok, JSON.stringify(r));
    assertEquals(await Deno.readFile(r.path), body);
  });
});

Deno.test("a full disk or quota is reported as quota, anything else as temporary", () => {
  assertEquals(failureKind(Object.assign(new Error("no space"), { code: "ENOSPC" })), "quota");
  assertEquals(failureKind(Object.assign(new Error("quota"), { code: "EDQUOT" })), "quota");
  assertEquals(failureKind(Object.assign(new Error("io"), { code: "EIO" })), "temporary");
  assertEquals(failureKind(new Error("plain")), "temporary");
});

Deno.test("concurrent deliveries into one Maildir share the fsync of new/", async () => {
  await withDir(async (dir) => {
    const root = join(dir, "mail");
    const synced: string[] = [];
    let hold: PromiseWithResolvers<void> | null = null;
    const md = new Maildirs(root, {
      fsync: true,
      hostname: "h",
      syncDir: async (d) => {
        synced.push(d);
        if (hold !== null) await hold.promise; // the test decides when this fsync ends
        const fh = await open(d, "r");
        await fh.sync();
        await fh.close();
      },
    });
    const user = { address: "frank@example.test" };
    const body = new TextEncoder().encode("x\r\n");
    assert((await md.deliver(user, "", await message(dir, body))).ok); // makes the Maildir
    const newDir = join(root, "example.test", "frank", "Maildir", "new");
    synced.length = 0;

    // The first delivery's fsync of new/ is held until all ten files are in new/: the nine
    // others renamed while it ran, so none of them may be answered by it.
    hold = Promise.withResolvers<void>();
    const msgs = await Promise.all(Array.from({ length: 10 }, () => message(dir, body)));
    const results = Promise.all(msgs.map((m) => md.deliver(user, "", m)));
    while ((await listDir(newDir)).length < 11) await new Promise((r) => setTimeout(r, 5));
    assertEquals(synced, [newDir], "one fsync running, nine deliveries waiting");
    hold.resolve();
    hold = null;
    const rs = await results;
    assert(rs.every((r) => r.ok), JSON.stringify(rs));
    assertEquals(synced, [newDir, newDir], "ten deliveries, two fsyncs of new/");
  });
});

Deno.test("without fsync, new/ is never fsync'd", async () => {
  await withDir(async (dir) => {
    let calls = 0;
    const md = new Maildirs(join(dir, "mail"), {
      fsync: false,
      hostname: "h",
      syncDir: () => {
        calls++;
        return Promise.resolve();
      },
    });
    const body = new TextEncoder().encode("x\r\n");
    assert((await md.deliver({ address: "gina@example.test" }, "", await message(dir, body))).ok);
    assertEquals(calls, 0);
  });
});
