// A ready client for Node over @grpc/grpc-js: fetch the manifest, verify it,
// bring the table up to date, submit, retry.
//
// It drives the core (`Manifest`, `History`, `TableDownload`,
// `DeltaDownload`, `Table`, `Backoff`, the same in every binding) as the
// Rust client does: the manifest is verified against the pinned operator
// key, then the organisations' quorum and the transparency log if the app
// pins them, then the history (no rollback, no equivocation); the table
// comes from the cache, a delta from the table held, or a download that
// checks every chunk and resumes where a broken stream stopped (across
// restarts too, with a cache directory); every submission is retried
// unchanged, under its id, as the core's `Backoff` allows, so the server
// stores it once. The messages come from the package's own copy of
// blindmatch.proto (@grpc/proto-loader): nobody runs protoc.
import {
  appendFileSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

import {
  Backoff,
  DeltaDownload,
  History,
  Manifest,
  OperatorKey,
  Table,
  TableDownload,
} from "../node/blindmatch_wasm.js";

const PROTO = fileURLToPath(new URL("../proto/blindmatch/v1/blindmatch.proto", import.meta.url));
let v1;
/** The blindmatch.v1 service constructors, loaded once. */
function services() {
  v1 ??= grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { longs: Number, defaults: true })).blindmatch.v1;
  return v1;
}

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const sameBytes = (a, b) => Buffer.from(a).equals(Buffer.from(b));

export class Client {
  /**
   * `url` is `http://HOST:PORT` (plaintext: loopback or a trusted network)
   * or `https://HOST:PORT` (TLS with Node's roots, or `credentials`).
   * `operatorKey` is an `OperatorKey` or 64 hex digits. Options:
   * `cacheDir` (the history and the table persist there, one directory per
   * operator key), `quorum` (a `Quorum`), `logPolicy` (a `LogPolicy`),
   * `maxAgeSeconds`, `timeoutMs` (each call, default 30 s),
   * `downloadTimeoutMs` (each attempt at a table or a delta, default
   * 600 s), `attempts` (5) and `firstDelayMs` (200) for retries,
   * `credentials` (grpc.ChannelCredentials). A cache directory is for one
   * client at a time: two processes that write one directory can set each
   * other's history back.
   */
  constructor(url, operatorKey, options = {}) {
    this.operator = typeof operatorKey === "string" ? OperatorKey.fromHex(operatorKey.trim()) : operatorKey;
    let target, credentials;
    if (url.startsWith("http://")) {
      if (options.credentials) throw new TypeError("credentials were given for a plaintext http:// url");
      target = url.slice("http://".length);
      credentials = grpc.credentials.createInsecure();
    } else if (url.startsWith("https://")) {
      target = url.slice("https://".length);
      credentials = options.credentials ?? grpc.credentials.createSsl();
    } else {
      throw new TypeError(`url ${JSON.stringify(url)}: expected http://HOST:PORT or https://HOST:PORT`);
    }
    const { TableService, VoucherService } = services();
    this.tables = new TableService(target, credentials);
    this.vouchers = new VoucherService(target, credentials, { channelOverride: this.tables.getChannel() });
    this.quorum = options.quorum;
    this.logPolicy = options.logPolicy;
    this.maxAgeSeconds = options.maxAgeSeconds;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.downloadTimeoutMs = options.downloadTimeoutMs ?? 600_000;
    this.attempts = options.attempts ?? 5;
    this.firstDelayMs = options.firstDelayMs ?? 200;
    this.dir = undefined;
    if (options.cacheDir !== undefined) {
      this.dir = join(options.cacheDir, this.operator.toHex());
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    }
    this.history = new History(this.operator);
    this.#reloadHistory();
    this.table = undefined;
    this.manifest = undefined;
    this.maxBatch = 0;
  }

  /**
   * Fetches the manifest, verifies it and brings the table up to its
   * version; resolves to `{ version, how }`, `how` being "held", "cached",
   * "delta" or "download". Rejects with a BlindmatchError if the manifest
   * is refused (the table held stays in use).
   */
  async refresh() {
    this.#reloadHistory(); // the cache's record as it is now
    const response = await this.#retried(() =>
      this.#unary(this.tables, "GetManifest", { logSize: this.history.logSize }),
    );
    let manifest = Manifest.verify(response.statement, response.signature, this.operator);
    if (this.quorum) manifest = manifest.requireQuorum(this.quorum, response.cosignatures);
    if (this.logPolicy) {
      manifest = manifest.requireLogged(this.logPolicy, response.logProof, response.logConsistency, response.cosignatures);
    }
    if (this.maxAgeSeconds !== undefined) manifest.checkAge(this.maxAgeSeconds, Math.floor(Date.now() / 1000));
    const accepted = this.history.check(manifest);
    const previous = this.history.newest;
    const { table, how } = await this.#tableFor(manifest);
    // The table first, then the history that names it: a crash between the
    // two leaves a table the history does not need yet.
    if (how === "delta" || how === "download") this.#write(tableFile(manifest.tableId), table.encode());
    this.#reloadHistory(); // `record` leaves a history that moved on alone
    this.history.record(accepted);
    this.#write("history", this.history.encode());
    // One version is kept.
    for (const old of [previous, this.manifest]) {
      if (old && !sameBytes(old.tableId, manifest.tableId)) this.#remove(tableFile(old.tableId));
    }
    this.table = table;
    this.manifest = manifest;
    this.maxBatch = response.maxBatch;
    return { version: manifest.version, how };
  }

  /**
   * Version 1: submits `items` (`{ type, value, associatedData }`: a type
   * name such as "sha256", the hash's bytes, at most 1 KiB of associated
   * data) in batches of the server's size; resolves to how many vouchers
   * were acknowledged, which says nothing about matches.
   */
  async check(items) {
    const table = await this.#current();
    return this.#submitAll(items, (chunk) => {
      const batch = table.batch();
      for (const { type, value, associatedData = new Uint8Array() } of chunk) batch.add(type, value, associatedData);
      return table.submission(batch);
    });
  }

  /**
   * Threshold mode: submits `uploads` (`{ voucherId, type, value,
   * associatedData }`; keep an upload's 16-byte `voucherId` across retries
   * and restarts, so it counts once) under `account`.
   */
  async checkAccount(account, uploads) {
    const table = await this.#current();
    return this.#submitAll(uploads, (chunk) => {
      const batch = table.accountBatch();
      for (const { voucherId, type, value, associatedData = new Uint8Array() } of chunk) {
        batch.add(voucherId, type, value, associatedData);
      }
      return table.accountSubmission(account, batch);
    });
  }

  /** Closes the channel. */
  close() {
    this.tables.close();
  }

  async #current() {
    if (!this.table) await this.refresh();
    return this.table;
  }

  async #tableFor(manifest) {
    if (this.table && sameBytes(this.table.tableId, manifest.tableId)) return { table: this.table, how: "held" };
    const cached = this.#read(tableFile(manifest.tableId));
    if (cached) {
      try {
        return { table: Table.open(cached, manifest), how: "cached" };
      } catch (e) {
        if (e.name !== "BlindmatchError") throw e;
        this.#remove(tableFile(manifest.tableId)); // damaged: fetch again
      }
    }
    let held = this.table;
    let heldManifest = this.manifest;
    const newest = this.history.newest;
    if (!held && newest) {
      // After a restart: the cache's copy of the version held before.
      const saved = this.#read(tableFile(newest.tableId));
      if (saved) {
        try {
          held = Table.open(saved, newest);
          heldManifest = newest;
        } catch (e) {
          if (e.name !== "BlindmatchError") throw e;
        }
      }
    }
    // A delta is between tables of one shape; for any other the server has
    // none (NOT_FOUND, SPEC 13.4) and the table is downloaded in full.
    if (held && heldManifest && heldManifest.k === manifest.k && heldManifest.nSlots === manifest.nSlots) {
      try {
        return { table: await this.#delta(held, manifest), how: "delta" };
      } catch (e) {
        // No delta for this pair (a gRPC status), or one that does not
        // verify: download in full. Anything else is the app's or ours.
        const refused = e.name === "BlindmatchError" && (e.kind === "Invalid" || e.kind === "Malformed");
        if (!refused && typeof e.code !== "number") throw e;
      }
    }
    return { table: await this.#download(manifest), how: "download" };
  }

  async #delta(held, manifest) {
    const delta = new DeltaDownload(held, manifest);
    const stream = this.tables.DownloadDelta(
      { fromTableId: held.tableId, toTableId: manifest.tableId },
      { deadline: Date.now() + this.downloadTimeoutMs },
    );
    for await (const chunk of stream) delta.push(chunk.indices, chunk.slots);
    return delta.finish(held);
  }

  async #download(manifest) {
    const part = tableFile(manifest.tableId) + ".part";
    let download;
    try {
      download = TableDownload.resume(manifest, this.#read(part) ?? new Uint8Array());
    } catch (e) {
      if (e.name !== "BlindmatchError") throw e;
      this.#remove(part); // not a prefix of this table: start over
      download = new TableDownload(manifest);
    }
    // Only whole chunks were kept: new ones are appended after them.
    if (this.dir && existsSync(join(this.dir, part))) truncateSync(join(this.dir, part), download.offset);
    const backoff = new Backoff(this.attempts, this.firstDelayMs);
    for (;;) {
      const stream = this.tables.DownloadTable(
        { tableId: manifest.tableId, offset: download.offset },
        { deadline: Date.now() + this.downloadTimeoutMs },
      );
      try {
        for await (const chunk of stream) {
          // Throws for a chunk that does not verify; what was verified
          // before it is kept, and a resume starts there.
          download.push(chunk.offset, chunk.slots, chunk.proof);
          this.#append(part, chunk.slots);
        }
        break;
      } catch (e) {
        await wait(backoff, e);
      }
    }
    try {
      return download.finish();
    } finally {
      this.#remove(part);
    }
  }

  async #submitAll(items, make) {
    const size = Math.max(1, this.maxBatch);
    let acknowledged = 0;
    for (let start = 0; start < items.length; start += size) {
      const s = make(items.slice(start, start + size));
      const request = { tableId: s.tableId, vouchers: s.vouchers, submissionId: s.id, accountId: s.accountId };
      // The same request on every try: the server stores it once.
      acknowledged += (await this.#retried(() => this.#unary(this.vouchers, "Submit", request))).accepted;
    }
    return acknowledged;
  }

  async #retried(call) {
    const backoff = new Backoff(this.attempts, this.firstDelayMs);
    for (;;) {
      try {
        return await call();
      } catch (e) {
        await wait(backoff, e);
      }
    }
  }

  #unary(client, method, request) {
    return new Promise((resolve, reject) =>
      client[method](request, { deadline: Date.now() + this.timeoutMs }, (err, response) =>
        err ? reject(err) : resolve(response),
      ),
    );
  }

  #reloadHistory() {
    const saved = this.#read("history");
    // Throws History if it does not verify: starting over silently would
    // drop the rollback protection it holds (bindings/ERRORS.md).
    if (saved) this.history = History.restore(this.operator, saved);
  }

  #read(name) {
    if (!this.dir) return undefined;
    try {
      return new Uint8Array(readFileSync(join(this.dir, name)));
    } catch (e) {
      if (e.code === "ENOENT") return undefined;
      throw e;
    }
  }

  #write(name, bytes) {
    if (!this.dir) return;
    // Whole or not at all: a crash leaves the old file.
    const tmp = join(this.dir, `.tmp-${process.pid}-${name}`);
    writeFileSync(tmp, bytes);
    const fd = openSync(tmp, "r+");
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, join(this.dir, name));
  }

  #append(name, bytes) {
    if (this.dir) appendFileSync(join(this.dir, name), bytes);
  }

  #remove(name) {
    if (this.dir) rmSync(join(this.dir, name), { force: true });
  }
}

/** Waits as the core's backoff says for the gRPC error `e`, or rethrows it. */
async function wait(backoff, e) {
  if (e.name === "BlindmatchError" || typeof e.code !== "number") throw e;
  const pushback = e.metadata?.get("grpc-retry-pushback-ms")?.[0]?.toString();
  const ms = backoff.retry(e.code, pushback);
  if (ms === undefined) throw e;
  await new Promise((r) => setTimeout(r, ms));
}

function tableFile(tableId) {
  return `table-${hex(tableId)}`;
}
