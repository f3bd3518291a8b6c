// `stoken keys rotate|list`: the token keys of the key file. Rotation adds a key and makes
// it current; older keys stay, so tokens issued under them keep working until they
// expire (PROTOCOL §5). `list` shows ids and dates, never a secret.
import { parseSubcommand } from "./args.ts";
import { loadConfig } from "../config.ts";
import { readKeyFile, rotateKeys, writeKeyFile } from "../store/key_file.ts";
import { configPath } from "./config_path.ts";

const USAGE = `usage:
  stoken keys rotate [--config FILE]
                      add a new token key and make it current (older keys keep verifying)
  stoken keys list [--config FILE]
                      list token key ids and creation dates`;

export async function run(args: string[]): Promise<number> {
  const parsed = parseSubcommand(args, USAGE);
  if (typeof parsed === "number") return parsed;
  const values = parsed;
  const [sub, ...rest] = parsed.positionals;
  if ((sub !== "rotate" && sub !== "list") || rest.length > 0) {
    const why = sub === undefined
      ? "Missing subcommand"
      : rest.length > 0
      ? `Unexpected argument "${rest[0]}"`
      : `Unknown subcommand "${sub}"`;
    console.error(`${why}\n\n${USAGE}`);
    return 2;
  }
  const config = await loadConfig(configPath(values.config));
  const kf = await readKeyFile(config.key_file);
  if (sub === "list") {
    for (const k of kf.token_keys) {
      console.log(`${k.id}  ${k.created}${k.id === kf.current ? "  current" : ""}`);
    }
    return 0;
  }
  const next = rotateKeys(kf);
  await writeKeyFile(config.key_file, next);
  console.log(next.current);
  // Instances read the key file at start: one that has not restarted cannot verify
  // tokens signed with the new key by one that has.
  console.error(
    `Token key ${next.current} is now current (${next.token_keys.length} keys). ` +
      `Restart every stoken instance sharing "${config.key_file}".`,
  );
  return 0;
}
