import { assertEquals } from "../assert.ts";
import { configPath, DEV_CONFIG, SYSTEM_CONFIG } from "../../src/cli/config_path.ts";

const none = () => false;
const all = () => true;

Deno.test("configPath: --config wins, then $STOKEN_CONFIG, then ./var/stoken.json, then /etc", () => {
  assertEquals(configPath("/a.json", { STOKEN_CONFIG: "/b.json" }, all), "/a.json");
  assertEquals(configPath(undefined, { STOKEN_CONFIG: "/b.json" }, all), "/b.json");
  assertEquals(configPath(undefined, {}, all), DEV_CONFIG);
  assertEquals(DEV_CONFIG, "./var/stoken.json");
  assertEquals(configPath(undefined, {}, none), SYSTEM_CONFIG);
  assertEquals(SYSTEM_CONFIG, "/etc/stoken/stoken.json");
  // An empty variable counts as unset.
  assertEquals(configPath(undefined, { STOKEN_CONFIG: "" }, none), SYSTEM_CONFIG);
});

Deno.test("configPath checks ./var/stoken.json relative to the working directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stoken-cfgpath-" });
  const cwd = Deno.cwd();
  try {
    Deno.chdir(dir);
    assertEquals(configPath(undefined, {}), SYSTEM_CONFIG);
    await Deno.mkdir("var");
    await Deno.writeTextFile("var/stoken.json", "{}");
    assertEquals(configPath(undefined, {}), DEV_CONFIG);
  } finally {
    Deno.chdir(cwd);
    await Deno.remove(dir, { recursive: true });
  }
});
