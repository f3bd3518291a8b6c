import { stat } from "node:fs/promises";
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { loadConfig } from "../../src/config.ts";
import { openDatabase } from "../../src/store/db.ts";
import { readKeyFile } from "../../src/store/key_file.ts";
import { Users } from "../../src/store/users.ts";
import { runDeno, stoken, withTempDir } from "./helpers.ts";

const mode = async (p: string) => (await stat(p)).mode & 0o777;

function passwordOf(stdout: string): string {
  const m = /^Password: +(\S+)$/m.exec(stdout);
  assert(m, `no password in output:\n${stdout}`);
  return m[1]!;
}

Deno.test("init writes a setup that loads, with a first user whose printed password works", async () => {
  await withTempDir(async (tmp) => {
    const dir = join(tmp, "var");
    const r = await stoken([
      "init",
      "--dir",
      dir,
      "--domain",
      "Example.ORG",
      "--hostname",
      "mail.example.org",
    ]);
    assertEquals(r.code, 0, r.stderr);
    const password = passwordOf(r.stdout);
    assertMatch(password, /^[A-Za-z0-9]{24}$/);
    assertEquals(r.stdout.split(password).length, 2, "the password is printed exactly once");
    assertMatch(r.stdout, /First user: admin@example\.org/);
    assertMatch(r.stdout, /shown only once/);
    for (const what of ["config", "certificate", "private key", "key file", "database", "mail"]) {
      assertMatch(r.stdout, new RegExp(`^  ${what} `, "m"));
    }

    const config = await loadConfig(join(dir, "stoken.json"));
    assertEquals(config.hostname, "mail.example.org");
    assertEquals(config.domains, ["example.org"]);
    assertEquals(config.listen.submission, ["127.0.0.1:2587"]);
    assertEquals(config.listen.submissions, ["127.0.0.1:2465"]);
    assertEquals(config.listen.lmtp, ["127.0.0.1:2024", `unix:${join(dir, "lmtp.sock")}`]);
    assertEquals(config.tls.cert, join(dir, "tls/cert.pem"));
    assertEquals(config.database.url, `file:${join(dir, "stoken.db")}`);
    assertEquals(config.key_file, join(dir, "keys.json"));
    assertEquals(config.mail_root, join(dir, "mail"));
    assertEquals(config.spool_dir, join(dir, "spool"));

    assertEquals(await mode(config.key_file), 0o600);
    assertEquals(await mode(config.tls.key), 0o600);
    assertEquals(await mode(dir), 0o700);
    assertEquals((await readKeyFile(config.key_file)).token_keys.length, 1);
    assertMatch(await Deno.readTextFile(config.tls.cert), /^-----BEGIN CERTIFICATE-----/);

    const db = await openDatabase(config.database.url);
    try {
      const users = new Users(db, new Set(config.domains));
      assertEquals(await users.verifyPassword("admin@example.org", password), {
        address: "admin@example.org",
      });
    } finally {
      db.close();
    }
  });
});

Deno.test("init refuses to overwrite a setup unless --force, and --force keeps keys and users", async () => {
  await withTempDir(async (tmp) => {
    const dir = join(tmp, "var");
    const first = await stoken(["init", "--dir", dir]);
    assertEquals(first.code, 0, first.stderr);
    const configText = await Deno.readTextFile(join(dir, "stoken.json"));
    const keysText = await Deno.readTextFile(join(dir, "keys.json"));

    const again = await stoken(["init", "--dir", dir, "--hostname", "other.example.test"]);
    assertEquals(again.code, 1);
    assertMatch(again.stderr, /stoken\.json" already exists: use --force to overwrite it/);
    assertEquals(await Deno.readTextFile(join(dir, "stoken.json")), configText, "untouched");

    const forced = await stoken([
      "init",
      "--dir",
      dir,
      "--hostname",
      "other.example.test",
      "--force",
    ]);
    assertEquals(forced.code, 0, forced.stderr);
    assertMatch(forced.stdout, /already exists in the database: its password is unchanged/);
    assert(!/^Password:/m.test(forced.stdout), "no new password printed");
    assertEquals(await Deno.readTextFile(join(dir, "keys.json")), keysText, "key file kept");
    assertEquals((await loadConfig(join(dir, "stoken.json"))).hostname, "other.example.test");
  });
});

Deno.test("init --system listens on the standard ports", async () => {
  await withTempDir(async (tmp) => {
    const r = await stoken(["init", "--dir", tmp, "--system", "--user", "Postmaster@example.test"]);
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, /First user: postmaster@example\.test/);
    const config = await loadConfig(join(tmp, "stoken.json"));
    assertEquals(config.listen.submission, ["0.0.0.0:587"]);
    assertEquals(config.listen.submissions, ["0.0.0.0:465"]);
    assertEquals(config.listen.lmtp, ["127.0.0.1:24"]);
  });
});

Deno.test("init rejects bad arguments before writing anything", async () => {
  await withTempDir(async (tmp) => {
    const dir = join(tmp, "var");
    const other = await stoken(["init", "--dir", dir, "--user", "bob@elsewhere.test"]);
    assertEquals(other.code, 1);
    assertMatch(other.stderr, /User "bob@elsewhere\.test" is not in the domain "example\.test"/);
    const badDomain = await stoken(["init", "--dir", dir, "--domain", "not a domain"]);
    assertEquals(badDomain.code, 1);
    assertMatch(badDomain.stderr, /Not a domain name: "not a domain"/);
    const badHost = await stoken(["init", "--dir", dir, "--hostname", "bad host"]);
    assertEquals(badHost.code, 1);
    assertMatch(badHost.stderr, /"hostname" is not a host name: "bad host"/);
    const unknown = await stoken(["init", "--bogus"]);
    assertEquals(unknown.code, 2);
    assertMatch(unknown.stderr, /usage: stoken init/);
    const entries = [];
    for await (const e of Deno.readDir(tmp)) entries.push(e.name);
    assertEquals(entries, [], "nothing was created");
  });
});

// Through the real entry point, once mod.ts's whole command table loads (serve.ts and
// its imports are written by others and may lag behind).
const modLoads = (await runDeno("mod.ts", ["help"])).code === 0;
Deno.test({
  name: "deno run -A mod.ts init --dir DIR works through the command table",
  ignore: !modLoads,
  fn: async () => {
    await withTempDir(async (tmp) => {
      const r = await runDeno("mod.ts", ["init", "--dir", tmp]);
      assertEquals(r.code, 0, r.stderr);
      passwordOf(r.stdout);
      await loadConfig(join(tmp, "stoken.json"));
      const again = await runDeno("mod.ts", ["init", "--dir", tmp]);
      assertEquals(again.code, 1);
      assertMatch(again.stderr, /already exists/);
    });
  },
});
