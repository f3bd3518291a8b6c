// scripts/install.sh into a DESTDIR (issue 5): the expected tree and modes (key file 0600,
// owned by the service user when the test runs as root), a configuration that points at the
// installed data and opens it, a systemd unit that `systemd-analyze verify` accepts where
// that command exists, and a second run that upgrades the binary and keeps config, keys and
// data.
import { existsSync } from "node:fs";
import { chmod, chown, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { buildBinary, exec, findBun, REPO_ROOT, type Result } from "../binary/_build.ts";
import { freePort } from "../helpers/server.ts";

const INSTALL = join(REPO_ROOT, "scripts", "install.sh");
const IS_ROOT = Deno.uid() === 0;
const SERVICE_USER = "stoken";

/**
 * The executable to install: the Bun-built binary where Bun is available, else a script
 * that runs `deno run mod.ts` (the installer treats both alike), so this test needs no Bun.
 */
async function stokenExecutable(dir: string, tag = ""): Promise<string> {
  if (tag === "") {
    const bun = await findBun("the install test uses `deno run mod.ts` as its binary");
    if (bun !== null) return await buildBinary(bun);
  }
  const path = join(dir, `stoken${tag}`);
  await writeFile(
    path,
    `#!/bin/sh\n# stoken through Deno${tag}\nexec "${Deno.execPath()}" run --allow-all --config "${
      join(REPO_ROOT, "deno.json")
    }" "${join(REPO_ROOT, "mod.ts")}" "$@"\n`,
  );
  await chmod(path, 0o755);
  return path;
}

function install(args: string[]): Promise<Result> {
  return exec(INSTALL, args, { timeoutMs: 120_000 });
}

async function userExists(name: string): Promise<boolean> {
  return (await exec("getent", ["passwd", name])).code === 0;
}

async function uidOf(name: string): Promise<number> {
  const r = await exec("id", ["-u", name]);
  assertEquals(r.code, 0, `id -u ${name}: ${r.stderr}`);
  return Number(r.stdout.trim());
}

const mode = async (path: string) => (await stat(path)).mode & 0o777;

/** The service user is created by install.sh when running as root; remove it if we made it. */
async function withServiceUser(fn: () => Promise<void>): Promise<void> {
  const existed = await userExists(SERVICE_USER);
  try {
    await fn();
  } finally {
    if (IS_ROOT && !existed && (await userExists(SERVICE_USER))) {
      await exec("userdel", [SERVICE_USER]);
    }
  }
}

Deno.test({
  name: "install.sh into a DESTDIR: tree, modes, owner, config, unit; a rerun upgrades and keeps",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withServiceUser(async () => {
      const work = await mkdtemp(join(tmpdir(), "stoken-install-"));
      try {
        const dest = join(work, "root");
        const binary = await stokenExecutable(work);
        const first = await install([
          ...["--destdir", dest, "--binary", binary],
          ...["--domain", "example.org", "--hostname", "mail.example.org"],
        ]);
        assertEquals(first.code, 0, `install.sh failed:\n${first.stderr}${first.stdout}`);
        assertMatch(first.stdout, /^First user: admin@example\.org$/m);
        assertMatch(first.stdout, /^Password: +\S{16,}$/m);
        assertMatch(first.stdout, /^service: not started \(staged into /m);

        // The tree and its modes.
        const bin = join(dest, "usr/local/bin/stoken");
        assertEquals(await mode(bin), 0o755, "binary mode");
        assertEquals(await readFile(bin), await readFile(binary), "installed binary");
        const config = join(dest, "etc/stoken/stoken.json");
        assertEquals(await mode(config), 0o640, "config mode");
        const state = join(dest, "var/lib/stoken");
        assertEquals(await mode(state), 0o700, "state directory mode");
        for (const secret of ["keys.json", "tls/key.pem"]) {
          assertEquals(await mode(join(state, secret)), 0o600, `${secret} mode`);
        }
        for (const d of ["mail", "spool"]) assert((await stat(join(state, d))).isDirectory(), d);
        assert((await stat(join(state, "stoken.db"))).size > 0, "database written");
        assertEquals(existsSync(join(dest, "etc/stoken/keys.json")), false, "no secrets in /etc");
        if (IS_ROOT) {
          const uid = await uidOf(SERVICE_USER);
          for (const f of ["", "keys.json", "stoken.db", "tls/key.pem", "mail"]) {
            assertEquals((await stat(join(state, f))).uid, uid, `owner of ${f || "the state dir"}`);
          }
          const cfg = await stat(config);
          assertEquals([cfg.uid, cfg.gid], [0, (await stat(state)).gid], "config root:stoken");
        } else {
          console.warn("tests/install: not root: ownership by the service user is not checked");
        }

        // The configuration: production listeners, every path absolute below /var/lib/stoken.
        const json = JSON.parse(await readFile(config, "utf8"));
        assertEquals(json.hostname, "mail.example.org");
        assertEquals(json.domains, ["example.org"]);
        assertEquals(json.listen.submission, ["0.0.0.0:587"]);
        assertEquals(json.listen.submissions, ["0.0.0.0:465"]);
        assertEquals(json.tls, {
          cert: "/var/lib/stoken/tls/cert.pem",
          key: "/var/lib/stoken/tls/key.pem",
        });
        assertEquals(json.database.url, "file:/var/lib/stoken/stoken.db");
        assertEquals(json.key_file, "/var/lib/stoken/keys.json");
        assertEquals(json.mail_root, "/var/lib/stoken/mail");
        assertEquals(json.spool_dir, "/var/lib/stoken/spool");

        // It fits the data it was made with: the staged database holds the first user.
        const staged = join(work, "staged.json");
        await writeFile(
          staged,
          (await readFile(config, "utf8")).replaceAll("/var/lib/stoken/", `${state}/`),
        );
        const list = await exec(bin, ["user", "list", "--config", staged]);
        assertEquals(list.code, 0, `user list on the installed data:\n${list.stderr}`);
        assertMatch(list.stdout, /^admin@example\.org\b/m);
        if (IS_ROOT && !binary.startsWith(work)) await serveAsServiceUser(bin, config, state, work);

        // The unit.
        const unitFile = join(dest, "etc/systemd/system/stoken.service");
        assertEquals(await mode(unitFile), 0o644, "unit mode");
        const unit = await readFile(unitFile, "utf8");
        for (
          const line of [
            "User=stoken",
            "ExecStart=/usr/local/bin/stoken serve --config /etc/stoken/stoken.json",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "Restart=on-failure",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ReadWritePaths=/var/lib/stoken",
            "AmbientCapabilities=CAP_NET_BIND_SERVICE",
            "WantedBy=multi-user.target",
          ]
        ) {
          assert(unit.split("\n").includes(line), `unit lacks "${line}"`);
        }
        assertEquals(/@[A-Z_]+@/.exec(unit), null, "placeholder left in the unit");
        await verifyUnit(unit, bin, work);

        // A second run: the binary is upgraded; config, keys and data are kept as they are.
        json.log = { level: "debug" }; // an administrator's edit
        await writeFile(config, JSON.stringify(json, null, 2) + "\n");
        const before = {
          config: await readFile(config, "utf8"),
          keys: await readFile(join(state, "keys.json"), "utf8"),
          db: await readFile(join(state, "stoken.db")),
        };
        const v2 = await stokenExecutable(work, "-v2");
        const again = await install(["--destdir", dest, "--binary", v2]);
        assertEquals(again.code, 0, `second install.sh failed:\n${again.stderr}${again.stdout}`);
        assertMatch(again.stdout, /^binary: +\/usr\/local\/bin\/stoken \(upgraded\)$/m);
        assertMatch(again.stdout, /^config: +\/etc\/stoken\/stoken\.json \(kept\)$/m);
        assertEquals(/Password:/.exec(again.stdout), null, "no new first user");
        assertEquals(await readFile(bin, "utf8"), await readFile(v2, "utf8"), "binary upgraded");
        assertEquals(await readFile(config, "utf8"), before.config, "config kept");
        assertEquals(await readFile(join(state, "keys.json"), "utf8"), before.keys, "keys kept");
        assertEquals(await readFile(join(state, "stoken.db")), before.db, "database kept");
        assertEquals(await mode(join(state, "keys.json")), 0o600, "key file mode kept");

        // Data without its configuration is refused, never replaced by a fresh key file.
        await rm(config);
        const orphan = await install(["--destdir", dest, "--binary", v2, "--domain", "x.org"]);
        assertEquals(orphan.code, 1, orphan.stdout);
        assertMatch(orphan.stderr, /\/var\/lib\/stoken\/keys\.json exists but \/etc\/stoken/);
        assertEquals(await readFile(join(state, "keys.json"), "utf8"), before.keys, "keys intact");
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    }),
});

/**
 * `systemd-analyze verify` on the unit. It checks that ExecStart's program exists, so the
 * copy it reads names the staged binary instead of /usr/local/bin/stoken.
 */
async function verifyUnit(unit: string, stagedBinary: string, work: string): Promise<void> {
  const which = await exec("sh", ["-c", "command -v systemd-analyze"]);
  if (which.code !== 0) {
    console.warn("tests/install: systemd-analyze is not installed: the unit is not verified");
    return;
  }
  const dir = join(work, "verify");
  await Deno.mkdir(dir);
  const file = join(dir, "stoken.service");
  await writeFile(
    file,
    unit.replace("ExecStart=/usr/local/bin/stoken ", `ExecStart=${stagedBinary} `),
  );
  const r = await exec("systemd-analyze", ["verify", "--man=no", file]);
  assertEquals(r.code, 0, `systemd-analyze verify rejects the unit:\n${r.stderr}${r.stdout}`);
  assertEquals(r.stderr.split("\n").filter((l) => l.includes("stoken.service")), [], r.stderr);
}

/**
 * Run the installed binary as the service user (as the unit does) on the staged files, with
 * a copy of the config that has the installed config's owner and mode: serve must be able to
 * read the config, certificate, key file and database, and write the database and Maildirs.
 */
async function serveAsServiceUser(bin: string, config: string, state: string, work: string) {
  if ((await exec("sh", ["-c", "command -v setpriv"])).code !== 0) {
    console.warn("tests/install: setpriv is not installed: serve as the service user not run");
    return;
  }
  await chmod(work, 0o711); // the service user must reach the staged tree
  const json = JSON.parse(await readFile(config, "utf8"));
  json.listen = {
    submission: [`127.0.0.1:${freePort()}`],
    submissions: [`127.0.0.1:${freePort()}`],
    lmtp: [`127.0.0.1:${freePort()}`],
  };
  const copy = join(work, "served.json");
  await writeFile(
    copy,
    JSON.stringify(json, null, 2).replaceAll("/var/lib/stoken/", `${state}/`),
    { mode: 0o640 },
  );
  const orig = await stat(config);
  await chown(copy, orig.uid, orig.gid);
  await chmod(copy, orig.mode & 0o777);

  const child = new Deno.Command("setpriv", {
    args: [
      ...["--reuid", SERVICE_USER, "--regid", SERVICE_USER, "--clear-groups", "--"],
      ...[bin, "serve", "--config", copy],
    ],
    cwd: state,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let logs = "";
  const decoder = new TextDecoder();
  const drained = Promise.all([child.stdout, child.stderr].map(async (s) => {
    for await (const chunk of s) logs += decoder.decode(chunk, { stream: true });
  }));
  let done = false;
  const status = child.status.finally(() => (done = true));
  const deadline = Date.now() + 20_000;
  while (!logs.includes('"event":"started"') && !done && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    child.kill("SIGTERM");
  } catch { /* exited */ }
  const s = await status;
  await drained;
  assertMatch(logs, /"event":"started"/, `serve as ${SERVICE_USER} did not start:\n${logs}`);
  assertEquals(s.code, 0, `serve as ${SERVICE_USER} did not stop cleanly:\n${logs}`);
}
