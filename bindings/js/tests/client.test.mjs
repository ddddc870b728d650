// Client from "blindmatch/client", the ready Node client, against a real
// server: a download into the cache, the cache on the next start, a delta to
// version 2, the quorum and the log refusing as the core does, a damaged
// partial download dropped, strict urls, the cache directory's leftovers,
// a server that moves to another table mid-check (FAILED_PRECONDITION), one
// that dies mid-check (Incomplete), a refused delta, and the quickstart
// example.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import grpc from "@grpc/grpc-js";
import { Account, LogPolicy, Quorum, itemFromHex } from "blindmatch";
import { Client, Incomplete } from "blindmatch/client";
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

test("urls are strict: scheme, host and port only", () => {
  const refused = {
    [server.target]: "the scheme must be http or https",
    "ftp://example.org": "the scheme must be http or https",
    "http://example.org/": "no path",
    "https://example.org/v1": "no path",
    "http://example.org?x=1": "no query",
    "http://example.org#top": "no fragment",
    "http://user@example.org": "no user info",
    "http://example.org:0": "the port must be a number from 1 to 65535",
    "http://example.org:65536": "the port must be a number from 1 to 65535",
    "http://example.org:": "the port must be a number from 1 to 65535",
    "http://example.org:8a": "the port must be a number from 1 to 65535",
    "http://": "no host",
    "http://exa mple.org": "is not a host name or an IPv4 address",
    "http://256.1.1.1": "is not an IPv4 address",
    "http://[::1": "is not closed",
    "http://[example]:80": "is not an IPv6 address",
    "http://[::1]x": "only :PORT may follow",
  };
  for (const [url, why] of Object.entries(refused)) {
    assert.throws(
      () => new Client(url, server.operatorHex),
      (e) => e instanceof TypeError && e.message.startsWith(`url ${JSON.stringify(url)}: `) && e.message.includes(why),
      url,
    );
  }
  for (const url of ["http://127.0.0.1:1", "https://list.example.org", "http://[::1]:8080", "https://a-b.example:443", "http://localhost"]) {
    new Client(url, server.operatorHex).close();
  }
});

test("a channel or interceptors from the app", async () => {
  const channel = new grpc.Channel(server.target, grpc.credentials.createInsecure(), {});
  const seen = [];
  const interceptor = (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        seen.push(options.method_definition.path);
        metadata.set("x-app", "authenticated");
        next(metadata, listener);
      },
    });
  assert.throws(() => new Client(url(), server.operatorHex, { channel }), /give one or the other/);
  const client = new Client(null, server.operatorHex, { channel, interceptors: [interceptor] });
  assert.equal((await client.refresh()).version, 1);
  assert.equal(await client.check([{ type: "sha256", value: new Uint8Array(32).fill(7) }]), 1);
  client.close(); // leaves the app's channel open
  assert.deepEqual(seen.filter((p) => !p.endsWith("DownloadTable")), [
    "/blindmatch.v1.TableService/GetManifest",
    "/blindmatch.v1.VoucherService/Submit",
  ]);
  channel.close();
});

test("leftover temporary files are removed when a client starts", () => {
  const cacheDir = scratch();
  const dir = join(cacheDir, server.operatorHex);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, ".tmp-1234-history"), "left by a crash");
  writeFileSync(join(dir, ".tmp-abcd-table-00"), "left by a crash");
  writeFileSync(join(dir, "history.keep"), "not ours to remove");
  new Client(url(), server.operatorHex, { cacheDir }).close();
  assert.deepEqual(readdirSync(dir), ["history.keep"]);
});

/** An interceptor that makes the status of the server's answers to METHOD CODE. */
function answering(method, code, details) {
  return (options, nextCall) =>
    new grpc.InterceptingCall(
      nextCall(options),
      options.method_definition.path.endsWith(`/${method}`)
        ? {
            start(metadata, listener, next) {
              next(metadata, {
                onReceiveStatus(status, nextStatus) {
                  nextStatus({ ...status, code, details, metadata: new grpc.Metadata() });
                },
              });
            },
          }
        : {},
    );
}
/** An interceptor that runs `fn(method)` as each call starts. */
function onStart(fn) {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        fn(options.method_definition.path.split("/").pop());
        next(metadata, listener);
      },
    });
}
const unlisted = (n, tag) =>
  Array.from({ length: n }, (_, i) => ({ type: "sha256", value: createHash("sha256").update(`${tag}-${i}`).digest() }));
const sleepSync = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

test("a Submit refused twice for one batch (FAILED_PRECONDITION) is Incomplete", async () => {
  const client = new Client(url(), server.operatorHex, {
    interceptors: [answering("Submit", grpc.status.FAILED_PRECONDITION, "not the current table (test)")],
  });
  await client.refresh();
  const items = unlisted(10, "twice");
  await assert.rejects(client.check(items), (e) => {
    assert.ok(e instanceof Incomplete);
    assert.equal(e.acknowledged, 0);
    assert.deepEqual(e.remaining, items);
    assert.equal(e.cause.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(e.message, "0 of 10 acknowledged; the rest failed: 9 FAILED_PRECONDITION: not the current table (test)");
    return true;
  });
  client.close();
});

test("a server that stops mid-check: Incomplete says what was acknowledged", async () => {
  const own = new TestServer();
  let submits = 0;
  const client = new Client(`http://${own.target}`, own.operatorHex, {
    attempts: 2,
    firstDelayMs: 10,
    interceptors: [onStart((method) => method === "Submit" && ++submits === 2 && own.stop())],
  });
  try {
    await client.refresh();
    const items = unlisted(150, "stopped"); // batches of 64, 64, 22
    await assert.rejects(client.check(items), (e) => {
      assert.ok(e instanceof Incomplete, e.stack);
      assert.equal(e.acknowledged, 64);
      assert.equal(e.remaining.length, 86);
      assert.equal(e.remaining[0], items[64]);
      assert.equal(e.cause.code, grpc.status.UNAVAILABLE);
      assert.match(e.message, /^64 of 150 acknowledged; the rest failed: 14 UNAVAILABLE/);
      return true;
    });
  } finally {
    client.close();
    own.stop();
  }
});

test("a server that moves to another table mid-check: the batch is made again; a refused delta says why", async () => {
  // No grace period: vouchers for the replaced version are refused at once.
  const own = new TestServer("--grace 0s");
  const target = `http://${own.target}`;
  let submits = 0;
  const client = new Client(target, own.operatorHex, {
    interceptors: [
      onStart((method) => {
        if (method === "Submit" && ++submits === 2) {
          own.publish();
          sleepSync(3000); // the reload takes milliseconds
        }
      }),
    ],
  });
  const noDelta = new Client(target, own.operatorHex, { interceptors: [answering("DownloadDelta", grpc.status.NOT_FOUND, "no delta (test)")] });
  try {
    assert.equal((await client.refresh()).version, 1);
    assert.equal(client.manifest.syntheticBound, undefined);
    assert.equal((await noDelta.refresh()).version, 1);
    const listed = own.listed();
    const items = unlisted(144, "moved");
    // Listed items in the first batch (acknowledged under version 1) and in
    // the second (refused, then made again under version 2).
    listed.forEach(([type, hex], i) => items.splice(i < 3 ? i : 64 + i, 0, { type, value: itemFromHex(type, hex), associatedData: enc(`moved-${i}`) }));
    assert.equal(await client.check(items), items.length);
    assert.equal(client.manifest.version, 2);
    assert.equal(submits, 4); // batch 1, batch 2 refused, batch 2 again, batch 3
    const recorded = own.matches(listed.length).map((m) => m.associated_data).sort();
    assert.deepEqual(recorded, listed.map((_, i) => `moved-${i}`).sort());
    assert.deepEqual(await noDelta.refresh(), { version: 2, how: "download", deltaRefused: "NOT_FOUND: no delta (test)" });
  } finally {
    client.close();
    noDelta.close();
    own.stop();
  }
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
  assert.deepEqual(await client.refresh(), { version: 1, how: "download", deltaRefused: undefined });
  assert.equal(await client.check(items), items.length); // more than one batch of 64
  assert.equal((await client.refresh()).how, "held");
  client.close();
  const ours = server.matches(listed.length + 1).filter((m) => m.associated_data.startsWith("client-"));
  assert.deepEqual(
    ours.map((m) => [m.item_type, m.item_hex, m.associated_data]).sort(),
    listed.map(([t, h], i) => [t, h, `client-${i}`]).sort(),
  );
  const next = new Client(url(), server.operatorHex, { cacheDir });
  assert.deepEqual(await next.refresh(), { version: 1, how: "cached", deltaRefused: undefined });
  server.publish();
  let refreshed;
  for (let i = 0; i < 100; i++) {
    refreshed = await next.refresh();
    if (refreshed.version === 2) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(refreshed, { version: 2, how: "delta", deltaRefused: undefined });
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
    assert.deepEqual(refreshed, { version: 2, how: "delta", deltaRefused: undefined });
    const tables = readdirSync(join(cacheDir, own.operatorHex)).filter((f) => f.startsWith("table-"));
    assert.equal(tables.length, 1);
  } finally {
    own.stop();
  }
});
