// Client from "blindmatch/client", the ready Node client, against a real
// server: a download into the cache, the cache on the next start, a delta to
// version 2, the quorum and the log refusing as the core does, a damaged
// partial download dropped, a planted link never followed, stale partial
// downloads removed, strict urls (bindings/testkit/urls.txt), the cache
// directory's leftovers, a server that moves to another table mid-check
// (FAILED_PRECONDITION), one that dies mid-check (Incomplete, worded as
// every client words it), errors before the first Submit thrown as they
// are, a refused delta, and the quickstart and refused examples.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import grpc from "@grpc/grpc-js";
import { Account, LogPolicy, Quorum, itemFromHex } from "blindmatch";
import { Client, Incomplete } from "blindmatch/client";
import { checkItems, parseItem } from "./quickstart.mjs";
import { round } from "./refused.mjs";
import { TestServer, urlCases } from "./server.mjs";

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

test("urls are strict: what bindings/testkit/urls.txt accepts and refuses", () => {
  for (const [verdict, url] of urlCases()) {
    if (verdict === "ok") {
      new Client(url, server.operatorHex).close();
    } else {
      assert.throws(
        () => new Client(url, server.operatorHex),
        (e) => e instanceof TypeError && e.message.startsWith(`url ${JSON.stringify(url)}: `),
        JSON.stringify(url),
      );
    }
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
/** An interceptor that runs `fn(method)` as each call starts and sends the call once its promise settles. */
function onStartAwait(fn) {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        const go = () => next(metadata, listener);
        Promise.resolve(fn(options.method_definition.path.split("/").pop())).then(go, go);
      },
    });
}
/** Refreshes `client` until it holds `version` (a reload after SIGHUP), at most about 10 s. */
async function untilVersion(client, version) {
  for (let i = 0; i < 100; i++) {
    if ((await client.refresh()).version === version) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the server did not reach version ${version} in 10 s`);
}

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
    assert.equal(e.message, "0 of 10 acknowledged; the rest failed: FAILED_PRECONDITION: not the current table (test)");
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
      // A server killed as the call starts: grpc-js says UNAVAILABLE, or
      // INTERNAL when the stream was already open (RST_STREAM): a race the
      // test does not control.
      const name = { [grpc.status.UNAVAILABLE]: "UNAVAILABLE", [grpc.status.INTERNAL]: "INTERNAL" }[e.cause.code];
      assert.ok(name, `status ${e.cause.code}`);
      assert.equal(e.message, `64 of 150 acknowledged; the rest failed: ${name}: ${e.cause.details}`);
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
  // The second Submit is sent once the server serves version 2 (another
  // client sees it), so that it is refused.
  const probe = new Client(target, own.operatorHex);
  let reloaded;
  const client = new Client(target, own.operatorHex, {
    interceptors: [
      onStartAwait(async (method) => {
        if (method === "Submit" && ++submits === 2) {
          own.publish();
          reloaded = untilVersion(probe, 2);
          await reloaded.catch(() => {});
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
    await reloaded; // throws if the server never reached version 2
    assert.equal(client.manifest.version, 2);
    assert.equal(submits, 4); // batch 1, batch 2 refused, batch 2 again, batch 3
    const recorded = own.matches(listed.length).map((m) => m.associated_data).sort();
    assert.deepEqual(recorded, listed.map((_, i) => `moved-${i}`).sort());
    assert.deepEqual(await noDelta.refresh(), { version: 2, how: "download", deltaRefused: "NOT_FOUND: no delta (test)" });
  } finally {
    client.close();
    noDelta.close();
    probe.close();
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

test("errors before the first Submit are thrown as they are; after it, Incomplete with the core's message", async () => {
  const client = new Client(url(), server.operatorHex);
  const good = unlisted(70, "first");
  // A bad item in the first batch: nothing was sent.
  const badFirst = [...good.slice(0, 3), { type: "nope", value: new Uint8Array(32) }];
  await assert.rejects(client.check(badFirst), (e) => {
    assert.ok(!(e instanceof Incomplete), e.stack);
    assert.equal(e.name, "BlindmatchError");
    assert.equal(e.kind, "Input");
    return true;
  });
  // Not an item at all: the TypeError as it is.
  await assert.rejects(client.check([null]), (e) => e instanceof TypeError && !(e instanceof Incomplete));
  // A bad item in the second batch (of 64): the first was acknowledged.
  const badSecond = [...good.slice(0, 64), { type: "nope", value: new Uint8Array(32) }, ...good.slice(64)];
  await assert.rejects(client.check(badSecond), (e) => {
    assert.ok(e instanceof Incomplete, e.stack);
    assert.equal(e.acknowledged, 64);
    assert.deepEqual(e.remaining, badSecond.slice(64));
    assert.equal(e.cause.kind, "Input");
    assert.equal(e.message, `64 of ${badSecond.length} acknowledged; the rest failed: ${e.cause.message}`);
    return true;
  });
  client.close();
});

test("a planted link in the cache is never followed: its target is untouched, the link removed", async () => {
  const cacheDir = scratch();
  const first = new Client(url(), server.operatorHex);
  await first.refresh();
  const id = Buffer.from(first.manifest.tableId).toString("hex");
  first.close();
  const dir = join(cacheDir, server.operatorHex);
  mkdirSync(dir, { recursive: true });
  // A file of the user's, outside the cache: one chunk and a bit (a resume
  // would keep the chunk and cut the rest).
  const precious = join(scratch(), "precious");
  const bytes = Buffer.alloc(32 * 4096 + 1000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 0xff;
  writeFileSync(precious, bytes);
  const noLinks = () => readdirSync(dir).forEach((name) => assert.ok(!lstatSync(join(dir, name)).isSymbolicLink(), name));
  // As the partial download of the current table: removed, downloaded afresh.
  symlinkSync(precious, join(dir, `table-${id}.part`));
  const client = new Client(url(), server.operatorHex, { cacheDir });
  assert.deepEqual(await client.refresh(), { version: 1, how: "download", deltaRefused: undefined });
  client.close();
  assert.ok(readFileSync(precious).equals(bytes), "the link's target is unchanged");
  noLinks();
  assert.deepEqual(readdirSync(dir).sort(), ["history", `table-${id}`]);
  // As the history and the table: not read, removed; the table downloaded.
  for (const name of ["history", `table-${id}`]) {
    rmSync(join(dir, name));
    symlinkSync(precious, join(dir, name));
  }
  const again = new Client(url(), server.operatorHex, { cacheDir });
  assert.deepEqual(await again.refresh(), { version: 1, how: "download", deltaRefused: undefined });
  again.close();
  assert.ok(readFileSync(precious).equals(bytes), "the link's target is unchanged");
  noLinks();
  assert.deepEqual(readdirSync(dir).sort(), ["history", `table-${id}`]);
});

test("after a refresh, partial downloads of other tables are removed", async () => {
  const cacheDir = scratch();
  const dir = join(cacheDir, server.operatorHex);
  mkdirSync(dir, { recursive: true });
  const stale = [`table-${"ab".repeat(32)}.part`, `table-${"cd".repeat(32)}.part`];
  for (const name of stale) writeFileSync(join(dir, name), new Uint8Array(64).fill(1));
  writeFileSync(join(dir, "notes.part"), "not ours to remove");
  const client = new Client(url(), server.operatorHex, { cacheDir });
  assert.equal((await client.refresh()).how, "download");
  const id = Buffer.from(client.manifest.tableId).toString("hex");
  // Again from "held": one left meanwhile goes too.
  writeFileSync(join(dir, stale[0]), new Uint8Array(64).fill(1));
  assert.equal((await client.refresh()).how, "held");
  client.close();
  assert.deepEqual(readdirSync(dir).sort(), ["history", "notes.part", `table-${id}`]);
});

test("refused.mjs's round: a refused table with none held checks nothing; a damaged history is thrown", async () => {
  // Another operator's key: refused, and nothing verified is held.
  const refusing = new Client(url(), org(server, "a"));
  const said = [];
  const queue = unlisted(2, "refused-round");
  assert.deepEqual(await round(refusing, queue, (t) => said.push(t)), queue);
  assert.deepEqual(said, [
    "ALERT: table refused (BadSignature): manifest signature does not verify under the pinned operator key",
    "no verified table yet: 2 items wait",
  ]);
  assert.equal(refusing.manifest, undefined);
  refusing.close();
  // A saved history that does not verify is a broken cache, not a refusal.
  const cacheDir = scratch();
  const dir = join(cacheDir, server.operatorHex);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "history"), new Uint8Array(100).fill(3));
  const broken = new Client(url(), server.operatorHex, { cacheDir });
  await assert.rejects(round(broken, queue, (t) => said.push(t)), (e) => e.name === "BlindmatchError" && e.kind === "History");
  assert.equal(said.length, 2);
  broken.close();
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
