// A real server from bindings/testkit/server.sh, in a scratch directory;
// and the testkit's server addresses every ready client accepts or refuses.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ROOT = process.env.BLINDMATCH_ROOT;
if (!ROOT) throw new Error("BLINDMATCH_ROOT is not set (bindings/js/test.sh sets it)");
const script = join(ROOT, "bindings/testkit/server.sh");

export class TestServer {
  /** `threshold`: "T:S" for a table in threshold mode. */
  constructor(serveArgs = "", threshold = "") {
    this.dir = mkdtempSync(join(tmpdir(), "blindmatch-js-"));
    this.env = { ...process.env, BLINDMATCH_SERVE_ARGS: serveArgs, BLINDMATCH_THRESHOLD: threshold };
    this.run("start");
    this.target = readFileSync(join(this.dir, "url"), "utf8").trim().replace(/^http:\/\//, "");
    this.operatorHex = readFileSync(join(this.dir, "operator.sign.pub"), "utf8").trim();
  }
  run(cmd, ...args) {
    const options = { stdio: ["ignore", "pipe", "inherit"], env: this.env };
    return execFileSync(script, [cmd, this.dir, ...args], options).toString();
  }
  /** The listed test items, as [type, hex]. */
  listed(name = "listed.txt") {
    return readFileSync(join(this.dir, name), "utf8").split("\n").filter(Boolean).map((l) => l.split(" "));
  }
  publish() {
    this.run("publish");
  }
  /** The recorded matches, once `n` are in. */
  matches(n) {
    return JSON.parse(this.run("matches", String(n)));
  }
  /** The accounts with candidates (threshold mode), once `n` are in. */
  accounts(n) {
    return JSON.parse(this.run("accounts", String(n)));
  }
  stop() {
    this.run("stop");
  }
}

/**
 * bindings/testkit/urls.txt as [verdict, url] ("ok" or "refuse"), `\s` and
 * `\t` in a url turned to a space and a tab.
 */
export function urlCases() {
  const lines = readFileSync(join(ROOT, "bindings/testkit/urls.txt"), "utf8").split("\n");
  const cases = lines
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => {
      const m = /^(ok|refuse) (.+)$/.exec(l);
      if (!m) throw new Error(`bindings/testkit/urls.txt: not \`ok URL\` or \`refuse URL\`: ${JSON.stringify(l)}`);
      return [m[1], m[2].replaceAll("\\s", " ").replaceAll("\\t", "\t")];
    });
  if (cases.length === 0) throw new Error("bindings/testkit/urls.txt holds no cases");
  return cases;
}
