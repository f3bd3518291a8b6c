// `stoken token …` and `stoken keys …` against a real config, key file and database.
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { run as runKeys } from "../../src/cli/keys.ts";
import { run as runToken } from "../../src/cli/token.ts";
import { openDatabase } from "../../src/store/db.ts";
import { newKeyFile, readKeyFile, writeKeyFile } from "../../src/store/key_file.ts";
import { LibsqlTokenStore } from "../../src/store/tokens.ts";
import { Users } from "../../src/store/users.ts";
import { TokenEngine } from "../../src/tokens/engine.ts";

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

async function capture(fn: () => Promise<number>): Promise<Out> {
  const log = console.log;
  const error = console.error;
  const out: string[] = [];
  const err: string[] = [];
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await fn();
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

async function withSetup(fn: (config: string, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stoken-cli-" });
  try {
    const config = `${dir}/stoken.json`;
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        domains: ["local.example"],
        database: { url: "file:stoken.db" },
        key_file: "keys.json",
      }),
    );
    await writeKeyFile(`${dir}/keys.json`, newKeyFile());
    const db = await openDatabase(`file:${dir}/stoken.db`);
    try {
      await new Users(db, new Set(["local.example"])).add("alice@local.example", "pw");
    } finally {
      db.close();
    }
    await fn(config, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("stoken token gen/list/revoke", async () => {
  await withSetup(async (config, dir) => {
    const c = ["--config", config];
    const perm = await capture(() =>
      runToken(["gen", "perm", "Bob@Remote.Example", "alice@local.example", ...c])
    );
    assertEquals(perm.code, 0, perm.stderr);
    assertMatch(perm.stdout, /^[A-Za-z0-9_-]{60}$/);
    assertMatch(perm.stderr, /generated/);
    const same = await capture(() =>
      runToken(["gen", "perm", "bob@remote.example", "<Alice@local.example>", ...c])
    );
    assertEquals(same.stdout, perm.stdout, "the existing permanent token is returned");
    assertMatch(same.stderr, /exists/);
    const temp = await capture(() =>
      runToken(["gen", "temp", "bob@remote.example", "alice@local.example", ...c])
    );
    assertEquals(temp.code, 0);
    assertMatch(temp.stdout, /^[A-Za-z0-9_-]{60}$/);

    const list = await capture(() => runToken(["list", ...c]));
    assertEquals(list.code, 0);
    assertMatch(list.stdout, /^REMOTE\s+LOCAL\s+KIND\s+ISSUED\s+EXPIRES\s+LAST USED\n/);
    assertMatch(
      list.stdout,
      /bob@remote\.example\s+alice@local\.example\s+perm\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ/,
    );
    assert(
      !list.stdout.includes(perm.stdout) && !list.stderr.includes(perm.stdout),
      "list shows a token",
    );
    assertEquals(
      (await capture(() => runToken(["list", "carol@local.example", ...c]))).stdout.split("\n")
        .length,
      1,
    );

    const rev = await capture(() =>
      runToken(["revoke", "bob@remote.example", "alice@local.example", ...c])
    );
    assertEquals(rev.code, 0);
    const db = await openDatabase(`file:${dir}/stoken.db`);
    try {
      const engine = await TokenEngine.create(
        await readKeyFile(`${dir}/keys.json`),
        new LibsqlTokenStore(db),
      );
      assertEquals(await engine.verify(perm.stdout, "bob@remote.example", "alice@local.example"), {
        ok: false,
      });
      assertEquals(await engine.verify(temp.stdout, "bob@remote.example", "alice@local.example"), {
        ok: false,
      });
    } finally {
      db.close();
    }
    const after = await capture(() =>
      runToken(["gen", "perm", "bob@remote.example", "alice@local.example", ...c])
    );
    assert(after.stdout !== perm.stdout);
  });
});

Deno.test("stoken token: bad arguments and unknown users are refused", async () => {
  await withSetup(async (config) => {
    const c = ["--config", config];
    const cases: [string[], number, RegExp][] = [
      [["gen", "perm", "bob@remote.example", ...c], 2, /Missing local address/],
      [["gen", "forever", "bob@remote.example", "alice@local.example", ...c], 2, /temp or perm/],
      [
        ["gen", "temp", "remoteuser..@example.com", "alice@local.example", ...c],
        2,
        /Incorrect remote address/,
      ],
      [["gen", "temp", "bob@remote.example", "carol@local.example", ...c], 1, /Not a local user/],
      [["revoke", "bob@remote.example", ...c], 2, /Missing local address/],
      [["frobnicate", ...c], 2, /Unknown subcommand/],
      [[...c], 2, /Missing subcommand/],
    ];
    for (const [args, code, re] of cases) {
      const r = await capture(() => runToken(args));
      assertEquals(r.code, code, args.join(" "));
      assertMatch(r.stderr, re);
      assertEquals(r.stdout, "", "no token printed");
    }
  });
});

Deno.test("stoken keys rotate: a new current key; tokens under the old one still verify", async () => {
  await withSetup(async (config, dir) => {
    const c = ["--config", config];
    const before = await readKeyFile(`${dir}/keys.json`);
    const perm = await capture(() =>
      runToken(["gen", "perm", "bob@remote.example", "alice@local.example", ...c])
    );
    const rot = await capture(() => runKeys(["rotate", ...c]));
    assertEquals(rot.code, 0);
    const after = await readKeyFile(`${dir}/keys.json`);
    assertEquals(after.token_keys.length, 2);
    assertEquals(rot.stdout, after.current);
    assert(after.current !== before.current);
    assertEquals(after.held_token_key, before.held_token_key, "held tokens stay readable");
    assertEquals((await Deno.stat(`${dir}/keys.json`)).mode! & 0o777, 0o600);

    const list = await capture(() => runKeys(["list", ...c]));
    assertMatch(list.stdout, new RegExp(`${after.current} .*current`));
    assert(!list.stdout.includes(after.token_keys[0]!.secret), "keys list shows a secret");

    // Same permanent token (old key) and it verifies; new temp tokens use the new key.
    const again = await capture(() =>
      runToken(["gen", "perm", "bob@remote.example", "alice@local.example", ...c])
    );
    assertEquals(again.stdout, perm.stdout);
    const db = await openDatabase(`file:${dir}/stoken.db`);
    try {
      const engine = await TokenEngine.create(after, new LibsqlTokenStore(db));
      assertEquals(await engine.verify(perm.stdout, "bob@remote.example", "alice@local.example"), {
        ok: true,
        kind: "perm",
      });
    } finally {
      db.close();
    }
    assertEquals((await capture(() => runKeys(["spin", ...c]))).code, 2);
  });
});
