// Outbound routing with a scripted client (the real client is tested against real servers
// in tests/client and tests/e2e): token path first, relay on any failure, one token per copy.
import {
  type ClientReply,
  type OpenOptions,
  Outbound,
  type OutboundClient,
  type OutboundOptions,
} from "../../src/delivery/outbound.ts";
import { readHead } from "../../src/protocol/message_view.ts";
import type { SpooledMessage } from "../../src/session/deps.ts";
import { assert, assertEquals, assertMatch } from "../assert.ts";

const R = (code: number, enhanced?: string, text = ""): ClientReply => ({ code, enhanced, text });

interface Script {
  stoken?: boolean;
  auth?: ClientReply;
  rcpt?: ClientReply;
  data?: ClientReply;
  failOpen?: boolean;
  hang?: boolean;
}

function message(text: string): SpooledMessage {
  const bytes = new TextEncoder().encode(text);
  return {
    size: bytes.length,
    write: () => Promise.reject(new Error("read only")),
    async *chunks() {
      yield bytes;
    },
    discard: () => Promise.resolve(),
  };
}

function setup(script: { token?: Script; relay?: Script }, held: string | null = "H".repeat(60)) {
  const opened: { opts: OpenOptions; sent: { from: string; rcpts: unknown; body: string }[] }[] =
    [];
  const events: string[] = [];
  let heldToken = held;
  const client = (opts: OpenOptions, s: Script): OutboundClient => {
    const rec = { opts, sent: [] as { from: string; rcpts: unknown; body: string }[] };
    opened.push(rec);
    return {
      extensions: new Map(s.stoken ? [["STOKEN", ""]] : []),
      authPlain: () => Promise.resolve(R(235, "2.7.0")),
      authStoken: () => Promise.resolve(s.auth ?? R(235, "2.7.0")),
      async send(from, rcpts, body) {
        if (s.hang) await new Promise(() => {});
        let text = "";
        for await (const c of body) text += new TextDecoder().decode(c);
        rec.sent.push({ from, rcpts, body: text });
        const rcpt = s.rcpt ?? R(250, "2.1.5");
        return {
          mail: R(250, "2.1.0"),
          rcpts: [rcpt],
          data: [rcpt.code === 250 ? s.data ?? R(250, "2.0.0", "ok") : null],
        };
      },
      quit: () => Promise.resolve(),
      close: () => events.push("closed"),
    };
  };
  const opts: OutboundOptions = {
    hostname: "mx.a.test",
    relay: script.relay
      ? { host: "smarthost", port: 25, tls: "none", username: "", password: "", timeoutMs: 1000 }
      : null,
    remote: { enabled: true, timeoutMs: 200 },
    tokens: {
      generateTemp: (r, l) =>
        Promise.resolve(`TEMP-${r}-${l}`.replace(/[^A-Za-z0-9_-]/g, "_").padEnd(30, "x")),
      getOrCreatePerm: () => Promise.resolve({ token: "P".repeat(60) }),
    },
    held: {
      get: () => Promise.resolve(heldToken === null ? null : { token: heldToken }),
      put: (_r, _l, t) => {
        events.push(`put ${t}`);
        heldToken = t;
        return Promise.resolve(true);
      },
      markSuccess: () => Promise.resolve(events.push("success")),
      drop: () => {
        events.push("drop");
        heldToken = null;
        return Promise.resolve();
      },
    },
    discover: (d) => Promise.resolve([{ host: `mail.${d}`, port: 2465, tls: "implicit" as const }]),
    open: (o) => {
      const s = o.lmtp ? script.token : script.relay;
      if (!s || s.failOpen) return Promise.reject(new Error("connection refused"));
      return Promise.resolve(client(o, s));
    },
    log: (e) => events.push(e),
  };
  return { out: new Outbound(opts), opened, events };
}

const MSG = "Submission-Token: from-the-user-aaaaaaaaaaaa\r\nSubject: hi\r\n\r\nbody\r\n";

async function deliver(out: Outbound) {
  const msg = message(MSG);
  return await out.deliver("alice@a.test", "alice@a.test", "Bob@b.test", msg, await readHead(msg));
}

Deno.test("token path: LMTP to the discovered host, STOKEN + MYSTOKEN, 2.1.13 token kept", async () => {
  const { out, opened, events } = setup({
    token: {
      stoken: true,
      data: R(250, "2.1.13", `<Bob@b.test> ${"N".repeat(60)} ID123456789 Saved`),
    },
  });
  const res = await deliver(out);
  assertEquals(res.ok && res.path, "token");
  assertEquals(opened.length, 1);
  const o = opened[0]!;
  assertEquals([o.opts.host, o.opts.port, o.opts.tls, o.opts.lmtp, o.opts.servername], [
    "mail.b.test",
    2465,
    "implicit",
    true,
    "mail.b.test",
  ]);
  assertEquals(o.sent[0]!.rcpts, [{
    address: "Bob@b.test",
    params: { STOKEN: "H".repeat(60), MYSTOKEN: "P".repeat(60) },
  }]);
  assertEquals(
    o.sent[0]!.body,
    "Subject: hi\r\n\r\nbody\r\n",
    "the user's Submission-Token header is removed",
  );
  assert(events.includes(`put ${"N".repeat(60)}`) && events.includes("success"));
});

for (
  const [name, token, dropped] of [
    ["STOKEN not offered", { stoken: false }, false],
    ["AUTH STOKEN refused (535)", { stoken: true, auth: R(535, "5.7.8") }, true],
    ["RCPT refused with 550 5.7.1", { stoken: true, rcpt: R(550, "5.7.1") }, true],
    ["RCPT refused with 451", { stoken: true, rcpt: R(451, "4.3.0") }, false],
    ["connection refused", { failOpen: true }, false],
  ] as [string, Script, boolean][]
) {
  Deno.test(`token path fails (${name}): relayed with one Submission-Token header${dropped ? ", held token dropped" : ""}`, async () => {
    const { out, opened, events } = setup({ token, relay: {} });
    const res = await deliver(out);
    assertEquals(res.ok && res.path, "relay");
    const relayed = opened.find((o) => !o.opts.lmtp)!;
    const body = relayed.sent[0]!.body;
    assertEquals(body.match(/^Submission-Token:/gim)?.length, 1);
    assertMatch(body, /^Submission-Token: TEMP-bob_b_test-alice_a_test/);
    assertEquals(events.includes("drop"), dropped);
  });
}

Deno.test("a token attempt that hangs is cut at the deadline and relayed", async () => {
  const { out, events } = setup({ token: { stoken: true, hang: true }, relay: {} });
  const res = await deliver(out);
  assertEquals(res.ok && res.path, "relay");
  assert(events.includes("closed"));
});

Deno.test("no held token: straight to the relay; no relay and no token: not routable", async () => {
  const a = setup({ relay: {} }, null);
  assertEquals((await deliver(a.out)).ok, true);
  assertEquals(a.opened.map((o) => o.opts.lmtp), [false]);
  const b = setup({}, null);
  assertEquals(await b.out.routable("alice@a.test", "bob@b.test"), false);
  const c = setup({});
  assertEquals(await c.out.routable("alice@a.test", "bob@b.test"), true);
});

Deno.test("relay refusals: 5xx permanent, 4xx and unreachable temporary", async () => {
  const perm = setup({ relay: { rcpt: R(550, "5.1.1") } }, null);
  const r1 = await deliver(perm.out);
  assertEquals(!r1.ok && r1.permanent, true);
  const temp = setup({ relay: { data: R(451, "4.3.0") } }, null);
  const r2 = await deliver(temp.out);
  assertEquals(!r2.ok && !r2.permanent, true);
  const down = setup({ relay: { failOpen: true } }, null);
  const r3 = await deliver(down.out);
  assertEquals(!r3.ok && !r3.permanent, true);
  const none = setup({ token: { failOpen: true } });
  const r4 = await deliver(none.out);
  assertEquals(!r4.ok && !r4.permanent, true);
});
