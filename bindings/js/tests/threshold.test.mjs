// Threshold mode through the JavaScript binding (WebAssembly in Node),
// against a real server whose table has t = 3 and s = 2: an account below t
// leaves candidates and nothing else, one that reaches t has its matches
// revealed with their associated data, and each mode refuses the other's
// submission (the ready client throws that Mode error as it is, not as
// Incomplete: no Submit was sent).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { Account, History, OperatorKey, itemFromHex } from "blindmatch";
import { Client, Incomplete } from "blindmatch/client";
import { connect, fetchTable, submit } from "./check.mjs";
import { checkUploads } from "./quickstart.mjs";
import { ROOT, TestServer } from "./server.mjs";

const proto = join(ROOT, "proto/proto/blindmatch/v1/blindmatch.proto");
const enc = (s) => new TextEncoder().encode(s);
const voucherId = (name) => new Uint8Array(createHash("sha256").update(name).digest().subarray(0, 16));
let server, clients;

before(() => {
  server = new TestServer("", "3:2");
  clients = connect(proto, server.target);
});
after(() => {
  clients?.tables.close();
  clients?.vouchers.close();
  server?.stop();
});

test("an account reveals its matches only at t", async () => {
  const operator = OperatorKey.fromHex(server.operatorHex);
  const { manifest, maxBatch, table } = await fetchTable(clients, new History(operator));
  assert.equal(manifest.threshold, 3);
  const listed = server.listed();
  // No synthetic vouchers, so the counts below are exact.
  const below = Account.generate(enc("js-below"), 0);
  const above = Account.decode(Account.generate(enc("js-above"), 0).encode());
  assert.deepEqual(above.accountId, enc("js-above"));
  const up = (name, [t, v], ad) => [voucherId(name), t, itemFromHex(t, v), enc(ad)];
  const unlisted = [0, 1, 2].map((i) => up(`u${i}`, ["sha256", createHash("sha256").update(`no-${i}`).digest("hex")], "x"));
  const two = listed.slice(0, 2).map((it, i) => up(`b${i}`, it, `below-${i}`));
  assert.equal(await submit(clients, table, [...two, ...unlisted], maxBatch, below), 5);
  const four = listed.slice(0, 4).map((it, i) => up(`a${i}`, it, `above-${i}`));
  // Sent twice: the same voucher ids count once.
  assert.equal(await submit(clients, table, four.slice(0, 2), maxBatch, above), 2);
  assert.equal(await submit(clients, table, four, maxBatch, above), 4);

  const got = server.matches(4).map((m) => m.associated_data).sort();
  assert.deepEqual(got, ["above-0", "above-1", "above-2", "above-3"]);
  const accounts = Object.fromEntries(server.accounts(2).map((a) => [a.account_hex, a]));
  const hex = (s) => Buffer.from(s).toString("hex");
  assert.equal(accounts[hex("js-below")].unrevealed, 2);
  assert.equal(accounts[hex("js-below")].real, 0);
  assert.equal(accounts[hex("js-above")].real, 4);

  // Each mode refuses the other's submission; bad input is named.
  const batch = table.batch();
  batch.add("sha256", new Uint8Array(32), enc(""));
  assert.throws(() => table.submission(batch), (e) => e.name === "BlindmatchError" && e.kind === "Mode" && e.threshold === 3);
  assert.throws(() => table.accountBatch().add(new Uint8Array(15), "sha256", new Uint8Array(32), enc("")), (e) => e.kind === "Input");
  const damaged = above.encode();
  damaged[0] ^= 1;
  assert.throws(() => Account.decode(damaged), (e) => e.kind === "Account");
  assert.throws(() => Account.generate(enc("u"), 1.5), (e) => e.kind === "Account");
});

test("the ready client in threshold mode (quickstart's checkUploads)", async () => {
  const account = Account.generate(enc("js-client"), 0);
  const three = server.listed().slice(0, 3).map(([type, hex], i) => ({
    voucherId: voucherId(`client-${i}`),
    type,
    value: itemFromHex(type, hex),
    associatedData: enc(`client-${i}`),
  }));
  assert.equal(await checkUploads(`http://${server.target}`, server.operatorHex, undefined, account, three), 3);
  // Other tests' accounts are there too: wait for this one's reveal.
  let mine;
  for (let i = 0; i < 100; i++) {
    mine = server.accounts(1).find((a) => a.account_hex === Buffer.from("js-client").toString("hex"));
    if (mine?.real === 3) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual([mine?.real, mine?.unrevealed], [3, 0]);
});

test("check() against a threshold table throws the core's Mode error, not Incomplete", async () => {
  const client = new Client(`http://${server.target}`, server.operatorHex);
  try {
    const items = server.listed().slice(0, 2).map(([type, hex]) => ({ type, value: itemFromHex(type, hex) }));
    await assert.rejects(client.check(items), (e) => {
      assert.ok(!(e instanceof Incomplete), e.stack);
      assert.equal(e.name, "BlindmatchError");
      assert.equal(e.kind, "Mode");
      assert.equal(e.threshold, 3);
      return true;
    });
  } finally {
    client.close();
  }
});
