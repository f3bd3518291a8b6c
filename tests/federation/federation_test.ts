// Issue 4, end to end with real processes on loopback: two stoken instances (a.test and
// b.test) with certificates from a test CA, a dnsmasq publishing their SRV, MX and A
// records, and a recording smarthost. The steps follow PROTOCOL.md §7-§9: the first message
// travels the ordinary way carrying a Submission-Token, the reply goes straight back by
// token before the replier's DATA is answered, then permanent tokens in both directions,
// and every failure of the token path (server down, tokens revoked, certificate not
// trusted) falls back to the relay. Every message arrives exactly once.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { run, startServer, type TestServer } from "../helpers/server.ts";
import { Dnsmasq, freeDnsPort } from "./dnsmasq.ts";
import { type Ca, makeCa, makeServerCert } from "./pki.ts";
import { headerValues, SmtpSink, subjectOf } from "./smtp_sink.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const CLIENT = join(HERE, "mail_client.py");

const ALICE = "alice@a.test";
const BOB = "bob@b.test";
const TOKEN_RE = /^[A-Za-z0-9_-]{20,64}$/;

type Reply = [number, string];

interface ClientOutput {
  mail: Reply | null;
  rcpt: [string, number, string][];
  data: Reply[];
  /** Files with the subject in the checked Maildir the moment the DATA reply came. */
  checked: number | null;
  error: string | null;
}

type LogEvent = Record<string, unknown> & { event: string };

/** The server's structured log lines (src/server/log.ts) named `event`, oldest first. */
function events(srv: TestServer, event: string): LogEvent[] {
  const out: LogEvent[] = [];
  for (const line of srv.logs().split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const e = JSON.parse(line) as LogEvent;
      if (e.event === event) out.push(e);
    } catch { /* not a log line */ }
  }
  return out;
}

function last(srv: TestServer, event: string): LogEvent {
  const all = events(srv, event);
  assert(all.length > 0, `No "${event}" in the log:\n${srv.logs()}`);
  return all[all.length - 1]!;
}

/** Runs one step of the scenario; a failed step ends the scenario (later steps build on it). */
async function must(t: Deno.TestContext, name: string, fn: () => Promise<void>): Promise<void> {
  if (!(await t.step(name, fn))) throw new Error(`Step failed: ${name}`);
}

Deno.test("federation: token distribution, direct delivery, permanent tokens and every fallback", async (t) => {
  const work = await mkdtemp(join(tmpdir(), "stoken-federation-"));
  let sink: SmtpSink | null = null;
  let dns: Dnsmasq | null = null;
  let a: TestServer | null = null;
  let b: TestServer | null = null;
  try {
    // ---- setup: PKI, sink, both servers, DNS ---------------------------------------
    const ca = await makeCa(work, "test-ca");
    const otherCa = await makeCa(work, "other-ca");
    const [certA, certB] = await Promise.all([
      makeServerCert(work, ca, "mail.a.test"),
      makeServerCert(work, ca, "mail.b.test"),
    ]);
    sink = await SmtpSink.start(join(work, "sink"));
    const dnsPort = await freeDnsPort();
    const config =
      (host: string, cert: { cert: string; key: string }) => (json: Record<string, unknown>) => {
        json.hostname = host;
        json.tls = { cert: cert.cert, key: cert.key };
        json.relay = {
          host: "127.0.0.1",
          port: sink!.port,
          tls: "none",
          timeout_s: 20,
        };
        json.remote = {
          enabled: true,
          dns_servers: [`127.0.0.1:${dnsPort}`],
          timeout_s: 20,
          ca_file: ca.cert,
        };
      };
    [a, b] = await Promise.all([
      startServer({ domain: "a.test", user: ALICE, edit: config("mail.a.test", certA) }),
      startServer({ domain: "b.test", user: BOB, edit: config("mail.b.test", certB) }),
    ]);
    const A = a;
    const B = b;
    dns = await Dnsmasq.start(dnsPort, [
      {
        domain: "a.test",
        host: "mail.a.test",
        submissions: A.ports.submissions,
        submission: A.ports.submission,
      },
      {
        domain: "b.test",
        host: "mail.b.test",
        submissions: B.ports.submissions,
        submission: B.ports.submission,
      },
    ]);

    // ---- helpers bound to this setup ------------------------------------------------
    const sinkOf = sink;
    const mailRoot = async (srv: TestServer) => {
      const json = JSON.parse(await readFile(srv.config, "utf8")) as { mail_root?: string };
      return join(srv.dir, json.mail_root ?? "mail");
    };
    const maildir = async (srv: TestServer, address: string) => {
      const [local, domain] = address.split("@") as [string, string];
      return join(await mailRoot(srv), domain, local, "Maildir");
    };
    /** The messages in `address`'s Maildir (new/ and cur/) whose Subject is `subject`. */
    const stored = async (srv: TestServer, address: string, subject: string) => {
      const out: string[] = [];
      for (
        const file of [...await srv.maildir(address, "new"), ...await srv.maildir(address, "cur")]
      ) {
        const text = await readFile(file, "latin1");
        if (subjectOf(text) === subject) out.push(text);
      }
      return out;
    };
    let n = 0;
    const message = async (from: string, to: string, subject: string, extra: string[] = []) => {
      const file = join(work, `msg-${++n}.eml`);
      const text = [
        `From: <${from}>`,
        `To: <${to}>`,
        `Subject: ${subject}`,
        `Message-ID: <fed-${n}-${crypto.randomUUID()}@test>`,
        `Date: ${new Date().toUTCString()}`,
        ...extra,
        "",
        `Message ${n} of the federation scenario.`,
        "",
      ].join("\r\n");
      await writeFile(file, text);
      return file;
    };
    const client = async (args: string[]): Promise<ClientOutput> => {
      const r = await run("python3", [CLIENT, ...args], { timeoutMs: 60_000 });
      assertEquals(r.code, 0, `mail_client.py failed:\n${r.stderr}`);
      return JSON.parse(r.stdout) as ClientOutput;
    };
    const users = new Map<TestServer, { address: string; password: string }>([
      [A, { address: ALICE, password: A.password }],
      [B, { address: BOB, password: B.password }],
    ]);
    /**
     * A user of `srv` submits one message to `to`; with `check`, the Maildir of `to` on that
     * server is counted by the client right when the DATA reply arrives.
     */
    const submit = async (
      srv: TestServer,
      to: string,
      subject: string,
      opts: { check?: TestServer; extra?: string[] } = {},
    ): Promise<ClientOutput> => {
      const u = users.get(srv)!;
      const args = [
        "submit",
        "--port",
        String(srv.ports.submission),
        "--cafile",
        ca.cert,
        "--user",
        u.address,
        "--password",
        u.password,
        "--from",
        u.address,
        "--to",
        to,
        "--message",
        await message(u.address, to, subject, opts.extra),
      ];
      if (opts.check) {
        args.push("--check-maildir", await maildir(opts.check, to), "--check-subject", subject);
      }
      const out = await client(args);
      assertEquals(out.error, null, `submission of "${subject}"`);
      assertEquals(out.data.length, 1, `DATA reply for "${subject}"`);
      assertEquals(out.data[0]![0], 250, `DATA reply for "${subject}": ${out.data[0]![1]}`);
      return out;
    };
    /** The sink got exactly one new message since `before`: this subject, relayed for `to`. */
    const relayedOnce = (before: number, subject: string, from: string, to: string) => {
      assertEquals(
        sinkOf.messages.slice(before).map((m) => subjectOf(m.text)),
        [subject],
        "new messages at the smarthost",
      );
      const m = sinkOf.messages[before]!;
      assertEquals([m.from, m.rcpts], [from, [to]], "relayed envelope");
      const tokens = headerValues(m.text, "Submission-Token");
      assertEquals(tokens.length, 1, "Submission-Token headers of the relayed copy");
      assertMatch(tokens[0]!, TOKEN_RE);
      return { message: m, token: tokens[0]! };
    };
    const setRemoteCa = async (srv: TestServer, caOf: Ca) => {
      const json = JSON.parse(await readFile(srv.config, "utf8")) as Record<string, unknown>;
      json.remote = { ...(json.remote as Record<string, unknown>), ca_file: caOf.cert };
      await writeFile(srv.config, JSON.stringify(json, null, 2) + "\n");
    };

    // Where each subject must be at the end: alice's Maildir, bob's Maildir, the smarthost.
    const expected = new Map<string, [number, number, number]>();

    // ---- the scenario -----------------------------------------------------------------
    const userToken = "UserSuppliedTokenMustNotLeave0123";
    let relayed1: Uint8Array = new Uint8Array(0);
    await must(
      t,
      "alice -> bob, no token held: relayed with exactly one Submission-Token",
      async () => {
        const s = "fed-1 first contact";
        await submit(A, BOB, s, { extra: [`Submission-Token: ${userToken}`] });
        const { message: m, token } = relayedOnce(0, s, ALICE, BOB);
        assert(token !== userToken, "the user's own Submission-Token header left the server");
        assert(!m.text.includes(userToken), "the user's own token appears in the relayed copy");
        assertEquals(last(A, "sent").path, "relay");
        assertEquals((await stored(B, BOB, s)).length, 0, "nothing reached B directly");
        relayed1 = m.data;
        expected.set(s, [0, 1, 1]);
      },
    );

    await must(
      t,
      "the MTA hands the relayed message to B's LMTP listener: B keeps the token",
      async () => {
        const s = "fed-1 first contact";
        const file = join(work, "relayed-1.eml");
        await writeFile(file, relayed1);
        const out = await client([
          "lmtp",
          "--port",
          String(B.ports.lmtp),
          "--from",
          ALICE,
          "--to",
          BOB,
          "--message",
          file,
        ]);
        assertEquals(out.error, null);
        assertEquals(out.data.map((r) => r[0]), [250]);
        assertEquals((await stored(B, BOB, s)).length, 1);
        const h = last(B, "harvested");
        assertEquals([h.sender, h.local], [ALICE, BOB]);
      },
    );

    await must(
      t,
      "bob replies: B delivers straight to A by token, before answering DATA",
      async () => {
        const s = "fed-2 reply by token";
        const before = sinkOf.messages.length;
        const out = await submit(B, ALICE, s, { check: A });
        assertEquals(out.checked, 1, "alice's Maildir when B answered DATA");
        assertEquals(sinkOf.messages.length, before, "nothing went to the smarthost");
        const [copy] = await stored(A, ALICE, s);
        assert(copy !== undefined);
        assertMatch(headerValues(copy, "Received")[0]!, /^from mail\.b\.test .* with LMTPSA id /);
        assertEquals(
          headerValues(copy, "Submission-Token"),
          [],
          "token path copies carry no token",
        );
        const sent = last(B, "sent");
        assertEquals(sent.path, "token");
        // Delivered with A's temporary token: A answers 2.1.13 with a permanent one.
        assertMatch(String(sent.detail), /^250 2\.1\.13 /);
        expected.set(s, [1, 0, 0]);
      },
    );

    await must(
      t,
      "alice's next message goes straight to B with the token B handed over",
      async () => {
        const s = "fed-3 alice by token";
        const before = sinkOf.messages.length;
        const out = await submit(A, BOB, s, { check: B });
        assertEquals(out.checked, 1, "bob's Maildir when A answered DATA");
        assertEquals(sinkOf.messages.length, before, "nothing went to the smarthost");
        const [copy] = await stored(B, BOB, s);
        assertMatch(headerValues(copy!, "Received")[0]!, /^from mail\.a\.test .* with LMTPSA id /);
        const sent = last(A, "sent");
        assertEquals(sent.path, "token");
        // B's MYSTOKEN was its permanent token for the pair: kept, 2.1.12.
        assertMatch(String(sent.detail), /^250 2\.1\.12 /);
        expected.set(s, [0, 1, 0]);
      },
    );

    await must(t, "bob's next message uses A's permanent token (2.1.12)", async () => {
      const s = "fed-4 bob by permanent token";
      const before = sinkOf.messages.length;
      const out = await submit(B, ALICE, s, { check: A });
      assertEquals(out.checked, 1, "alice's Maildir when B answered DATA");
      assertEquals(sinkOf.messages.length, before, "nothing went to the smarthost");
      const sent = last(B, "sent");
      assertEquals(sent.path, "token");
      assertMatch(String(sent.detail), /^250 2\.1\.12 /);
      expected.set(s, [1, 0, 0]);
    });

    await must(t, "A stopped: B's delivery falls back to the relay", async () => {
      await A.stop();
      const s = "fed-5 A is down";
      const failed = events(B, "token_path_failed").length;
      const before = sinkOf.messages.length;
      await submit(B, ALICE, s);
      relayedOnce(before, s, BOB, ALICE);
      assertEquals(last(B, "sent").path, "relay");
      const f = events(B, "token_path_failed");
      assertEquals(f.length, failed + 1, "one failed token attempt");
      assertEquals(f[f.length - 1]!.dropped, false, "a server that is down keeps the token");
      expected.set(s, [0, 0, 1]);
    });

    await must(
      t,
      "A restarted and revokes bob's tokens: 550 5.7.1, B drops the token, relays",
      async () => {
        await A.restart();
        const rv = await A.cli(["token", "revoke", BOB, ALICE]);
        assertEquals(rv.code, 0, `token revoke: ${rv.stderr}`);
        const refusedBefore = events(A, "token_refused").length;

        const s = "fed-6 tokens revoked";
        let failed = events(B, "token_path_failed").length;
        let before = sinkOf.messages.length;
        await submit(B, ALICE, s);
        relayedOnce(before, s, BOB, ALICE);
        const f = events(B, "token_path_failed");
        assertEquals(f.length, failed + 1, "one failed token attempt");
        assertEquals([f[f.length - 1]!.cause, f[f.length - 1]!.dropped], ["RCPT: 550", true]);
        assertEquals(events(A, "token_refused").length, refusedBefore + 1, "A refused the token");
        assertEquals((await stored(A, ALICE, s)).length, 0);
        expected.set(s, [0, 0, 1]);

        // The token is gone: the next message does not even try the token path.
        const s2 = "fed-7 after the drop";
        failed = events(B, "token_path_failed").length;
        before = sinkOf.messages.length;
        await submit(B, ALICE, s2);
        relayedOnce(before, s2, BOB, ALICE);
        assertEquals(events(B, "token_path_failed").length, failed, "no token attempt");
        assertEquals(events(A, "token_refused").length, refusedBefore + 1, "A saw no token");
        expected.set(s2, [0, 0, 1]);
      },
    );

    await must(
      t,
      "alice writes again: B gets a fresh permanent token of A, which works",
      async () => {
        const s = "fed-8 alice after revocation";
        const before = sinkOf.messages.length;
        const out = await submit(A, BOB, s, { check: B });
        assertEquals(out.checked, 1, "bob's Maildir when A answered DATA");
        const s2 = "fed-9 bob with the fresh token";
        const out2 = await submit(B, ALICE, s2, { check: A });
        assertEquals(out2.checked, 1, "alice's Maildir when B answered DATA");
        assertEquals(sinkOf.messages.length, before, "nothing went to the smarthost");
        const sent = last(B, "sent");
        assertEquals(sent.path, "token");
        assertMatch(String(sent.detail), /^250 2\.1\.12 /);
        expected.set(s, [0, 1, 0]);
        expected.set(s2, [1, 0, 0]);
      },
    );

    await must(
      t,
      "A's certificate not trusted by B: no token delivery, relay instead",
      async () => {
        await setRemoteCa(B, otherCa);
        await B.restart();
        const s = "fed-10 untrusted certificate";
        const failed = events(B, "token_path_failed").length;
        const connectFailed = events(B, "token_connect_failed").length;
        const before = sinkOf.messages.length;
        await submit(B, ALICE, s);
        relayedOnce(before, s, BOB, ALICE);
        assertEquals((await stored(A, ALICE, s)).length, 0);
        const f = events(B, "token_path_failed");
        assertEquals(f.length, failed + 1, "one failed token attempt");
        // The first target, A's submissions port from the SRV record, failed its handshake.
        const c = events(B, "token_connect_failed").slice(connectFailed).find((e) =>
          e.host === "mail.a.test" && e.port === A.ports.submissions
        );
        assert(c !== undefined, `No failed connection to A's submissions port:\n${B.logs()}`);
        assertMatch(String(c.cause), /TLS handshake .* failed/);
        assertEquals(f[f.length - 1]!.dropped, false, "a TLS failure keeps the token");
        expected.set(s, [0, 0, 1]);
      },
    );

    await must(t, "A's certificate trusted again: the kept token works", async () => {
      await setRemoteCa(B, ca);
      await B.restart();
      const s = "fed-11 trusted again";
      const before = sinkOf.messages.length;
      const out = await submit(B, ALICE, s, { check: A });
      assertEquals(out.checked, 1, "alice's Maildir when B answered DATA");
      assertEquals(sinkOf.messages.length, before, "nothing went to the smarthost");
      expected.set(s, [1, 0, 0]);
    });

    await must(t, "stoken doctor shows A's Token Server: SRV, verified TLS, STOKEN", async () => {
      const r = await B.cli(["doctor", "a.test"]);
      assertEquals(r.code, 0, `doctor: ${r.stdout}${r.stderr}`);
      assertMatch(r.stdout, /SRV _submissions\._tcp\s+\d+ \d+ \d+ mail\.a\.test/);
      assertMatch(
        r.stdout,
        /submissions-srv\s+mail\.a\.test\s+127\.0\.0\.1\s+\d+\s+implicit\s+TLS ok, certificate valid\s+yes/,
      );
      const none = await B.cli(["doctor", "nowhere.test"]);
      assertEquals(none.code, 1);
      assertMatch(none.stdout, /only go through the relay/);
    });

    await must(t, "stoken send takes the token path and says so", async () => {
      const s = "fed-12 stoken send";
      const before = sinkOf.messages.length;
      const r = await B.cli(["send", "--from", BOB, "--to", ALICE, await message(BOB, ALICE, s)]);
      assertEquals(r.code, 0, `send: ${r.stderr}`);
      assertMatch(r.stdout, /^path: token\nreply: 250 2\.1\.1[23] [A-Za-z0-9]{10,32}/);
      assertEquals((await stored(A, ALICE, s)).length, 1);
      assertEquals(sinkOf.messages.length, before, "nothing went to the smarthost");
      expected.set(s, [1, 0, 0]);
    });

    await must(
      t,
      "two remote recipients: one relayed copy each, each with its own token",
      async () => {
        const s = "fed-13 two recipients";
        const before = sinkOf.messages.length;
        const u = users.get(A)!;
        const out = await client([
          "submit",
          "--port",
          String(A.ports.submission),
          "--cafile",
          ca.cert,
          "--user",
          u.address,
          "--password",
          u.password,
          "--from",
          u.address,
          "--to",
          "carol@c.test",
          "--to",
          "dave@d.test",
          "--message",
          await message(u.address, "carol@c.test", s),
        ]);
        assertEquals(out.error, null);
        const copies = sinkOf.messages.slice(before);
        assertEquals(copies.length, 2);
        const tokens = copies.map((m) => headerValues(m.text, "Submission-Token"));
        assertEquals(tokens.map((x) => x.length), [1, 1]);
        assert(tokens[0]![0] !== tokens[1]![0], "recipients never share a token");
        expected.set(s, [0, 0, 2]);
      },
    );

    await must(t, "every message arrived exactly once", async () => {
      const actual = new Map<string, [number, number, number]>();
      for (const s of expected.keys()) {
        actual.set(s, [
          (await stored(A, ALICE, s)).length,
          (await stored(B, BOB, s)).length,
          sinkOf.withSubject(s).length,
        ]);
      }
      assertEquals(actual, expected);
      // Nothing else anywhere: no copy with another subject, no stray file.
      const total = [...expected.values()].reduce((sum, [x, y, z]) => sum + x + y + z, 0);
      const files = (await A.maildir(ALICE)).length + (await A.maildir(ALICE, "cur")).length +
        (await B.maildir(BOB)).length + (await B.maildir(BOB, "cur")).length;
      assertEquals(files + sinkOf.messages.length, total);
    });

    await must(t, "no token the servers handed out appears in their logs", async () => {
      const tokens = sinkOf.messages.flatMap((m) => headerValues(m.text, "Submission-Token"));
      assertEquals(tokens.length, sinkOf.messages.length);
      for (const token of [...tokens, userToken]) {
        assert(!A.logs().includes(token) && !B.logs().includes(token), "a token was logged");
      }
      await Promise.resolve();
    });
  } finally {
    const keep = Deno.env.get("STOKEN_E2E_KEEP");
    if (keep) {
      // The harness keeps the servers' directories too; their logs live only in memory.
      if (a) await writeFile(join(work, "a.log"), a.logs()).catch(() => {});
      if (b) await writeFile(join(work, "b.log"), b.logs()).catch(() => {});
      console.error(`Kept ${work} (servers: ${a?.dir}, ${b?.dir})`);
    }
    await Promise.allSettled([a?.dispose(), b?.dispose(), dns?.stop(), sink?.close()]);
    if (!keep) await rm(work, { recursive: true, force: true });
  }
});
