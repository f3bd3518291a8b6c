// Which configuration file a command uses: --config, else $STOKEN_CONFIG, else the
// development setup `stoken init` writes (./var/stoken.json) when it exists, else the
// system location.
import { existsSync } from "node:fs";
import process from "node:process";

export const DEV_CONFIG = "./var/stoken.json";
export const SYSTEM_CONFIG = "/etc/stoken/stoken.json";

export function configPath(
  flag: string | undefined,
  env: Record<string, string | undefined> = process.env,
  exists: (path: string) => boolean = existsSync,
): string {
  if (flag) return flag;
  if (env.STOKEN_CONFIG) return env.STOKEN_CONFIG;
  if (exists(DEV_CONFIG)) return DEV_CONFIG;
  return SYSTEM_CONFIG;
}
