// The Token Server as transcripts (PROTOCOL.md §3 STOKEN rows, §4, §6; draft §8), with
// tokens minted by the real engine over an in-memory store.
import { newKeyFile } from "../../src/store/key_file.ts";
import { TokenEngine } from "../../src/tokens/engine.ts";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { MemoryTokenStore } from "../tokens/memory_store.ts";
import { b64, EHLO_AFTER_TLS, fakeDeps, LOGIN_ALICE, newSession, transcript } from "./harness.ts";

/** The token with one character changed (inside the part AUTH STOKEN checks). */
function flip(t: string, i: number): string {
  return t.slice(0, i) + (t[i] === "A" ? "B" : "A") + t.slice(i + 1);
}

async function setup(authLimit = 5) {
  const store = new MemoryTokenStore();
  const engine = await TokenEngine.create(newKeyFile(), store);
  const fake = fakeDeps({ tokens: engine, authLimit });
  return { store, engine, fake };
}

const LHLO_TLS = `
  C: LHLO sender.example.com
  S: 250-mx.example.test
  S: 250-PIPELINING
  S: 250-SIZE 10240
  S: 250-ENHANCEDSTATUSCODES
  S: 250-8BITMIME
  S: 250-AUTH STOKEN
  S: 250 STOKEN
`;
const EHLO_TLS = EHLO_AFTER_TLS;

/** The draft's examples encode the two characters "\0"; real clients send a NUL. */
const SEPARATORS: [string, string][] = [["NUL", "\0"], ["literal \\0", "\\0"]];

for (const [name, sep] of SEPARATORS) {
  Deno.test(`draft §8 example 1 and 2 (${name} separator): temporary then permanent tokens`, async () => {
    const { engine, fake } = await setup();
    const remote = "user@sender.example.com";
    const t1 = await engine.generateTemp(remote, "alice@example.test");
    const t2 = await engine.generateTemp(remote, "bob@example.test");
    const my1 = "Enm3HX76MbEnm3HX76MbEnm3";
    const my2 = "H4tGNfh6UsH4tGNfh6UsH4tG";
    // Example 1: a temporary token per recipient, a permanent token back for each.
    const out1 = await transcript(
      newSession(fake, "submissions"),
      `${LHLO_TLS}
      C: AUTH STOKEN ${b64(`alice@example.test${sep}${t1}`)}
      S: 235 2.7.0 OK
      C: MAIL FROM:<${remote}>
      S: 250 2.1.0 OK
      C: RCPT TO:<alice@example.test> STOKEN=${t1} MYSTOKEN=${my1}
      S: 250 2.1.5 OK
      C: RCPT TO:<bob@example.test> STOKEN=${t2} MYSTOKEN=${my2}
      S: 250 2.1.5 OK
      C: DATA
      S: 354 *
      C: Subject: hello
      C:
      C: first
      C: .
      S: 250 2.1.13 <alice@example.test> *
      S: 250 2.1.13 <bob@example.test> *
    `,
    );
    const m1 =
      /^250 2\.1\.13 <alice@example\.test> ([A-Za-z0-9_-]{20,64}) ([A-Za-z0-9]{10,32}) Saved$/
        .exec(out1.at(-2)!);
    const m2 =
      /^250 2\.1\.13 <bob@example\.test> ([A-Za-z0-9_-]{20,64}) ([A-Za-z0-9]{10,32}) Saved$/
        .exec(out1.at(-1)!);
    assert(m1 && m2, `2.1.13 format: ${out1.slice(-2).join(" | ")}`);
    const [perm1, perm2] = [m1[1]!, m2[1]!];
    assertEquals(fake.delivered.length, 2);
    assertMatch(
      fake.delivered[0]!.prefix,
      new RegExp(`with LMTPSA id ${m1[2]}\\r\\n\\tfor <alice@example\\.test>`),
    );
    // The MYSTOKENs are held for delivering back to the remote on behalf of each local user.
    assertEquals(fake.held, [
      { remote, local: "alice@example.test", token: my1, source: "mystoken" },
      { remote, local: "bob@example.test", token: my2, source: "mystoken" },
    ]);
    // Example 2: the permanent tokens deliver again and are kept (2.1.12).
    await transcript(
      newSession(fake, "submissions"),
      `${LHLO_TLS}
      C: AUTH STOKEN ${b64(`alice@example.test${sep}${perm1}`)}
      S: 235 2.7.0 OK
      C: MAIL FROM:<${remote}>
      S: 250 2.1.0 OK
      C: RCPT TO:<alice@example.test> STOKEN=${perm1}
      S: 250 2.1.5 OK
      C: RCPT TO:<bob@example.test> STOKEN=${perm2} MYSTOKEN=${my2}
      S: 250 2.1.5 OK
      C: DATA
      S: 354 *
      C: second
      C: .
      S: 250 2.1.12 <alice@example.test> *
      S: 250 2.1.12 <bob@example.test> *
    `,
    );
    assertEquals(fake.delivered.length, 4);
  });
}

Deno.test("AUTH STOKEN: bad token, token for another local user, unknown user, malformed: all 535", async () => {
  const { engine, fake } = await setup(10);
  const t = await engine.generateTemp("r@remote.example", "alice@example.test");
  await transcript(
    newSession(fake, "submissions"),
    `${LHLO_TLS}
    C: AUTH STOKEN ${b64(`bob@example.test\0${t}`)}
    S: 535 5.7.8 Could not authenticate.
    C: AUTH STOKEN ${b64(`nobody@example.test\0${t}`)}
    S: 535 5.7.8 Could not authenticate.
    C: AUTH STOKEN ${b64(`alice@example.test\0${flip(t, 8)}`)}
    S: 535 5.7.8 Could not authenticate.
    C: AUTH STOKEN abcdefg
    S: 535 5.7.8 Could not authenticate.
    C: AUTH STOKEN ${b64(t)}
    S: 535 5.7.8 Could not authenticate.
    C: AUTH STOKEN
    S: 334 
    C: ${b64(`alice@example.test\0${t}`)}
    S: 235 2.7.0 OK
    C: AUTH STOKEN ${b64(`alice@example.test\0${t}`)}
    S: 503 5.5.1 Already authenticated
  `,
  );
});

Deno.test("AUTH STOKEN before TLS: 538; LHLO before TLS has no STOKEN", async () => {
  const { engine, fake } = await setup();
  const t = await engine.generateTemp("r@remote.example", "alice@example.test");
  await transcript(
    newSession(fake, "submission"),
    `
    C: LHLO sender.example.com
    S: 250-mx.example.test
    S: 250-PIPELINING
    S: 250-ENHANCEDSTATUSCODES
    S: 250 STARTTLS
    C: AUTH STOKEN ${b64(`alice@example.test\0${t}`)}
    S: 538 5.7.11 Encryption required for requested authentication mechanism
    C: STARTTLS
    S: 220 2.0.0 Ready to start TLS
    TLS
    ${LHLO_TLS}
    C: AUTH STOKEN ${b64(`alice@example.test\0${t}`)}
    S: 235 2.7.0 OK
  `,
  );
});

Deno.test("token delivery refusals (PROTOCOL.md §6)", async () => {
  const { engine, fake } = await setup(50);
  const remote = "r@remote.example";
  const t = await engine.generateTemp(remote, "alice@example.test");
  await transcript(
    newSession(fake, "submissions"),
    `${LHLO_TLS}
    C: MAIL FROM:<${remote}>
    S: 530 5.7.0 Authentication required
    C: AUTH STOKEN ${b64(`alice@example.test\0${t}`)}
    S: 235 2.7.0 OK
    C: MAIL FROM:<>
    S: 501 5.1.7 Bad sender address
    C: MAIL FROM:<remoteuser..@example.com>
    S: 501 5.1.7 Bad sender address
    C: MAIL FROM:<${remote}> FOO=1
    S: 555 5.5.4 Unsupported parameter
    C: MAIL FROM:<other@remote.example>
    S: 250 2.1.0 OK
    C: RCPT TO:<alice@example.test>
    S: 550 5.7.1 Submission token required
    C: RCPT TO:<alice@example.test> STOKEN=${t}
    S: 550 5.7.1 Invalid submission token
    C: RSET
    S: 250 2.0.0 OK
    C: MAIL FROM:<${remote}>
    S: 250 2.1.0 OK
    C: RCPT TO:<bob@example.test> STOKEN=${t}
    S: 550 5.7.1 Invalid submission token
    C: RCPT TO:<x@elsewhere.example> STOKEN=${t}
    S: 550 5.7.1 Relay access denied
    C: RCPT TO:<nobody@example.test> STOKEN=${t}
    S: 550 5.1.1 User unknown
    C: RCPT TO:<alice@example.test> STOKEN=${t} MYSTOKEN=short
    S: 501 5.5.4 Invalid MYSTOKEN
    C: RCPT TO:<alice@example.test> STOKEN=${t} XYZ=1
    S: 555 5.5.4 Unsupported parameter
    C: RCPT TO:<alice@example.test> STOKEN=${t}
    S: 250 2.1.5 OK
  `,
  );
});

Deno.test("repeated bad STOKEN= checks: 421 4.7.0 and close", async () => {
  const { engine, fake } = await setup(3);
  const remote = "r@remote.example";
  const t = await engine.generateTemp(remote, "alice@example.test");
  const bad = await engine.generateTemp("other@remote.example", "alice@example.test");
  await transcript(
    newSession(fake, "submissions"),
    `${LHLO_TLS}
    C: AUTH STOKEN ${b64(`alice@example.test\0${t}`)}
    S: 235 2.7.0 OK
    C: MAIL FROM:<${remote}>
    S: 250 2.1.0 OK
    C: RCPT TO:<alice@example.test> STOKEN=${bad}
    S: 550 5.7.1 Invalid submission token
    C: RCPT TO:<alice@example.test> STOKEN=${bad}
    S: 550 5.7.1 Invalid submission token
    C: RCPT TO:<alice@example.test> STOKEN=${bad}
    S: 421 4.7.0 Too many authentication failures
    CLOSED
  `,
  );
  // The recipient is now protected from every address, the valid token included.
  const fake2 = fakeDeps({ tokens: engine, authLimit: 3 });
  fake2.failures.set("local:alice@example.test", 3);
  await transcript(
    newSession(fake2, "submissions", true, "203.0.113.9"),
    `${LHLO_TLS}
    C: AUTH STOKEN ${b64(`alice@example.test\0${t}`)}
    S: 421 4.7.0 Too many authentication failures
    CLOSED
  `,
  );
});

Deno.test("GENSTOKEN and REVSTOKEN (PROTOCOL.md §4)", async () => {
  const { fake } = await setup();
  const out = await transcript(
    newSession(fake, "submissions"),
    `${LOGIN_ALICE}
    C: GENSTOKEN TEMP remote@remote.example
    S: 250 2.1.11 * Temporary token generated.
    C: GENSTOKEN TEMP <remote@remote.example>
    S: 250 2.1.11 * Temporary token generated.
    C: GENSTOKEN PERM remote@remote.example al@example.test
    S: 250 2.1.11 * Permanent token generated.
    C: gENSTOKEN perm <Remote@Remote.Example> alice@example.test
    S: 250 2.1.11 * Permanent token exists.
    C: GENSTOKEN TEMP remoteuser..@example.com
    S: 501 5.1.3 Incorrect remote address.
    C: GENSTOKEN TEMP remote@remote.example nobody@example.test
    S: 501 5.1.7 Incorrect local address.
    C: GENSTOKEN TEMP remote@remote.example a..b@example.test
    S: 501 5.1.7 Incorrect local address.
    C: GENSTOKEN TEMP remote@remote.example bob@example.test
    S: 550 5.7.1 Not authorized for that local address.
    C: GENSTOKEN SOMETIMES remote@remote.example
    S: 501 5.5.4 Syntax: GENSTOKEN (PERM|TEMP) remote-address [local-address]
    C: REVSTOKEN remote@remote.example
    S: 250 2.1.0 All tokens successfully revoked.
    C: REVSTOKEN never@remote.example alice@example.test
    S: 250 2.1.0 All tokens successfully revoked.
    C: GENSTOKEN PERM remote@remote.example
    S: 250 2.1.11 * Permanent token generated.
  `,
  );
  const token = (l: string) => l.split(" ")[2]!;
  const temps = [token(out.at(-12)!), token(out.at(-11)!)];
  assert(temps[0] !== temps[1], "each GENSTOKEN TEMP is fresh");
  assertEquals(token(out.at(-10)!), token(out.at(-9)!), "PERM exists returns the same token");
  assert(
    token(out.at(-1)!) !== token(out.at(-10)!),
    "a revoked permanent token is not handed out again",
  );
  for (const t of [...temps, token(out.at(-10)!)]) assertMatch(t, /^[A-Za-z0-9_-]{20,64}$/);
});

Deno.test("GENSTOKEN: not authenticated 530, in a token session 503, store down 451", async () => {
  const { engine, fake, store } = await setup();
  await transcript(
    newSession(fake, "submissions"),
    `${EHLO_TLS}
    C: GENSTOKEN TEMP remote@remote.example
    S: 530 5.7.0 Authentication required
  `,
  );
  const t = await engine.generateTemp("r@remote.example", "alice@example.test");
  await transcript(
    newSession(fake, "submissions"),
    `${LHLO_TLS}
    C: AUTH STOKEN ${b64(`alice@example.test\0${t}`)}
    S: 235 2.7.0 OK
    C: GENSTOKEN TEMP remote@remote.example
    S: 503 5.5.1 Bad sequence of commands
  `,
  );
  store.failing = true;
  await transcript(
    newSession(fake, "submissions"),
    `${LOGIN_ALICE}
    C: GENSTOKEN PERM remote@remote.example
    S: 451 4.5.0 Token could not be generated.
    C: REVSTOKEN remote@remote.example
    S: 451 4.5.0 Tokens could not be revoked.
  `,
  );
});

Deno.test("revoked tokens are refused at RCPT; a store failure at RCPT is 451 4.3.0", async () => {
  const { engine, fake, store } = await setup(20);
  const remote = "r@remote.example";
  const t = await engine.generateTemp(remote, "alice@example.test");
  await engine.revoke(remote, "alice@example.test");
  await transcript(
    newSession(fake, "submissions"),
    `${LHLO_TLS}
    C: AUTH STOKEN ${b64(`alice@example.test\0${t}`)}
    S: 235 2.7.0 OK
    C: MAIL FROM:<${remote}>
    S: 250 2.1.0 OK
    C: RCPT TO:<alice@example.test> STOKEN=${t}
    S: 550 5.7.1 Invalid submission token
  `,
  );
  const t2 = await engine.generateTemp(remote, "alice@example.test");
  store.failing = true;
  await transcript(
    newSession(fake, "submissions"),
    `${LHLO_TLS}
    C: AUTH STOKEN ${b64(`alice@example.test\0${t2}`)}
    S: 235 2.7.0 OK
    C: MAIL FROM:<${remote}>
    S: 250 2.1.0 OK
    C: RCPT TO:<alice@example.test> STOKEN=${t2}
    S: 451 4.3.0 Temporary failure
  `,
  );
});

Deno.test("a store failure after delivery still delivers, with 2.1.12 (client keeps its token)", async () => {
  const { engine, fake, store } = await setup();
  const remote = "r@remote.example";
  const t = await engine.generateTemp(remote, "alice@example.test");
  const s = newSession(fake, "submissions");
  await transcript(
    s,
    `${LHLO_TLS}
    C: AUTH STOKEN ${b64(`alice@example.test\0${t}`)}
    S: 235 2.7.0 OK
    C: MAIL FROM:<${remote}>
    S: 250 2.1.0 OK
    C: RCPT TO:<alice@example.test> STOKEN=${t}
    S: 250 2.1.5 OK
    C: DATA
    S: 354 *
  `,
  );
  store.failing = true;
  await transcript(
    s,
    `
    C: body
    C: .
    S: 250 2.1.12 <alice@example.test> * Saved
  `,
  );
  assertEquals(fake.delivered.length, 1);
});

Deno.test("a token session cannot reach PLAIN/LOGIN nor deliver before AUTH; an EHLO session cannot use STOKEN=", async () => {
  const { engine, fake } = await setup();
  const t = await engine.generateTemp("r@remote.example", "alice@example.test");
  await transcript(
    newSession(fake, "submissions"),
    `${LOGIN_ALICE}
    C: MAIL FROM:<alice@example.test>
    S: 250 2.1.0 OK
    C: RCPT TO:<bob@example.test> STOKEN=${t}
    S: 555 5.5.4 Unsupported parameter
  `,
  );
});
