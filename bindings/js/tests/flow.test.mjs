// The JavaScript binding (WebAssembly in Node) against a real server: the
// vouchers it makes are opened by the Rust matcher, listed items are
// recorded with their associated data and unlisted ones never are, a retry
// is stored once, and a delta brings a held table to version 2.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { DeltaDownload, History, LogPolicy, Manifest, OperatorKey, Quorum, itemFromHex } from "blindmatch";
import { connect, fetchTable, submit } from "./check.mjs";
import { ROOT, TestServer } from "./server.mjs";

const proto = join(ROOT, "proto/proto/blindmatch/v1/blindmatch.proto");
const enc = (s) => new TextEncoder().encode(s);
let server, clients;

before(() => {
  server = new TestServer();
  clients = connect(proto, server.target);
});
after(() => {
  clients?.tables.close();
  clients?.vouchers.close();
  server?.stop();
});

// SPEC 15.6: hotlines a and b audited version 1 with blindmatch-audit and
// co-signed it; c did not. (Before the test below publishes version 2.)
test("a quorum of pinned organisations must have co-signed", async () => {
  const operator = OperatorKey.fromHex(server.operatorHex);
  const org = (n) => readFileSync(join(server.dir, `org-${n}.sign.pub`), "utf8").trim();
  const response = await new Promise((ok, no) =>
    clients.tables.GetManifest({}, (e, r) => (e ? no(e) : ok(r))),
  );
  const manifest = Manifest.verify(response.statement, response.signature, operator);
  const audited = manifest.requireQuorum(new Quorum([org("a"), org("b")], 2), response.cosignatures);
  assert.deepEqual(audited.cosigners, ["Hotline a", "Hotline b"]);
  assert.throws(
    () => manifest.requireQuorum(new Quorum([org("a"), org("b"), org("c")], 3), response.cosignatures),
    (e) => e.kind === "Quorum" && e.found === 2 && e.required === 3 && e.message.includes("(Hotline a, Hotline b), 3 required"),
  );
  assert.throws(() => new Quorum([org("a"), org("a")], 2), (e) => e.kind === "Input");
});

// SPEC 16.6: the server logs versions 1 and 2 (no witnesses).
test("the manifest must be in the operator's transparency log", async () => {
  const operator = OperatorKey.fromHex(server.operatorHex);
  const policy = LogPolicy.parse(readFileSync(join(server.dir, "log.policy"), "utf8"));
  const other = LogPolicy.parse(readFileSync(join(server.dir, "log-other.policy"), "utf8"));
  const history = new History(operator);
  const response = await new Promise((ok, no) =>
    clients.tables.GetManifest({ logSize: history.logSize }, (e, r) => (e ? no(e) : ok(r))),
  );
  const manifest = Manifest.verify(response.statement, response.signature, operator);
  const logged = manifest.requireLogged(policy, response.logProof, response.logConsistency, response.cosignatures);
  assert.equal(logged.logSize, 2);
  assert.deepEqual(logged.logWitnesses, []);
  history.record(history.check(logged));
  assert.equal(history.logSize, 2);
  assert.throws(
    () => manifest.requireLogged(other, response.logProof, [], response.cosignatures),
    (e) => e.kind === "Log" && e.message.includes("no valid signature by the pinned log key"),
  );
  assert.throws(
    () => manifest.requireLogged(policy, "", [], response.cosignatures),
    (e) => e.kind === "Log" && e.message.includes("no log proof"),
  );
  assert.throws(() => history.check(manifest), (e) => e.kind === "Log");
});

test("listed items are recorded with their data, unlisted never, a delta reaches version 2", async () => {
  const operator = OperatorKey.fromHex(server.operatorHex);
  const history = new History(operator);
  const v1 = await fetchTable(clients, history);
  assert.equal(v1.manifest.version, 1);
  assert.equal(v1.maxBatch, 64);
  const listed = server.listed();
  const items = listed.map(([t, v], i) => [t, itemFromHex(t, v), enc(`js-${i}`)]);
  for (let i = 0; i < 70; i++) {
    const hex = createHash("sha256").update(`unlisted-${i}`).digest("hex");
    items.push(["sha256", itemFromHex("sha256", hex), enc("no")]);
  }
  assert.equal(await submit(clients, v1.table, items, v1.maxBatch), items.length);
  const got = server.matches(listed.length).map((m) => [m.item_hex, m.associated_data]).sort();
  const want = listed.map(([, v], i) => [v, `js-${i}`]).sort();
  assert.deepEqual(got, want);

  // A retry under the same id is stored once; another batch under it is refused.
  const batch = v1.table.batch();
  batch.add(listed[0][0], itemFromHex(...listed[0]), enc("twice"));
  const s = v1.table.submission(batch);
  const request = { tableId: s.tableId, vouchers: s.vouchers, submissionId: s.id };
  const call = (r) => new Promise((ok, no) => clients.vouchers.Submit(r, (e, res) => (e ? no(e) : ok(res))));
  assert.equal((await call(request)).accepted, 1);
  assert.equal((await call(request)).accepted, 1);
  const other = v1.table.batch();
  other.add(listed[0][0], itemFromHex(...listed[0]), enc("other"));
  await assert.rejects(call({ ...request, vouchers: v1.table.submission(other).vouchers }), (e) => e.code === 6);

  // Version 2 by a delta from the table held; then version 1 is a rollback.
  server.publish();
  let v2;
  for (let i = 0; i < 100; i++) {
    v2 = await fetchTable(clients, history, v1.table);
    if (v2.manifest.version === 2) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(v2.manifest.version, 2);
  assert.deepEqual(v2.table.tableId, v2.manifest.tableId);
  assert.notEqual(v2.table, v1.table);
  assert.throws(
    () => history.check(v1.manifest),
    (e) =>
      e.name === "BlindmatchError" && e.kind === "Rollback" && e.offered === 1 && e.seen === 2 &&
      // The core's words, as every binding shows them.
      e.message.includes("older than version 2 seen before: refused (rollback)"),
  );
  const [[t, v]] = server.listed("listed-v2.txt");
  assert.equal(await submit(clients, v2.table, [[t, itemFromHex(t, v), enc("js new in v2")]], 64), 1);
  const all = server.matches(listed.length + 2);
  assert.equal(all.filter((m) => m.associated_data === "twice").length, 1);
  assert.equal(all.filter((m) => m.associated_data === "js new in v2").length, 1);
  assert.equal(all.length, listed.length + 2);

  // The delta's own checks: a tampered slot is refused, the table held kept.
  const delta = new DeltaDownload(v1.table, v2.manifest);
  delta.push(new Uint8Array([0, 0, 0, 1]), new Uint8Array(32).fill(7));
  assert.throws(() => delta.finish(v1.table), (e) => e.kind === "Invalid");
  assert.throws(() => delta.finish(v1.table), (e) => e.kind === "State");
  assert.equal(Manifest.verify(v1.manifest.statement, v1.manifest.signature, operator).version, 1);
});
