import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { loadConfig } from "../../src/config.ts";
import { openDatabase } from "../../src/store/db.ts";
import { Users } from "../../src/store/users.ts";
import { stoken, withTempDir } from "./helpers.ts";

/** A fresh setup (stoken init) in `tmp`; returns its config file. */
async function setup(tmp: string): Promise<string> {
  const r = await stoken(["init", "--dir", tmp, "--domain", "example.test"]);
  assertEquals(r.code, 0, r.stderr);
  const file = join(tmp, "stoken.json");
  // A second domain, for aliases across domains.
  const json = JSON.parse(await Deno.readTextFile(file));
  json.domains.push("example.org");
  await Deno.writeTextFile(file, JSON.stringify(json));
  return file;
}

async function verify(config: string, address: string, password: string) {
  const c = await loadConfig(config);
  const db = await openDatabase(c.database.url);
  try {
    return await new Users(db, new Set(c.domains)).verifyPassword(address, password);
  } finally {
    db.close();
  }
}

Deno.test("user add reads the password from stdin (first line) and it verifies", async () => {
  await withTempDir(async (tmp) => {
    const config = await setup(tmp);
    const pw = "correct horse battery";
    const r = await stoken(["user", "add", "Alice@Example.test", "--config", config], {
      stdin: `${pw}\r\nsecond line ignored\n`,
    });
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stdout, "Added user alice@example.test\n");
    assert(!r.stdout.includes(pw) && !r.stderr.includes(pw), "password never printed");
    assertEquals(await verify(config, "alice@example.test", pw), { address: "alice@example.test" });

    // A password without a final newline works too.
    const r2 = await stoken(["user", "add", "bob@example.org", "--config", config], {
      stdin: "bobs password",
    });
    assertEquals(r2.code, 0, r2.stderr);
    assertEquals(await verify(config, "bob@example.org", "bobs password"), {
      address: "bob@example.org",
    });
  });
});

Deno.test("user add refuses empty and short passwords, duplicates and foreign domains", async () => {
  await withTempDir(async (tmp) => {
    const config = await setup(tmp);
    const add = (address: string, stdin: string) =>
      stoken(["user", "add", address, "--config", config], { stdin });
    const empty = await add("carol@example.test", "\n");
    assertEquals(empty.code, 1);
    assertMatch(empty.stderr, /Empty password refused/);
    const none = await add("carol@example.test", "");
    assertEquals(none.code, 1);
    assertMatch(none.stderr, /Empty password refused/);
    const short = await add("carol@example.test", "1234567\n");
    assertEquals(short.code, 1);
    assertMatch(short.stderr, /Password too short: 7 characters, at least 8 required/);
    assert(!short.stderr.includes("1234567"), "the password is not echoed in the error");
    const foreign = await add("carol@elsewhere.test", "long enough\n");
    assertEquals(foreign.code, 1);
    assertMatch(
      foreign.stderr,
      /Domain "elsewhere\.test" of "carol@elsewhere\.test" is not in the configured domains/,
    );
    const dup = await add("ADMIN@example.test", "long enough\n");
    assertEquals(dup.code, 1);
    assertMatch(dup.stderr, /"admin@example\.test" is already a user or an alias/);
    const invalid = await add("not-an-address", "long enough\n");
    assertEquals(invalid.code, 1);
    assertMatch(invalid.stderr, /Invalid user address: "not-an-address"/);

    const list = await stoken(["user", "list", "--config", config]);
    assertEquals(list.code, 0, list.stderr);
    assert(!list.stdout.includes("carol"), "no user was added by the refused commands");
  });
});

Deno.test("user list, alias, unalias and remove", async () => {
  await withTempDir(async (tmp) => {
    const config = await setup(tmp);
    const run = (...args: string[]) => stoken(["user", ...args, "--config", config]);

    const alias = await run("alias", "Postmaster@example.ORG", "admin@example.test");
    assertEquals(alias.code, 0, alias.stderr);
    assertEquals(alias.stdout, "Alias postmaster@example.org now delivers to admin@example.test\n");
    const foreign = await run("alias", "x@elsewhere.test", "admin@example.test");
    assertEquals(foreign.code, 1);
    assertMatch(foreign.stderr, /not in the configured domains/);

    const list = await run("list");
    assertEquals(list.code, 0, list.stderr);
    const lines = list.stdout.trimEnd().split("\n");
    assertMatch(lines[0]!, /^ADDRESS\s+CREATED\s+ALIASES$/);
    assertMatch(
      lines[1]!,
      /^admin@example\.test\s+\d{4}-\d\d-\d\d \d\d:\d\d UTC\s+postmaster@example\.org$/,
    );
    assertEquals(lines.length, 2);

    const unalias = await run("unalias", "postmaster@example.org");
    assertEquals(unalias.code, 0, unalias.stderr);
    const unknown = await run("unalias", "postmaster@example.org");
    assertEquals(unknown.code, 1);
    assertMatch(unknown.stderr, /No such alias: "postmaster@example\.org"/);

    const removed = await run("remove", "admin@example.test");
    assertEquals(removed.code, 0, removed.stderr);
    assertMatch(
      removed.stdout,
      /^Removed user admin@example\.test and its aliases; the Maildir .*\/mail\/example\.test\/admin\/Maildir is kept\n$/,
    );
    const empty = await run("list");
    assertEquals(empty.stdout, "No users\n");
    const again = await run("remove", "admin@example.test");
    assertEquals(again.code, 1);
    assertMatch(again.stderr, /No such user/);
  });
});

Deno.test("user with wrong arguments prints usage and exits 2", async () => {
  await withTempDir(async (tmp) => {
    const config = await setup(tmp);
    for (
      const args of [[], ["frobnicate"], ["add"], ["alias", "a@example.test"], ["list", "extra"]]
    ) {
      const r = await stoken(["user", ...args, "--config", config]);
      assertEquals(r.code, 2, args.join(" "));
      assertMatch(r.stderr, /usage: stoken user/);
    }
    const missing = await stoken(["user", "list", "--config", join(tmp, "nope.json")]);
    assertEquals(missing.code, 1);
    assertMatch(missing.stderr, /Cannot read configuration file ".*nope\.json"/);
  });
});

Deno.test("user uses $STOKEN_CONFIG when --config is absent", async () => {
  await withTempDir(async (tmp) => {
    const config = await setup(tmp);
    const r = await stoken(["user", "list"], { env: { STOKEN_CONFIG: config } });
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, /^ADDRESS/);
  });
});

Deno.test("on a terminal, user add prompts twice without echo", async () => {
  await withTempDir(async (tmp) => {
    const config = await setup(tmp);
    const drive = async (address: string, pw1: string, pw2: string) => {
      const out = await new Deno.Command("python3", {
        args: [
          fromFileUrl(new URL("./drive_tty.py", import.meta.url)),
          Deno.execPath(),
          "run",
          "-A",
          fromFileUrl(new URL("./cli_entry.ts", import.meta.url)),
          "user",
          "add",
          address,
          "--config",
          config,
        ],
        env: { PW1: pw1, PW2: pw2, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      return { code: out.code, shown: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
    };
    const ok = await drive("tty@example.test", "typed secret", "typed secret");
    assertEquals(ok.code, 0, ok.shown + ok.stderr);
    assertMatch(ok.shown, /Password: \r?\n.*Password again: \r?\n.*Added user tty@example\.test/s);
    assert(!ok.shown.includes("typed secret"), "no echo");
    assertEquals(await verify(config, "tty@example.test", "typed secret"), {
      address: "tty@example.test",
    });

    const mismatch = await drive("tty2@example.test", "typed secret", "typed secreT");
    assertEquals(mismatch.code, 1);
    assertMatch(mismatch.shown, /Passwords do not match/);
    assert(!mismatch.shown.includes("typed secre"), "no echo");
  });
});
