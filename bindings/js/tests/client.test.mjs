// Client from "blindmatch/client", the ready Node client, against a real
// server: a download into the cache, the cache on the next start, a delta to
// version 2, the quorum and the log refusing as the core does, a damaged
// partial download dropped, and the quickstart example in both modes.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { Account, LogPolicy, Quorum, itemFromHex } from "blindmatch";
import { Client } from "blindmatch/client";
import { checkItems, checkUploads, parseItem } from "./quickstart.mjs";
import { TestServer } from "./server.mjs";

const enc = (s) => new TextEncoder().encode(s);
const scratch = () => mkdtempSync(join(tmpdir(), "blindmatch-client-"));
let server;
before(() => {
  server = new TestServer();
});
after(() => server?.stop());

const url = () => `http://${server.target}`;
const org = (s, n) => readFileSync(join(s.dir, `org-${n}.sign.pub`), "utf8").trim();

test("the quorum and the log refuse as the core does", async () => {
  const below = new Client(url(), server.operatorHex, { quorum: new Quorum(["a", "b", "c"].map((n) => org(server, n)), 3) });
  await assert.rejects(below.refresh(), (e) => e.name === "BlindmatchError" && e.kind === "Quorum" && /3 required/.test(e.message));
  assert.equal(below.manifest, undefined);
  below.close();
  const logged = LogPolicy.parse(readFileSync(join(server.dir, "log.policy"), "utf8"));
  const enough = new Client(url(), server.operatorHex, { quorum: new Quorum([org(server, "a"), org(server, "b")], 2), logPolicy: logged });
  await enough.refresh();
  assert.deepEqual(enough.manifest.cosigners, ["Hotline a", "Hotline b"]);
  assert.equal(enough.manifest.logSize, 2);
  enough.close();
  const other = LogPolicy.parse(readFileSync(join(server.dir, "log-other.policy"), "utf8"));
  const wrong = new Client(url(), server.operatorHex, { logPolicy: other });
  await assert.rejects(wrong.refresh(), (e) => e.kind === "Log");
  wrong.close();
});

test("another operator key is refused with the core's message", async () => {
  const client = new Client(url(), org(server, "a"));
  await assert.rejects(client.refresh(), (e) => e.kind === "BadSignature" && e.message === "manifest signature does not verify under the pinned operator key");
  client.close();
});

test("a url without a scheme is refused", () => {
  assert.throws(() => new Client(server.target, server.operatorHex), /expected http:\/\/HOST:PORT or https:\/\/HOST:PORT/);
});

test("a damaged partial download is dropped, and the next refresh downloads", async () => {
  const cacheDir = scratch();
  const first = new Client(url(), server.operatorHex, { cacheDir });
  await first.refresh();
  const id = Buffer.from(first.manifest.tableId).toString("hex");
  first.close();
  const dir = join(cacheDir, server.operatorHex);
  for (const f of readdirSync(dir)) if (f.startsWith("table-")) rmSync(join(dir, f));
  writeFileSync(join(dir, `table-${id}.part`), new Uint8Array(32 * 4096).fill(1));
  const client = new Client(url(), server.operatorHex, { cacheDir });
  await assert.rejects(client.refresh(), (e) => e.kind === "Invalid");
  assert.ok(!existsSync(join(dir, `table-${id}.part`)));
  assert.equal((await client.refresh()).how, "download");
  client.close();
});

test("the quickstart example runs as written", async () => {
  const [type, value] = server.listed()[0];
  const items = [parseItem(`${type}:${value}:quickstart-js`), parseItem(`sha256:${"ab".repeat(32)}`)];
  assert.equal(await checkItems(url(), server.operatorHex, scratch(), items), 2);
  const seen = server.matches(1).map((m) => [m.associated_data, m.item_hex]);
  assert.ok(seen.some(([ad, hex]) => ad === "quickstart-js" && hex === value));
});

// Last: it publishes version 2.
test("check records exactly the listed items, then the cache, then a delta", async () => {
  const cacheDir = scratch();
  const listed = server.listed();
  const items = listed.map(([type, hex], i) => ({ type, value: itemFromHex(type, hex), associatedData: enc(`client-${i}`) }));
  for (let i = 0; i < 70; i++) {
    items.push({ type: "sha256", value: createHash("sha256").update(`no-${i}`).digest() });
  }
  const client = new Client(url(), server.operatorHex, { cacheDir });
  assert.deepEqual(await client.refresh(), { version: 1, how: "download" });
  assert.equal(await client.check(items), items.length); // more than one batch of 64
  assert.equal((await client.refresh()).how, "held");
  client.close();
  const ours = server.matches(listed.length + 1).filter((m) => m.associated_data.startsWith("client-"));
  assert.deepEqual(
    ours.map((m) => [m.item_type, m.item_hex, m.associated_data]).sort(),
    listed.map(([t, h], i) => [t, h, `client-${i}`]).sort(),
  );
  const next = new Client(url(), server.operatorHex, { cacheDir });
  assert.deepEqual(await next.refresh(), { version: 1, how: "cached" });
  server.publish();
  let refreshed;
  for (let i = 0; i < 100; i++) {
    refreshed = await next.refresh();
    if (refreshed.version === 2) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(refreshed, { version: 2, how: "delta" });
  next.close();
  const tables = readdirSync(join(cacheDir, server.operatorHex)).filter((f) => f.startsWith("table-"));
  assert.equal(tables.length, 1);
});

test("after a restart the cached table is the delta base, and one version is kept", async () => {
  const own = new TestServer();
  try {
    const cacheDir = scratch();
    const first = new Client(`http://${own.target}`, own.operatorHex, { cacheDir });
    assert.equal((await first.refresh()).how, "download");
    first.close();
    own.publish();
    let refreshed;
    for (let i = 0; i < 100; i++) {
      const client = new Client(`http://${own.target}`, own.operatorHex, { cacheDir });
      refreshed = await client.refresh();
      client.close();
      if (refreshed.version === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(refreshed, { version: 2, how: "delta" });
    const tables = readdirSync(join(cacheDir, own.operatorHex)).filter((f) => f.startsWith("table-"));
    assert.equal(tables.length, 1);
  } finally {
    own.stop();
  }
});
