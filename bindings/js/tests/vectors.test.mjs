// What the JavaScript binding reproduces of protocol/vectors/blindmatch-v1.json,
// and how it refuses bad input: a BlindmatchError with a kind, never a crash.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { Backoff, DeltaDownload, History, Manifest, OperatorKey, Table, TableDownload, itemFromHex, tableIdOf } from "blindmatch";
import { ROOT } from "./server.mjs";

const v = JSON.parse(readFileSync(join(ROOT, "protocol/vectors/blindmatch-v1.json"), "utf8"));
const h = (s) => Uint8Array.from(Buffer.from(s, "hex"));
const kind = (k) => (e) => e.name === "BlindmatchError" && e.kind === k;
const m = v.lifecycle.manifest;
const operator = OperatorKey.fromHex(m.verifying_key);
const manifest = Manifest.verify(h(m.statement), h(m.signature), operator);
const v1Bytes = h(v.table.header + v.table.slots.join(""));

test("manifest signature and statement", () => {
  assert.equal(manifest.version, 2);
  assert.equal(manifest.created, m.created);
  assert.deepEqual(manifest.tableId, h(v.lifecycle.update.table_id));
  assert.deepEqual(manifest.digest, h(v.lifecycle.update.digest));
  assert.deepEqual(manifest.statement, h(m.statement));
  assert.equal(manifest.k, v.table.k);
  assert.equal(manifest.nSlots, v.table.n_slots);
  const tampered = h(m.statement);
  tampered[12] ^= 1;
  assert.throws(() => Manifest.verify(tampered, h(m.signature), operator), kind("BadSignature"));
  const other = OperatorKey.fromHex("58" + "66".repeat(31));
  assert.throws(() => Manifest.verify(h(m.statement), h(m.signature), other), kind("BadSignature"));
});

test("table id and the delta to version 2", () => {
  assert.deepEqual(tableIdOf(v1Bytes), h(v.table.table_id));
  const held = Table.openUnverified(v1Bytes);
  const delta = new DeltaDownload(held, manifest);
  for (const d of v.lifecycle.update.delta) {
    const index = new Uint8Array(4);
    new DataView(index.buffer).setUint32(0, d.slot);
    delta.push(index, h(d.after));
  }
  const v2 = delta.finish(held);
  assert.deepEqual(v2.tableId, h(v.lifecycle.update.table_id));
  assert.deepEqual(Table.open(v2.encode(), manifest).tableId, v2.tableId);
  assert.equal(v2.voucherLen, 1 + 32 + 3 * 80 + 1108);
});

test("bad input throws typed errors", () => {
  assert.throws(() => OperatorKey.fromHex("not hex"), kind("Input"));
  assert.throws(() => itemFromHex("sha256", "ab".repeat(31)), kind("Input"));
  assert.throws(() => itemFromHex("sha512", "ab".repeat(64)), kind("Input"));
  assert.throws(() => History.restore(operator, new Uint8Array(40).fill(1)), kind("History"));
  const table = Table.openUnverified(v1Bytes);
  const batch = table.batch();
  assert.throws(() => batch.add("md5", new Uint8Array(15), new Uint8Array()), kind("Input"));
  batch.add("bytes", new Uint8Array([1]), new Uint8Array(1024));
  const s = table.submission(batch);
  assert.equal(s.vouchers.length, 1);
  assert.equal(s.vouchers[0].length, table.voucherLen);
  assert.equal(s.id.length, 16);
  assert.equal(s.digest.length, 32);
  const tooLong = table.batch();
  tooLong.add("bytes", new Uint8Array([1]), new Uint8Array(1025));
  assert.throws(() => table.submission(tooLong), kind("Input"));
  assert.throws(() => Table.open(new Uint8Array(3), manifest), kind("Invalid"));

  const download = new TableDownload(manifest);
  assert.throws(() => download.push(0, new Uint8Array(32 * 16), []), kind("Invalid"));
  assert.throws(() => download.push(0, new Uint8Array(32 * 16), [new Uint8Array(31)]), kind("Malformed"));
  assert.throws(() => download.push(-1, new Uint8Array(32 * 16), []), kind("Malformed"));
  assert.equal(download.offset, 0);
  assert.throws(() => download.finish(), kind("Invalid"));
  assert.throws(() => download.offset, kind("State"));
});

test("backoff rule", () => {
  const b = new Backoff(3, 100);
  const first = b.retry(14, undefined);
  assert.ok(first >= 100 && first <= 125, String(first));
  assert.equal(b.retry(8, undefined), undefined);
  const hinted = b.retry(8, "700");
  assert.ok(hinted >= 700 && hinted <= 875, String(hinted));
  assert.equal(b.retry(14, undefined), undefined);
});
