// `stoken init`: a working development setup in one directory (config, key file,
// self-signed certificate, database, first user), so `stoken serve` runs at once.
import { existsSync } from "node:fs";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { configFrom, loadConfig } from "../config.ts";
import { isDomainName, normalizeAddress } from "../protocol/address.ts";
import { openDatabase } from "../store/db.ts";
import { newKeyFile, readKeyFile, writeKeyFile } from "../store/key_file.ts";
import { Users } from "../store/users.ts";
import { selfSignedCertificate } from "./selfsigned.ts";

const USAGE =
  "usage: stoken init [--dir DIR] [--domain DOMAIN] [--hostname HOST] [--user ADDRESS] [--system] [--force]";

/** Ports that need no privileges, on loopback only. */
const DEV_LISTEN = {
  submission: ["127.0.0.1:2587"],
  submissions: ["127.0.0.1:2465"],
  lmtp: ["127.0.0.1:2024", "unix:lmtp.sock"],
};

/** The standard ports (RFC 6409, RFC 8314; LMTP on 24 stays on loopback: no AUTH there). */
const SYSTEM_LISTEN = {
  submission: ["0.0.0.0:587"],
  submissions: ["0.0.0.0:465"],
  lmtp: ["127.0.0.1:24"],
};

/** Write a file atomically with `mode` from its creation (secrets never exist world-readable). */
async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const rand = crypto.getRandomValues(new Uint8Array(6)).toHex();
  const tmp = join(dirname(path), `.${basename(path)}.${rand}.tmp`);
  try {
    const fh = await open(tmp, "wx", mode);
    try {
      await fh.writeFile(data, "utf8");
      await fh.chmod(mode); // the umask may have removed bits we asked for
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

const PASSWORD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/**
 * A password for the first user: 24 letters and digits (about 143 bits). No "-" or "_",
 * so it never looks like an option when pasted into a command line (swaks, mail clients).
 */
export function generatePassword(): string {
  let out = "";
  while (out.length < 24) {
    for (const b of crypto.getRandomValues(new Uint8Array(32))) {
      // 248 = 4 × 62: rejecting the rest keeps every character equally likely.
      if (b < 248 && out.length < 24) out += PASSWORD_ALPHABET[b % 62];
    }
  }
  return out;
}

export async function run(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        dir: { type: "string" },
        domain: { type: "string" },
        hostname: { type: "string" },
        user: { type: "string" },
        system: { type: "boolean" },
        force: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    console.error(`stoken init: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }

  const dir = resolve(values.dir ?? "./var");
  const domain = (values.domain ?? "example.test").toLowerCase();
  if (!isDomainName(domain)) throw new Error(`Not a domain name: "${values.domain}"`);
  const hostname = values.hostname ?? "localhost";
  const userInput = values.user ?? `admin@${domain}`;
  const user = normalizeAddress(userInput);
  if (user === null) throw new Error(`Invalid user address: "${userInput}"`);
  if (!user.endsWith(`@${domain}`)) {
    throw new Error(`User "${user}" is not in the domain "${domain}" (set --domain)`);
  }

  const configFile = join(dir, "stoken.json");
  if (existsSync(configFile) && !values.force) {
    console.error(`stoken init: "${configFile}" already exists: use --force to overwrite it`);
    return 1;
  }

  const json = {
    hostname,
    domains: [domain],
    listen: values.system ? SYSTEM_LISTEN : DEV_LISTEN,
    tls: { cert: "tls/cert.pem", key: "tls/key.pem" },
    database: { url: "file:stoken.db" },
    key_file: "keys.json",
    mail_root: "mail",
    spool_dir: "spool",
  };
  // Validate before writing anything; the environment is ignored here so that init
  // writes its files where the config says, not where an override points.
  const config = configFrom(json, dir, {});
  const created: [string, string][] = [];

  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeAtomic(configFile, JSON.stringify(json, null, 2) + "\n", 0o644);
  created.push(["config", configFile]);

  const { certPem, keyPem } = await selfSignedCertificate(config.hostname);
  await mkdir(dirname(config.tls.cert), { recursive: true, mode: 0o755 });
  await mkdir(dirname(config.tls.key), { recursive: true, mode: 0o700 });
  await writeAtomic(config.tls.key, keyPem, 0o600);
  await writeAtomic(config.tls.cert, certPem, 0o644);
  created.push(["certificate", `${config.tls.cert} (self-signed for ${config.hostname})`]);
  created.push(["private key", `${config.tls.key} (mode 0600)`]);

  // An existing key file is kept: replacing it would invalidate every token issued.
  if (existsSync(config.key_file)) {
    await readKeyFile(config.key_file);
    created.push(["key file", `${config.key_file} (existing one kept)`]);
  } else {
    await writeKeyFile(config.key_file, newKeyFile());
    created.push(["key file", `${config.key_file} (mode 0600: keep it secret)`]);
  }

  for (const d of [config.mail_root, config.spool_dir]) {
    await mkdir(d, { recursive: true, mode: 0o700 });
  }
  created.push(["mail", config.mail_root]);
  created.push(["spool", config.spool_dir]);

  let password: string | null = null;
  const db = await openDatabase(config.database.url);
  try {
    const users = new Users(db, new Set(config.domains));
    if ((await users.lookup(user)) === null) {
      password = generatePassword();
      await users.add(user, password);
    }
  } finally {
    db.close();
  }
  created.push(["database", config.database.url]);

  // What `stoken serve` will read must load cleanly.
  await loadConfig(configFile);

  const width = Math.max(...created.map(([k]) => k.length)) + 2;
  const out = [`Created a stoken setup in ${dir}:`];
  for (const [what, where] of created) out.push(`  ${what.padEnd(width)}${where}`);
  out.push("", "Listening (when served):");
  for (const [kind, addrs] of Object.entries(json.listen)) {
    out.push(`  ${kind.padEnd(width)}${addrs.join(", ")}`);
  }
  out.push("");
  if (password !== null) {
    out.push(
      `First user: ${user}`,
      `Password:   ${password}`,
      "",
      "This password is shown only once and is not stored anywhere in readable form.",
      "Save it now (a password manager), then log in with the address as the username.",
    );
  } else {
    out.push(`User ${user} already exists in the database: its password is unchanged.`);
  }
  out.push("", `Start the server: stoken serve --config ${configFile}`);
  console.log(out.join("\n"));
  return 0;
}
