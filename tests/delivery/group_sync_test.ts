import { assert, assertEquals } from "../assert.ts";
import { GroupSync } from "../../src/delivery/group_sync.ts";

/** An injected fsync: records each call and lets the test decide when (and how) it ends. */
class FakeSync {
  readonly calls: { dir: string; done: PromiseWithResolvers<void> }[] = [];
  readonly fn = (dir: string): Promise<void> => {
    const done = Promise.withResolvers<void>();
    this.calls.push({ dir, done });
    return done.promise;
  };
  finish(i: number): void {
    this.calls[i]!.done.resolve();
  }
  fail(i: number, e: Error): void {
    this.calls[i]!.done.reject(e);
  }
}

/** Let every pending promise callback run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
  await new Promise((r) => setTimeout(r, 0));
}

/** Tracks whether a promise has settled, and how. */
function track(p: Promise<void>): { state: "pending" | "resolved" | "rejected" } {
  const t = { state: "pending" as "pending" | "resolved" | "rejected" };
  p.then(() => t.state = "resolved", () => t.state = "rejected");
  return t;
}

Deno.test("group sync: callers during a running fsync share the next one", async () => {
  const fake = new FakeSync();
  const g = new GroupSync(fake.fn);
  const first = track(g.sync("/m/new"));
  await settle();
  assertEquals(fake.calls.length, 1, "the first caller starts an fsync at once");

  // Five deliveries rename while it runs: that fsync may have started before their renames,
  // so none of them may be answered by it.
  const waiting = Array.from({ length: 5 }, () => track(g.sync("/m/new")));
  await settle();
  assertEquals(fake.calls.length, 1, "no fsync of their own while one runs");

  fake.finish(0);
  await settle();
  assertEquals(first.state, "resolved");
  assertEquals(waiting.map((w) => w.state), Array(5).fill("pending"), "not answered by fsync 1");
  assertEquals(fake.calls.length, 2, "one fsync for all five, started after fsync 1 ended");

  // A caller arriving while fsync 2 runs waits for fsync 3.
  const late = track(g.sync("/m/new"));
  fake.finish(1);
  await settle();
  assertEquals(waiting.map((w) => w.state), Array(5).fill("resolved"));
  assertEquals(late.state, "pending");
  assertEquals(fake.calls.length, 3);
  fake.finish(2);
  await settle();
  assertEquals(late.state, "resolved");
  assertEquals(fake.calls.length, 3, "7 callers, 3 fsyncs");
});

Deno.test("group sync: 20 concurrent callers on an idle directory need at most 2 fsyncs", async () => {
  let count = 0;
  const g = new GroupSync(async () => {
    count++;
    await new Promise((r) => setTimeout(r, 1));
  });
  await Promise.all(Array.from({ length: 20 }, () => g.sync("/m/new")));
  assertEquals(count, 2, "the first caller's fsync, then one for the other 19");
  // Idle again: the next caller starts its own fsync at once.
  await g.sync("/m/new");
  assertEquals(count, 3);
});

Deno.test("group sync: a failed fsync fails exactly the callers it was for", async () => {
  const fake = new FakeSync();
  const g = new GroupSync(fake.fn);
  const a = track(g.sync("/m/new"));
  await settle();
  const b = track(g.sync("/m/new"));
  fake.fail(0, new Error("EIO"));
  await settle();
  assertEquals([a.state, b.state], ["rejected", "pending"]);
  fake.finish(1);
  await settle();
  assertEquals(b.state, "resolved", "the next fsync is tried and answers its own callers");
});

Deno.test("group sync: different directories never share an fsync", async () => {
  const fake = new FakeSync();
  const g = new GroupSync(fake.fn);
  const a = track(g.sync("/a/new"));
  const b = track(g.sync("/b/new"));
  await settle();
  assertEquals(fake.calls.map((c) => c.dir), ["/a/new", "/b/new"]);
  fake.finish(1);
  await settle();
  assertEquals([a.state, b.state], ["pending", "resolved"]);
  fake.finish(0);
  await settle();
  assert(a.state === "resolved");
});

Deno.test("group sync: an fsync function that throws synchronously rejects its callers", async () => {
  const g = new GroupSync(() => {
    throw new Error("EBADF");
  });
  let caught: unknown = null;
  await g.sync("/m/new").catch((e) => caught = e);
  assertEquals((caught as Error | null)?.message, "EBADF");
});
