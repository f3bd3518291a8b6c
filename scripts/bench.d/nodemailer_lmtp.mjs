// The nodemailer peer (issue 6): smtp-server in LMTP mode, run by Node from a scratch
// directory outside the project. The handler streams each message into one file per
// recipient, fsyncs and closes them, then answers 250 for every recipient: the same
// durability promise a mailbox server makes. No reverse DNS lookup, no AUTH, no TLS.
//   node nodemailer_lmtp.mjs <node_modules dir> <port> <mail dir>
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";

const [modules, portArg, dir] = process.argv.slice(2);
if (!modules || !portArg || !dir) {
  console.error("usage: node nodemailer_lmtp.mjs <node_modules dir> <port> <mail dir>");
  process.exit(2);
}
const require = createRequire(join(modules, "noop.js"));
const { SMTPServer } = require("smtp-server");
mkdirSync(dir, { recursive: true });

let counter = 0;

async function save(stream, session) {
  const n = session.envelope.rcptTo.length;
  const files = [];
  try {
    for (let i = 0; i < n; i++) {
      files.push(await open(join(dir, `${process.pid}.${Date.now()}.${++counter}`), "wx", 0o600));
    }
    for await (const chunk of stream) {
      await Promise.all(files.map((f) => f.write(chunk)));
    }
    await Promise.all(files.map((f) => f.sync()));
  } finally {
    await Promise.all(files.map((f) => f.close()));
  }
}

const server = new SMTPServer({
  lmtp: true,
  banner: "nodemailer",
  authOptional: true,
  disabledCommands: ["AUTH", "STARTTLS"],
  disableReverseLookup: true,
  logger: false,
  size: 64 * 1024 * 1024,
  onData(stream, session, callback) {
    save(stream, session).then(
      () => callback(null, "Saved"),
      (e) => {
        stream.resume();
        callback(Object.assign(new Error("Temporary failure"), { responseCode: 451, cause: e }));
      },
    );
  },
});
server.on("error", (e) => console.error("smtp-server error:", e.message));
server.listen(Number(portArg), "127.0.0.1", () => console.log(`listening on ${portArg}`));
process.on("SIGTERM", () => process.exit(0));
