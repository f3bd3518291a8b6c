// The single executable (issue 5): built with `bun build --compile`, copied alone into an
// empty directory and run there with a bare environment: `init` writes a setup and opens the
// embedded database (libSQL's native module must be inside the binary), `serve` takes a user
// submission over STARTTLS and a full token delivery (GENSTOKEN TEMP, then LHLO, AUTH STOKEN,
// RCPT STOKEN, DATA: 2.1.13) from Python's smtplib, and SIGTERM stops it cleanly.
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { parseJson, simpleMessage } from "../helpers/e2e.ts";
import { freePort, parseInitPassword, PY_DIR } from "../helpers/server.ts";
import { bareEnv, BINARY_DIR, binaryAlone, buildBinary, exec, findBun } from "./_build.ts";

const bun = await findBun();

function binaryTest(name: string, fn: (binary: string) => Promise<void>): void {
  Deno.test({
    name,
    ignore: bun === null,
    // The test owns its child processes and always ends them itself.
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => fn(await buildBinary(bun!)),
  });
}

/** `./stoken init --dir d` in a directory that holds nothing but the binary. */
async function initAlone(binary: string) {
  const { dir, bin } = await binaryAlone(binary);
  const env = bareEnv(dir);
  const init = await exec("./stoken", ["init", "--dir", "d"], { cwd: dir, env, clearEnv: true });
  assertEquals(init.code, 0, `init failed:\n${init.stderr}${init.stdout}`);
  return { dir, bin, env, config: join(dir, "d", "stoken.json"), init };
}

binaryTest(
  "binary: alone in an empty directory, init writes a setup and opens the database",
  async (binary) => {
    const { dir, env, config, init } = await initAlone(binary);
    try {
      assertMatch(init.stdout, /^First user: admin@example\.test$/m);
      const password = parseInitPassword(init.stdout);
      assert(password.length >= 16, "init printed a password");
      // Nothing appeared beside the binary but the directory init was asked to write.
      assertEquals((await readdir(dir)).sort(), ["d", "stoken"]);
      assert((await stat(join(dir, "d", "stoken.db"))).size > 0, "database file written");
      const keys = await stat(join(dir, "d", "keys.json"));
      assertEquals(keys.mode & 0o777, 0o600, "key file mode");

      // Reading the user back goes through the embedded native module again, in a new process.
      const list = await exec("./stoken", ["user", "list", "--config", config], {
        cwd: dir,
        env,
        clearEnv: true,
      });
      assertEquals(list.code, 0, `user list failed:\n${list.stderr}`);
      assertMatch(list.stdout, /^admin@example\.test\b/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);

interface SubmitOut {
  ehlo: [number, string] | null;
  auth: [number, string] | null;
  data: [number, string] | null;
  error: string | null;
}

interface TokenOut {
  genstoken: [number, string] | null;
  lhlo: [number, string] | null;
  auth: [number, string] | null;
  mail: [number, string] | null;
  rcpt: [number, string] | null;
  data: [number, string] | null;
  error: string | null;
}

async function canConnect(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch {
    return false;
  }
}

binaryTest(
  "binary: serve, STARTTLS submission, token delivery with 2.1.13, clean SIGTERM",
  async (binary) => {
    const { dir, env, config, init } = await initAlone(binary);
    const user = "admin@example.test";
    const userPassword = parseInitPassword(init.stdout);
    let child: Deno.ChildProcess | null = null;
    try {
      const json = JSON.parse(await readFile(config, "utf8")) as Record<string, unknown>;
      const ports = { submission: freePort(), submissions: freePort(), lmtp: freePort() };
      json.listen = {
        submission: [`127.0.0.1:${ports.submission}`],
        submissions: [`127.0.0.1:${ports.submissions}`],
        lmtp: [`127.0.0.1:${ports.lmtp}`, "unix:lmtp.sock"],
      };
      await writeFile(config, JSON.stringify(json, null, 2) + "\n");

      child = new Deno.Command("./stoken", {
        args: ["serve", "--config", config],
        cwd: dir,
        env,
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const decoder = new TextDecoder();
      let logs = "";
      const drained = Promise.all([child.stdout, child.stderr].map(async (s) => {
        for await (const chunk of s) logs += decoder.decode(chunk, { stream: true });
      }));
      let exited: Deno.CommandStatus | null = null;
      const status = child.status.then((s) => (exited = s));

      // Ready once every listener accepts and the server has logged that it started.
      const deadline = Date.now() + 20_000;
      for (const port of Object.values(ports)) {
        while (!(await canConnect(port)) || !logs.includes('"event":"started"')) {
          if (exited !== null) throw new Error(`stoken serve exited before listening:\n${logs}`);
          if (Date.now() > deadline) throw new Error(`stoken serve did not listen:\n${logs}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }

      assert((await readdir(join(dir, "d"))).includes("lmtp.sock"), "LMTP socket created");

      // 1. A user submission over STARTTLS, to the user's own mailbox.
      const msg = join(dir, "submit.eml");
      await writeFile(
        msg,
        simpleMessage(user, user, "binary-submission", "Sent through the binary."),
      );
      const submit = parseJson<SubmitOut>(
        await exec("python3", [
          join(PY_DIR, "submit.py"),
          ...["--mode", "starttls", "--port", String(ports.submission), "--user", user],
          ...["--password", userPassword, "--from", user, "--to", user, "--message", msg],
        ]),
        "submit.py",
      );
      assertEquals(submit.error, null, "smtplib submission error");
      assertMatch(submit.ehlo![1], /AUTH PLAIN LOGIN/);
      assertEquals(submit.auth?.[0], 235);
      assertEquals(submit.data?.[0], 250);
      assertMatch(submit.data![1], /^2\.0\.0 [A-Za-z0-9]{10,32} Message accepted$/);

      // 2. A token delivery: GENSTOKEN TEMP in a user session, then a token session with it.
      const remote = "friend@remote.example.test";
      const tmsg = join(dir, "token.eml");
      await writeFile(tmsg, simpleMessage(remote, user, "binary-token", "Delivered with a token."));
      const token = parseJson<TokenOut>(
        await exec("python3", [
          join(BINARY_DIR, "token_delivery.py"),
          ...["--port", String(ports.submission), "--user", user, "--password", userPassword],
          ...["--remote", remote, "--message", tmsg],
        ]),
        "token_delivery.py",
      );
      assertEquals(token.error, null, "smtplib token delivery error");
      assertMatch(
        token.genstoken![1],
        /^2\.1\.11 [A-Za-z0-9_-]{20,64} Temporary token generated\.$/,
      );
      assertMatch(token.lhlo![1], /^STOKEN$/m);
      assertEquals(token.auth, [235, "2.7.0 OK"]);
      assertEquals(token.mail?.[0], 250);
      assertEquals(token.rcpt?.[0], 250);
      assertEquals(token.data?.[0], 250);
      assertMatch(
        token.data![1],
        /^2\.1\.13 <admin@example\.test> [A-Za-z0-9_-]{20,64} [A-Za-z0-9]{10,32} Saved$/,
      );

      const inbox = join(dir, "d", "mail", "example.test", "admin", "Maildir", "new");
      const stored = await Promise.all(
        (await readdir(inbox)).map((f) => readFile(join(inbox, f), "latin1")),
      );
      assertEquals(stored.length, 2, "messages in the Maildir");
      assert(stored.some((m) => m.includes("Subject: binary-submission\r\n")), "submission stored");
      assert(stored.some((m) => m.includes("Subject: binary-token\r\n")), "token delivery stored");

      // 3. SIGTERM: exit status 0, the shutdown logged, the LMTP socket removed.
      child.kill("SIGTERM");
      const timer = setTimeout(() => child?.kill("SIGKILL"), 45_000);
      const s = await status;
      clearTimeout(timer);
      await drained;
      assertEquals({ code: s.code, signal: s.signal }, { code: 0, signal: null }, logs);
      assertMatch(logs, /"event":"stopped"/);
      assertEquals((await readdir(join(dir, "d"))).includes("lmtp.sock"), false, "socket removed");
      // Secrets never reach the log.
      assert(!logs.includes(userPassword), "the password appears in the log");
      const tok = /^2\.1\.11 (\S+)/.exec(token.genstoken![1])![1]!;
      assert(!logs.includes(tok), "the token appears in the log");
    } finally {
      try {
        child?.kill("SIGKILL");
      } catch { /* exited */ }
      await child?.status;
      await rm(dir, { recursive: true, force: true });
    }
  },
);
