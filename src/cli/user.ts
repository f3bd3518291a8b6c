// `stoken user add|remove|list|alias|unalias`: user administration on the database
// the configuration names. Passwords are read from stdin (first line) or prompted
// without echo on a terminal, and never printed.
import process from "node:process";
import { parseArgs } from "node:util";
import { type Config, loadConfig } from "../config.ts";
import { Maildirs } from "../delivery/maildir.ts";
import { normalizeAddress } from "../protocol/address.ts";
import { openDatabase } from "../store/db.ts";
import { type UserInfo, Users } from "../store/users.ts";
import { configPath } from "./config_path.ts";

const USAGE = `usage: stoken user <command> [--config FILE]

  add ADDRESS           add a user (password: first line of stdin, or prompted twice on a terminal)
  remove ADDRESS        remove a user and its aliases (the Maildir is kept)
  list                  list users and their aliases
  alias ALIAS ADDRESS   deliver ALIAS to ADDRESS's mailbox, and let ADDRESS send as ALIAS
  unalias ALIAS         remove an alias`;

const MIN_PASSWORD = 8;
/** Longer input is not a password someone typed; refuse rather than hash megabytes. */
const MAX_PASSWORD = 1024;

/** Positional arguments each command takes. */
const ARITY: Record<string, number> = { add: 1, remove: 1, list: 0, alias: 2, unalias: 1 };

export async function run(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { config: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    console.error(`stoken user: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [cmd, ...rest] = positionals;
  const arity = cmd === undefined ? undefined : ARITY[cmd];
  if (cmd === undefined || arity === undefined || rest.length !== arity) {
    console.error(
      `${
        cmd === undefined || arity === undefined ? "" : `stoken user ${cmd}: wrong arguments\n\n`
      }${USAGE}`,
    );
    return 2;
  }

  const config = await loadConfig(configPath(values.config));
  const db = await openDatabase(config.database.url, config.database.auth_token);
  try {
    const users = new Users(db, new Set(config.domains));
    switch (cmd) {
      case "add":
        return await add(config, users, rest[0]!);
      case "remove": {
        const address = rest[0]!;
        await users.remove(address);
        const canonical = normalizeAddress(address) ?? address;
        const maildir = new Maildirs(config.mail_root, { fsync: false, hostname: config.hostname })
          .maildirOf(canonical);
        console.log(`Removed user ${canonical} and its aliases; the Maildir ${maildir} is kept`);
        return 0;
      }
      case "list":
        console.log(formatTable(await users.list()));
        return 0;
      case "alias": {
        await users.addAlias(rest[0]!, rest[1]!);
        console.log(
          `Alias ${normalizeAddress(rest[0]!)} now delivers to ${normalizeAddress(rest[1]!)}`,
        );
        return 0;
      }
      case "unalias":
        await users.removeAlias(rest[0]!);
        console.log(`Removed alias ${normalizeAddress(rest[0]!)}`);
        return 0;
    }
    return 2;
  } finally {
    db.close();
  }
}

async function add(config: Config, users: Users, address: string): Promise<number> {
  // Check what can be checked before asking for a password.
  const canonical = normalizeAddress(address);
  if (canonical === null) throw new Error(`Invalid user address: "${address}"`);
  const domain = canonical.slice(canonical.lastIndexOf("@") + 1);
  if (!config.domains.includes(domain)) {
    throw new Error(`Domain "${domain}" of "${address}" is not in the configured domains`);
  }
  if ((await users.lookup(canonical)) !== null) {
    throw new Error(`"${canonical}" is already a user or an alias`);
  }
  const password = process.stdin.isTTY ? await promptTwice() : await firstLine();
  checkPassword(password);
  await users.add(canonical, password);
  console.log(`Added user ${canonical}`);
  return 0;
}

export function checkPassword(password: string): void {
  if (password.length === 0) throw new Error("Empty password refused");
  const chars = [...password].length;
  if (chars < MIN_PASSWORD) {
    throw new Error(`Password too short: ${chars} characters, at least ${MIN_PASSWORD} required`);
  }
  if (chars > MAX_PASSWORD) {
    throw new Error(`Password too long: at most ${MAX_PASSWORD} characters`);
  }
}

/** The first line of stdin without its line ending (LF or CRLF). */
async function firstLine(): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of process.stdin) {
    text += decoder.decode(chunk as Uint8Array, { stream: true });
    if (text.includes("\n") || text.length > MAX_PASSWORD * 4) break;
  }
  text += decoder.decode();
  const nl = text.indexOf("\n");
  const line = nl >= 0 ? text.slice(0, nl) : text;
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

async function promptTwice(): Promise<string> {
  const first = await promptHidden("Password: ");
  checkPassword(first);
  const second = await promptHidden("Password again: ");
  if (first !== second) throw new Error("Passwords do not match");
  return first;
}

/** Read one line from the terminal in raw mode, echoing nothing. */
function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  // Raw mode first: once the prompt shows, nothing typed can be echoed by the terminal.
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let value = "";
    const finish = (err: Error | null) => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (data: Uint8Array | string) => {
      const s = typeof data === "string" ? data : new TextDecoder().decode(data);
      for (const ch of s) {
        if (ch === "\r" || ch === "\n") return finish(null);
        if (ch === "\u0003" || (ch === "\u0004" && value === "")) {
          return finish(new Error("Cancelled"));
        }
        if (ch === "\u007f" || ch === "\b") value = [...value].slice(0, -1).join("");
        else if (ch >= " ") value += ch;
      }
    };
    stdin.on("data", onData);
    stdin.resume();
  });
}

function formatTable(list: readonly UserInfo[]): string {
  if (list.length === 0) return "No users";
  const rows = [["ADDRESS", "CREATED", "ALIASES"]];
  for (const u of list) {
    const created = u.created.toISOString().slice(0, 16).replace("T", " ") + " UTC";
    rows.push([u.address, created, u.aliases.join(", ")]);
  }
  const w0 = Math.max(...rows.map((r) => r[0]!.length));
  const w1 = Math.max(...rows.map((r) => r[1]!.length));
  return rows.map((r) => `${r[0]!.padEnd(w0)}  ${r[1]!.padEnd(w1)}  ${r[2]}`.trimEnd()).join("\n");
}
