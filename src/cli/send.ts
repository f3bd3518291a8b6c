// `stoken send --from A --to B [FILE]`: deliver one message as the server would for a user
// of ours — straight to B's Token Server when a token is held, else through the relay —
// and say which path it took.
import { readFile } from "node:fs/promises";
import process from "node:process";
import { parseArgs } from "node:util";
import { MemorySpillSpool } from "../delivery/spool.ts";
import { normalizeAddress } from "../protocol/address.ts";
import { latin1Bytes, readHead } from "../protocol/message_view.ts";
import { Logger } from "../server/log.ts";
import { Users } from "../store/users.ts";
import { openContext, outbound } from "./context.ts";

const USAGE = "usage: stoken send --from ADDRESS --to ADDRESS [FILE] [--config FILE]";

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      from: { type: "string" },
      to: { type: "string" },
      config: { type: "string" },
      verbose: { type: "boolean", short: "v" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (!values.from || !values.to || positionals.length > 1) {
    console.error(USAGE);
    return 2;
  }
  const to = normalizeAddress(values.to);
  if (to === null || !to.includes("@")) {
    throw new Error(`Not a valid recipient address: "${values.to}"`);
  }
  const raw = positionals[0] === undefined ? await readStdin() : await readFile(positionals[0]);
  const ctx = await openContext(values.config);
  try {
    const { config } = ctx;
    const domain = to.slice(to.lastIndexOf("@") + 1);
    if (config.domains.includes(domain)) {
      throw new Error(`"${values.to}" is local: send it through the submission or LMTP listener`);
    }
    const user = await new Users(ctx.db, new Set(config.domains)).lookup(values.from);
    if (!user) throw new Error(`"${values.from}" is not a user of this server`);
    const log = new Logger(values.verbose ? "debug" : "warn");
    const out = await outbound(ctx, log);
    const msg = await new MemorySpillSpool(config.spool_dir).create();
    try {
      await msg.write(latin1Bytes(crlf(raw)));
      const res = await out.deliver(values.from, user.address, values.to, msg, await readHead(msg));
      if (!res.ok) {
        console.error(
          `not delivered (${res.permanent ? "refused" : "temporary failure"}): ${res.cause}`,
        );
        return 1;
      }
      console.log(`path: ${res.path}\nreply: ${res.detail}`);
      return 0;
    } finally {
      await msg.discard();
    }
  } finally {
    ctx.close();
  }
}

/** Files written on Unix end lines with LF; on the wire every line ends with CRLF. */
function crlf(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 65536) {
    s += String.fromCharCode(...bytes.subarray(i, i + 65536));
  }
  s = s.replace(/\r?\n/g, "\r\n");
  return s.endsWith("\r\n") ? s : s + "\r\n";
}

async function readStdin(): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of process.stdin) parts.push(chunk as Uint8Array);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
