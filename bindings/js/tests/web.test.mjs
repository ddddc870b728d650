// Client from "blindmatch/web", the ready browser client, run in Node
// (whose fetch Connect's gRPC-Web transport uses) against a real server with
// gRPC-Web on: a download, the app's store giving the table to the next
// client and keeping a partial download, a delta, a table that changes
// mid-check, stale partial downloads removed from a store that lists,
// strict urls (bindings/testkit/urls.txt), a transport from the app, and
// Incomplete when the server stops or refuses, worded as every client
// words it. browser/test.sh runs the page in Chromium.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, test } from "node:test";

import { Code, ConnectError } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { itemFromHex } from "blindmatch";
import { Client, Incomplete } from "blindmatch/web";
import { TestServer, urlCases } from "./server.mjs";

const enc = (s) => new TextEncoder().encode(s);
let server;
before(() => {
  // Node's fetch sends no Origin; the server needs an origin to turn gRPC-Web on.
  server = new TestServer("--grpc-web-origin http://127.0.0.1:9 --grace 0s");
});
after(() => server?.stop());
const url = () => `http://${server.target}`;

/** A store as an app would make over IndexedDB: here a Map, with what was written counted; with `list()` if `listing`. */
function mapStore({ listing = false } = {}) {
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
    ...(listing && { list: async () => [...map.keys()] }),
  };
}

/** Refreshes a client of its own until the server serves `version` (a reload after SIGHUP), at most about 10 s. */
async function untilVersion(version) {
  const probe = new Client(url(), server.operatorHex);
  for (let i = 0; i < 100; i++) {
    if ((await probe.refresh()).version === version) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the server did not reach version ${version} in 10 s`);
}

test("urls: what bindings/testkit/urls.txt accepts and refuses; a transport from the app", async () => {
  for (const [verdict, u] of urlCases()) {
    if (verdict === "ok") {
      new Client(u, server.operatorHex).close();
    } else {
      assert.throws(
        () => new Client(u, server.operatorHex),
        (e) => e instanceof TypeError && e.message.startsWith(`url ${JSON.stringify(u)}: `),
        JSON.stringify(u),
      );
    }
  }
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

// It publishes version 2: the tests after it take either version.
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
  await untilVersion(2);
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

test("a store with list(): partial downloads of other tables are removed after a refresh; one without keeps them", async () => {
  const stale = `${server.operatorHex}/table-${"ab".repeat(32)}.part`;
  const other = `${"cd".repeat(32)}/table-${"ef".repeat(32)}.part`; // another operator's
  const listing = mapStore({ listing: true });
  const plain = mapStore();
  for (const store of [listing, plain]) {
    store.map.set(stale, new Uint8Array(64).fill(1));
    store.map.set(other, new Uint8Array(64).fill(1));
    const client = new Client(url(), server.operatorHex, { store });
    assert.ok((await client.refresh()).version >= 1);
  }
  assert.ok(!listing.map.has(stale));
  assert.ok(listing.map.has(other));
  assert.ok(plain.map.has(stale));
  const parts = (store) => [...store.map.keys()].filter((k) => k.endsWith(".part"));
  assert.deepEqual(parts(listing), [other]);
  assert.deepEqual(parts(plain).sort(), [other, stale].sort());
});

test("a Submit refused twice (FAILED_PRECONDITION): Incomplete names the status as every client does", async () => {
  const transport = createGrpcWebTransport({
    baseUrl: url(),
    interceptors: [
      (next) => async (req) => {
        if (req.method.name === "Submit") throw new ConnectError("not the current table (test)", Code.FailedPrecondition);
        return next(req);
      },
    ],
  });
  const client = new Client(null, server.operatorHex, { transport });
  await client.refresh();
  const items = Array.from({ length: 3 }, (_, i) => ({ type: "sha256", value: createHash("sha256").update(`fp-${i}`).digest() }));
  await assert.rejects(client.check(items), (e) => {
    assert.ok(e instanceof Incomplete, e.stack);
    assert.equal(e.message, "0 of 3 acknowledged; the rest failed: FAILED_PRECONDITION: not the current table (test)");
    return true;
  });
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
      assert.ok(e.message.startsWith("64 of 100 acknowledged; the rest failed: UNAVAILABLE: "), e.message);
      return true;
    });
  } finally {
    own.stop();
  }
});
