// Command-line entry: one visible table of subcommands.
import { run as runInit } from "./init.ts";
import { run as runDoctor } from "./doctor.ts";
import { run as runKeys } from "./keys.ts";
import { run as runSend } from "./send.ts";
import { run as runToken } from "./token.ts";
import { run as runServe } from "./serve.ts";
import { run as runUser } from "./user.ts";

const USAGE = `usage: stoken <command> [options]

commands:
  init [--dir DIR] [--domain DOMAIN] [--hostname HOST] [--user ADDRESS] [--system] [--force]
                      write a working setup: config, key file, certificate, database, first user
  serve [--config FILE]
                      run the server in the foreground
  user add ADDRESS    add a user (password from stdin, or prompted on a terminal)
  user remove ADDRESS remove a user and its aliases (the Maildir is kept)
  user list           list users and their aliases
  user alias ALIAS ADDRESS    deliver ALIAS to ADDRESS's mailbox, and let ADDRESS send as ALIAS
  user unalias ALIAS  remove an alias
  token gen (temp|perm) REMOTE LOCAL
                      make a token for the pair (the same as GENSTOKEN); printed once
  token revoke REMOTE LOCAL   revoke every token of the pair (the same as REVSTOKEN)
  token list [LOCAL]  permanent tokens: pair, issued, expires, last used (to 5 minutes; never the token)
  keys rotate         add a new current token key; older tokens stay valid until they expire
  keys list           key ids and creation dates (never the secrets)
  send --from A --to B [FILE]
                      deliver one message from our user A to B in another domain, as the server
                      would (token path, else relay); prints the path taken and the reply
  doctor DOMAIN       DNS records, TLS and certificate, STOKEN in LHLO and round-trip time for
                      each place discovery finds for DOMAIN

Every command but init takes --config FILE (default: $STOKEN_CONFIG, else ./var/stoken.json,
else /etc/stoken/stoken.json).
`;

type Command = (args: string[]) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  init: runInit,
  serve: runServe,
  user: runUser,
  token: runToken,
  keys: runKeys,
  send: runSend,
  doctor: runDoctor,
};

export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    console.log(USAGE);
    return name === undefined ? 2 : 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`stoken: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  try {
    return await cmd(rest);
  } catch (e) {
    console.error(`stoken ${name}: ${(e as Error).message}`);
    return 1;
  }
}
