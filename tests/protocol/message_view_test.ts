import { headWithout, readHead, replaceHead } from "../../src/protocol/message_view.ts";
import type { SpooledMessage } from "../../src/session/deps.ts";
import { assertEquals } from "../assert.ts";

function message(text: string, chunk = 3): SpooledMessage {
  const bytes = new TextEncoder().encode(text);
  return {
    size: bytes.length,
    write: () => Promise.reject(new Error("read only")),
    async *chunks() {
      for (let i = 0; i < bytes.length; i += chunk) yield bytes.subarray(i, i + chunk);
    },
    discard: () => Promise.resolve(),
  };
}

async function text(it: AsyncIterable<Uint8Array>): Promise<string> {
  let s = "";
  const d = new TextDecoder("latin1");
  for await (const c of it) s += d.decode(c);
  return s;
}

Deno.test("readHead + headWithout + replaceHead drop a field and keep the body byte for byte", async () => {
  const m = message(
    "Subject: a\r\nSubmission-Token: secret\r\nSubmission-Token: x\r\n y\r\nTo: b\r\n\r\nbody\r\n.x\r\n",
  );
  const h = await readHead(m);
  assertEquals(h.fields.length, 4);
  const head = "Submission-Token: new\r\n" +
    headWithout(h, (f) => f.name.toLowerCase() === "submission-token");
  assertEquals(
    await text(replaceHead(head, m, h.length)),
    "Submission-Token: new\r\nSubject: a\r\nTo: b\r\n\r\nbody\r\n.x\r\n",
  );
});

Deno.test("a message without a blank line is all head; one without headers has an empty head", async () => {
  const a = message("Subject: a\r\nTo: b\r\n");
  const ha = await readHead(a);
  assertEquals([ha.length, ha.blank, ha.fields.length], [19, false, 2]);
  assertEquals(
    await text(replaceHead(headWithout(ha, () => false), a, ha.length)),
    "Subject: a\r\nTo: b\r\n",
  );
  const b = message("\r\nbody only\r\n");
  const hb = await readHead(b);
  assertEquals([hb.length, hb.blank, hb.fields.length], [2, true, 0]);
  assertEquals(
    await text(replaceHead("X: 1\r\n" + headWithout(hb, () => false), b, hb.length)),
    "X: 1\r\n\r\nbody only\r\n",
  );
});
