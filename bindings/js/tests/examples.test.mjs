// The examples as a user runs them: each file copied into a scratch npm
// project that has only the blindmatch package installed
// (BLINDMATCH_EXAMPLES, made by test.sh), run with `node FILE ARGS`
// against a real server, its output checked.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, statSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { TestServer } from "./server.mjs";

const dir = process.env.BLINDMATCH_EXAMPLES;
if (!dir) throw new Error("BLINDMATCH_EXAMPLES is not set (bindings/js/test.sh sets it)");
const run = (file, ...args) => promisify(execFile)("node", [file, ...args], { cwd: dir });
const sha = (s) => createHash("sha256").update(s).digest("hex");
const scratch = () => mkdtempSync(join(tmpdir(), "blindmatch-example-"));

let v1, threshold;
before(() => {
  v1 = new TestServer();
  threshold = new TestServer("", "3:2");
});
after(() => {
  v1?.stop();
  threshold?.stop();
});

test("quickstart.mjs: version 1", async () => {
  const [type, value] = v1.listed()[0];
  const { stdout } = await run("quickstart.mjs", `http://${v1.target}`, v1.operatorHex, scratch(), `${type}:${value}:example-quickstart`, `sha256:${sha("not listed")}`);
  assert.equal(stdout, "2 vouchers acknowledged\n");
  assert.ok(v1.matches(1).some((m) => m.associated_data === "example-quickstart"));
  // Another operator key: refused, exit status 1.
  const other = await run("quickstart.mjs", `http://${v1.target}`, threshold.operatorHex, scratch(), `sha256:${sha("x")}`).catch((e) => e);
  assert.equal(other.code, 1);
  assert.equal(other.stderr, "refused (BadSignature): manifest signature does not verify under the pinned operator key\n");
});

test("an example runs from a path that needs percent-encoding in a URL", async () => {
  // A space and a % in the directory: import.meta.url has %20 and %25.
  const odd = join(dir, "my examples 100%");
  mkdirSync(odd, { recursive: true });
  for (const f of ["quickstart.mjs", "refused.mjs", "threshold.mjs"]) copyFileSync(join(dir, f), join(odd, f));
  const { stdout } = await run(join(odd, "quickstart.mjs"), `http://${v1.target}`, v1.operatorHex, scratch(), `sha256:${sha("odd path")}`);
  assert.equal(stdout, "1 vouchers acknowledged\n");
  // The others' guards too.
  const wrong = await run(join(odd, "threshold.mjs"), `http://${v1.target}`, v1.operatorHex, scratch(), join(scratch(), "a"), "x", "10", `p=sha256:${sha("x")}`).catch((e) => e);
  assert.equal(wrong.stderr, "the table is version 1 (no threshold): use quickstart.mjs\n");
  assert.equal((await run(join(odd, "refused.mjs"), `http://${v1.target}`, v1.operatorHex, "10")).stdout, "done: 0 items not submitted\n");
});

test("threshold.mjs: an account made once, its rate from the synthetic bound", async () => {
  const cache = scratch();
  const accountFile = join(scratch(), "account.secret");
  const uploads = threshold.listed().slice(0, 3).map(([type, hex], i) => `photo-${i}=${type}:${hex}:example-threshold-${i}`);
  const args = [`http://${threshold.target}`, threshold.operatorHex, cache, accountFile, "example-account", "1000"];
  const first = await run("threshold.mjs", ...args, ...uploads);
  assert.equal(first.stdout, "table version 1: threshold 3, synthetic bound 2; account made and saved\n3 vouchers acknowledged\n");
  assert.equal(statSync(accountFile).mode & 0o777, 0o600);
  const again = await run("threshold.mjs", ...args, uploads[0]);
  assert.equal(again.stdout, "table version 1: threshold 3, synthetic bound 2; account read\n1 vouchers acknowledged\n");
  const hex = Buffer.from("example-account").toString("hex");
  let mine;
  for (let i = 0; i < 50 && !mine; i++) mine = threshold.accounts(1).find((a) => a.account_hex === hex);
  assert.ok(mine, "the server holds the account's candidates");
  // A version-1 table has no synthetic bound: the example says so.
  const wrong = await run("threshold.mjs", `http://${v1.target}`, v1.operatorHex, scratch(), join(scratch(), "a"), "x", "10", uploads[0]).catch((e) => e);
  assert.equal(wrong.code, 2);
  assert.equal(wrong.stderr, "the table is version 1 (no threshold): use quickstart.mjs\n");
});

test("refused.mjs: another server's table is refused; the app keeps its table and its queue", async () => {
  // A loopback proxy the test turns from the right server to another
  // operator's (threshold, with its own key), and back.
  let upstream = v1.target;
  const sockets = new Set();
  const proxy = createServer((down) => {
    const [host, port] = upstream.split(":");
    const up = connect(Number(port), host);
    for (const s of [down, up]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => (sockets.delete(s), down.destroy(), up.destroy()));
    }
    down.pipe(up).pipe(down);
  });
  await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
  const turn = (target) => {
    upstream = target;
    for (const s of sockets) s.destroy();
  };
  const items = v1.listed().slice(1, 4).map(([type, hex], i) => `${type}:${hex}:example-refused-${i}`);
  const child = spawn("node", ["refused.mjs", `http://127.0.0.1:${proxy.address().port}`, v1.operatorHex, "1000", ...items], { cwd: dir });
  const lines = [];
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  let buffered = "";
  child.stdout.on("data", (d) => {
    buffered += d;
    for (let at; (at = buffered.indexOf("\n")) >= 0; buffered = buffered.slice(at + 1)) {
      const line = buffered.slice(0, at);
      lines.push(line);
      if (line === "round 1: 1 vouchers acknowledged") turn(threshold.target);
      if (line.startsWith("round 2: 0 acknowledged")) turn(v1.target);
    }
  });
  const code = await new Promise((r) => child.on("close", r));
  proxy.close();
  assert.equal(code, 0, stderr);
  assert.deepEqual(lines, [
    "round 1: table version 1 (download)",
    "round 1: 1 vouchers acknowledged",
    "round 2: ALERT: table refused (BadSignature): manifest signature does not verify under the pinned operator key",
    "round 2: checking with the table held, version 1",
    "round 2: 0 acknowledged, 1 queued again (BlindmatchError: BadSignature)",
    "round 3: table version 1 (held)",
    "round 3: 2 vouchers acknowledged",
    "done: 0 items not submitted",
  ]);
  // Each item recorded once, by the right server.
  const recorded = v1.matches(3).map((m) => m.associated_data).filter((a) => a.startsWith("example-refused-"));
  assert.deepEqual(recorded.sort(), ["example-refused-0", "example-refused-1", "example-refused-2"]);
});
