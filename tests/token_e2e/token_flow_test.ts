// The Token Server end to end on a real `stoken serve`, driven by Python's smtplib over
// implicit TLS and over STARTTLS: GENSTOKEN TEMP, a token delivery (2.1.13 + permanent
// token), a second one with the permanent token (2.1.12), REVSTOKEN, both tokens refused.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { run, startServer } from "../helpers/server.ts";

const SCRIPT = fileURLToPath(new URL("./token_flow.py", import.meta.url));

for (const mode of ["implicit", "starttls"] as const) {
  Deno.test(`token delivery with smtplib over ${mode} TLS: 2.1.13, 2.1.12, revoked`, async () => {
    await using srv = await startServer();
    const r = await run("python3", [
      SCRIPT,
      mode,
      "127.0.0.1",
      String(srv.ports.submission),
      String(srv.ports.submissions),
      srv.user,
      srv.password,
    ], { timeoutMs: 60_000 });
    assertEquals(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assertMatch(out.gen[1], /^2\.1\.11 [A-Za-z0-9_-]{20,64} Temporary token generated\.$/);

    assertEquals(out.first.stoken_listed, true);
    assertEquals([out.first.auth, out.first.mail, out.first.rcpt[0]], [235, 250, 250]);
    assertEquals(out.first.data[0], 250);
    const first = /^2\.1\.13 <(\S+)> ([A-Za-z0-9_-]{20,64}) ([A-Za-z0-9]{10,32}) Saved$/
      .exec(out.first.data[1]);
    assert(first, `2.1.13 reply: ${out.first.data[1]}`);
    assertEquals(first[1], srv.user);

    assertEquals(out.second.data[0], 250);
    const second = /^2\.1\.12 <\S+> ([A-Za-z0-9]{10,32}) Saved$/.exec(out.second.data[1]);
    assert(second, `2.1.12 reply: ${out.second.data[1]}`);

    assertEquals(out.revoke, [250, "2.1.0 All tokens successfully revoked."]);
    for (const k of ["after_revoke_temp", "after_revoke_perm"]) {
      assertEquals(out[k].rcpt, [550, "5.7.1 Invalid submission token"], k);
    }
    if (mode === "starttls") assertEquals(out.lhlo_plain_stoken, false);
    assertEquals(out.ehlo_stoken, false);
    assertEquals(out.ehlo_auth_stoken, 504);

    // Both messages are in the Maildir with the LMTPSA trace header and their own ids.
    const files = await srv.maildir(srv.user);
    assertEquals(files.length, 2);
    const texts = await Promise.all(files.map((f) => readFile(f, "latin1")));
    for (const id of [first[3]!, second[1]!]) {
      const t = texts.find((x) => x.includes(`id ${id}`));
      assert(t, `no message with delivery id ${id}`);
      assertMatch(
        t,
        new RegExp(
          `^Received: from remote\\.example \\(\\[127\\.0\\.0\\.1\\]\\)\\r\\n\\tby \\S+ with LMTPSA id ${id}\\r\\n\\tfor <${
            srv.user.replace(".", "\\.")
          }>;`,
        ),
      );
    }
    // No token reached the log.
    for (const t of [first[2]!, out.gen[1].split(" ")[1]]) {
      assert(!srv.logs().includes(t), "token in log");
    }
  });
}
