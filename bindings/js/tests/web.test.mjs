// Client from "blindmatch/web", the ready browser client, run in Node
// (whose fetch Connect's gRPC-Web transport uses) against a real server with
// gRPC-Web on: a download, the app's store giving the table to the next
// client and keeping a partial download, a delta, a table that changes
// mid-check, strict urls, a transport from the app, and Incomplete when the
// server stops. browser/test.sh runs it in Chromium too.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, test } from "node:test";

import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { itemFromHex } from "blindmatch";
import { Client, Incomplete } from "blindmatch/web";
import { TestServer } from "./server.mjs";

const enc = (s) => new TextEncoder().encode(s);
let server;
before(() => {
  // Node's fetch sends no Origin; the server needs an origin to turn gRPC-Web on.
  server = new TestServer("--grpc-web-origin http://127.0.0.1:9 --grace 0s");
});
after(() => server?.stop());
const url = () => `http://${server.target}`;

/** A store as an app would make over IndexedDB: here a Map, with what was written counted. */
function mapStore() {
  const map = new Map();
  const puts = [];
  return {
    map,
    puts,
    get: async (name) => map.get(name),
    put: async (name, bytes) => {
      puts.push([name, bytes.length]);
      map.set(name, new Uint8Array(bytes));
    },
    remove: async (name) => void map.delete(name),
  };
}

test("urls are checked as the Node client checks them; a transport from the app", async () => {
  assert.throws(() => new Client(`${url()}/`, server.operatorHex), (e) => e instanceof TypeError && /no path/.test(e.message));
  assert.throws(() => new Client(server.target, server.operatorHex), TypeError);
  const headers = [];
  const transport = createGrpcWebTransport({
    baseUrl: url(),
    interceptors: [(next) => async (req) => (headers.push(req.url), req.header.set("x-app", "authenticated"), next(req))],
  });
  assert.throws(() => new Client(url(), server.operatorHex, { transport }), /give one or the other/);
  const client = new Client(null, server.operatorHex, { transport });
  assert.equal((await client.refresh()).version, 1);
  assert.ok(headers.some((u) => u.endsWith("/blindmatch.v1.TableService/GetManifest")));
});

// Last but one: it publishes version 2.
test("download, the store, check, then a table that changes mid-check, then a delta", async () => {
  const store = mapStore();
  const listed = server.listed();
  const first = new Client(url(), server.operatorHex, { store });
  assert.deepEqual(await first.refresh(), { version: 1, how: "download", deltaRefused: undefined });
  const prefix = `${server.operatorHex}/`;
  const names = [...store.map.keys()].map((k) => (assert.ok(k.startsWith(prefix)), k.slice(prefix.length)));
  assert.deepEqual(names.map((n) => n.replace(/[0-9a-f]{64}/, "ID")).sort(), ["history", "table-ID"]);
  const items = listed.map(([type, hex], i) => ({ type, value: itemFromHex(type, hex), associatedData: enc(`web-${i}`) }));
  assert.equal(await first.check(items), items.length);
  const recorded = server.matches(listed.length).filter((m) => m.associated_data.startsWith("web-"));
  assert.deepEqual(recorded.map((m) => m.associated_data).sort(), listed.map((_, i) => `web-${i}`).sort());

  // A page loaded again: the table from the store. Another page, without
  // a store, downloads.
  const second = new Client(url(), server.operatorHex, { store });
  assert.deepEqual(await second.refresh(), { version: 1, how: "cached", deltaRefused: undefined });
  const third = new Client(url(), server.operatorHex);
  assert.deepEqual(await third.refresh(), { version: 1, how: "download", deltaRefused: undefined });
  // The server moves to version 2 (no grace period): the first Submit is
  // refused, and the client refreshes and submits again.
  server.publish();
  await new Promise((r) => setTimeout(r, 1500));
  const more = [{ type: "sha256", value: createHash("sha256").update("web-unlisted").digest() }];
  assert.equal(await second.check(more), 1);
  assert.equal(second.manifest.version, 2);
  assert.equal(second.manifest.syntheticBound, undefined);
  // One table kept in the store, the new one, which the first client (the
  // same store: another tab) now finds there.
  assert.equal([...store.map.keys()].filter((k) => k.includes("/table-")).length, 1);
  assert.deepEqual(await first.refresh(), { version: 2, how: "cached", deltaRefused: undefined });
  // The third, with version 1 in memory, takes the delta.
  assert.deepEqual(await third.refresh(), { version: 2, how: "delta", deltaRefused: undefined });
});

test("a server that stops mid-check: Incomplete, and the error is the server's status", async () => {
  const own = new TestServer("--grpc-web-origin http://127.0.0.1:9");
  let submits = 0;
  const transport = createGrpcWebTransport({
    baseUrl: `http://${own.target}`,
    interceptors: [(next) => async (req) => (req.method.name === "Submit" && ++submits === 2 && own.stop(), next(req))],
  });
  try {
    const client = new Client(null, own.operatorHex, { transport, attempts: 2, firstDelayMs: 10 });
    await client.refresh();
    const items = Array.from({ length: 100 }, (_, i) => ({ type: "sha256", value: createHash("sha256").update(`w-${i}`).digest() }));
    await assert.rejects(client.check(items), (e) => {
      assert.ok(e instanceof Incomplete, e.stack);
      assert.equal(e.acknowledged, 64);
      assert.equal(e.remaining.length, 36);
      assert.equal(e.cause.name, "ConnectError");
      assert.match(e.message, /^64 of 100 acknowledged; the rest failed: /);
      return true;
    });
  } finally {
    own.stop();
  }
});
