// The flow every ready JavaScript client shares (Node's client/node.mjs,
// the browser's client/web.mjs): fetch the manifest, verify it, bring the
// table up to date, submit, retry. Defined once here; each client only
// brings a transport and a store.
//
// It drives the core (`Manifest`, `History`, `TableDownload`,
// `DeltaDownload`, `Table`, `Backoff`, the same in every binding) as the
// Rust client does: the manifest is verified against the pinned operator
// key, then the organisations' quorum and the transparency log if the app
// pins them, then the history (no rollback, no equivocation); the table
// comes from the store, a delta from the table held, or a download that
// checks every chunk and resumes where a broken stream stopped (across
// restarts too, with a store); every submission is retried unchanged,
// under its id, as the core's `Backoff` allows, so the server stores it
// once. A Submit refused with FAILED_PRECONDITION (the server moved to
// another table, SPEC 12.2) makes the client refresh and make that batch
// again; a failure once submitting began is an `Incomplete` that says what
// was acknowledged.
//
// The transport is an object with
//   getManifest({ logSize })  -> { statement, signature, cosignatures,
//                                  logProof, logConsistency, maxBatch }
//   downloadTable({ tableId, offset }) -> async iterable of
//                                  { offset, slots, proof }
//   downloadDelta({ fromTableId, toTableId }) -> async iterable of
//                                  { indices, slots }
//   submit({ tableId, vouchers, submissionId, accountId }) -> { accepted }
//   status(error) -> { code, message, pushback } for a call's status (gRPC's
//                                  numeric code), undefined for anything else
// with numbers as JavaScript numbers. The store holds named byte strings
// (the history, the table, a partial download): read(name) -> bytes or
// undefined, write(name, bytes) (whole or not at all), append(name, bytes),
// truncate(name, length), remove(name), and optionally list() -> the names
// it holds (a store with list() has stale partial downloads cleared after
// each refresh); each may return a promise.

/** gRPC's status codes by number, for messages. */
const CODE_NAMES = [
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
  "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
];
const FAILED_PRECONDITION = 9;

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const sameBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const isCoreError = (e) => e?.name === "BlindmatchError";

/**
 * A check that failed after submitting began. `acknowledged` vouchers of
 * earlier batches were acknowledged and are stored; `remaining` are the
 * items (or uploads) of the call that were not, in the order given, from
 * the first batch that failed to the end; `cause` is the failure. Retry
 * with `remaining` only: checking every item again would submit the
 * acknowledged ones again under new submission ids, and a version-1
 * server would record them twice.
 */
export class Incomplete extends Error {
  /**
   * `detail` is what failed, as every client words it: `CODE_NAME: details`
   * for a call's status (the flow passes it), else the cause's message.
   */
  constructor(acknowledged, remaining, total, cause, detail = cause?.message ?? String(cause)) {
    super(`${acknowledged} of ${total} acknowledged; the rest failed: ${detail}`, { cause });
    this.name = "Incomplete";
    this.acknowledged = acknowledged;
    this.remaining = remaining;
  }
}

const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/;

/**
 * `http://HOST[:PORT]` or `https://HOST[:PORT]` (HOST a name, an IPv4
 * address or a bracketed IPv6 address; PORT 1 to 65535, by default 443 for
 * https and 80 for http) as `{ secure, host, port, authority, origin }`.
 * Anything else (a path, even `/`, a query, a fragment, user info) throws a
 * TypeError naming the url and what is wrong.
 */
export function parseServerUrl(url) {
  const refuse = (why) =>
    new TypeError(`url ${JSON.stringify(url)}: ${why} (expected http://HOST[:PORT] or https://HOST[:PORT])`);
  if (typeof url !== "string") throw refuse("not a string");
  const scheme = /^(https?):\/\//.exec(url);
  if (!scheme) throw refuse("the scheme must be http or https");
  const rest = url.slice(scheme[0].length);
  if (rest.includes("@")) throw refuse("a server address has no user info");
  if (rest.includes("/")) throw refuse("a server address has no path (not even /)");
  if (rest.includes("?")) throw refuse("a server address has no query");
  if (rest.includes("#")) throw refuse("a server address has no fragment");
  let host, portText;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0) throw refuse("an IPv6 address opened with [ is not closed");
    host = rest.slice(0, close + 1);
    const after = rest.slice(close + 1);
    if (after !== "" && !after.startsWith(":")) throw refuse("only :PORT may follow a bracketed IPv6 address");
    portText = after === "" ? undefined : after.slice(1);
    let valid = host.length > 2;
    try {
      new URL(`http://${host}/`);
    } catch {
      valid = false;
    }
    // A zone id (`%25eth0`) names an interface of this host only.
    if (!valid || !host.includes(":") || host.includes("%")) throw refuse(`${host} is not an IPv6 address`);
  } else {
    const colon = rest.lastIndexOf(":");
    host = colon < 0 ? rest : rest.slice(0, colon);
    portText = colon < 0 ? undefined : rest.slice(colon + 1);
    if (host === "") throw refuse("no host");
    if (!HOST_NAME.test(host)) throw refuse(`${JSON.stringify(host)} is not a host name or an IPv4 address`);
    const labels = host.replace(/\.$/, "").split(".");
    if (labels.every((l) => /^[0-9]+$/.test(l)) && (labels.length !== 4 || labels.some((l) => Number(l) > 255))) {
      throw refuse(`${host} is not an IPv4 address`);
    }
  }
  let port = scheme[1] === "https" ? 443 : 80;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw refuse("the port must be a number from 1 to 65535");
    }
    port = Number(portText);
  }
  return {
    secure: scheme[1] === "https",
    host,
    port,
    authority: `${host}:${port}`,
    origin: `${scheme[1]}://${host}:${port}`,
  };
}

/** A store that keeps nothing: the history and the table live in the client. */
export const noStore = Object.freeze({
  read: () => undefined,
  write() {},
  append() {},
  truncate() {},
  remove() {},
});

/**
 * The shared client: `core` is the WebAssembly module's classes (`Backoff`,
 * `DeltaDownload`, `History`, `OperatorKey`, `Manifest`, `Table`,
 * `TableDownload`), `transport` and `store` as above, and the options every
 * client takes (`quorum`, `logPolicy`, `maxAgeSeconds`, `attempts`,
 * `firstDelayMs`).
 */
export class Flow {
  #core;
  #transport;
  #store;
  #operator;
  #history;
  #table;
  #manifest;
  #maxBatch = 0;
  #turns = Promise.resolve();

  constructor({ core, transport, store, operatorKey, options = {} }) {
    this.#core = core;
    this.#transport = transport;
    this.#store = store ?? noStore;
    this.#operator = typeof operatorKey === "string" ? core.OperatorKey.fromHex(operatorKey.trim()) : operatorKey;
    if (!(this.#operator instanceof core.OperatorKey)) {
      throw new TypeError("operatorKey: expected an OperatorKey or 64 hex digits");
    }
    this.quorum = options.quorum;
    this.logPolicy = options.logPolicy;
    this.maxAgeSeconds = options.maxAgeSeconds;
    this.attempts = options.attempts ?? 5;
    this.firstDelayMs = options.firstDelayMs ?? 200;
    this.#history = new core.History(this.#operator);
  }

  /** The operator key pinned. */
  get operator() {
    return this.#operator;
  }

  /** The manifest of the table held, once refreshed (else undefined). */
  get manifest() {
    return this.#manifest;
  }

  /**
   * Fetches the manifest, verifies it and brings the table up to its
   * version; resolves to `{ version, how, deltaRefused }`, `how` being
   * "held", "cached", "delta" or "download", `deltaRefused` why a delta was
   * tried and the table downloaded in full instead (else undefined).
   * Rejects with a BlindmatchError if the manifest is refused (the table
   * held stays in use).
   */
  refresh() {
    return this.#inTurn(() => this.#refresh());
  }

  /**
   * Version 1: submits `items` (`{ type, value, associatedData }`) in
   * batches of the server's size; resolves to how many vouchers were
   * acknowledged, which says nothing about matches. Rejects with
   * `Incomplete` once submitting began.
   */
  check(items) {
    return this.#inTurn(() =>
      this.#submitAll(items, (table, chunk) => {
        const batch = table.batch();
        for (const { type, value, associatedData = new Uint8Array() } of chunk) batch.add(type, value, associatedData);
        return table.submission(batch);
      }),
    );
  }

  /**
   * Threshold mode: submits `uploads` (`{ voucherId, type, value,
   * associatedData }`) under `account`, as `check` does.
   */
  checkAccount(account, uploads) {
    return this.#inTurn(() =>
      this.#submitAll(uploads, (table, chunk) => {
        const batch = table.accountBatch();
        for (const { voucherId, type, value, associatedData = new Uint8Array() } of chunk) {
          batch.add(voucherId, type, value, associatedData);
        }
        return table.accountSubmission(account, batch);
      }),
    );
  }

  // One call at a time: a refresh interleaved with another would record
  // the history twice and race on the store.
  #inTurn(fn) {
    const run = this.#turns.then(fn);
    this.#turns = run.catch(() => {});
    return run;
  }

  async #refresh() {
    try {
      return await this.#refreshOnce();
    } catch (e) {
      if (this.#transport.status(e)?.code !== FAILED_PRECONDITION) throw e;
      // The server moved to a newer table between the manifest and its
      // download (SPEC 13.5): once more, from the new manifest.
      return this.#refreshOnce();
    }
  }

  async #refreshOnce() {
    const core = this.#core;
    await this.#reloadHistory(); // the store's record as it is now
    const logSize = this.#history.logSize;
    const response = await this.#retried(() => this.#transport.getManifest({ logSize }));
    let manifest = core.Manifest.verify(response.statement, response.signature, this.#operator);
    if (this.quorum) manifest = manifest.requireQuorum(this.quorum, response.cosignatures);
    if (this.logPolicy) {
      manifest = manifest.requireLogged(this.logPolicy, response.logProof, response.logConsistency, response.cosignatures);
    }
    if (this.maxAgeSeconds !== undefined) manifest.checkAge(this.maxAgeSeconds, Math.floor(Date.now() / 1000));
    const accepted = this.#history.check(manifest);
    const previous = this.#history.newest;
    const { table, how, deltaRefused } = await this.#tableFor(manifest);
    // The table first, then the history that names it: a crash between the
    // two leaves a table the history does not need yet.
    if (how === "delta" || how === "download") await this.#store.write(tableName(manifest.tableId), table.encode());
    await this.#reloadHistory(); // `record` leaves a history that moved on alone
    this.#history.record(accepted);
    await this.#store.write("history", this.#history.encode());
    // One version is kept.
    for (const old of [previous, this.#manifest]) {
      if (old && !sameBytes(old.tableId, manifest.tableId)) await this.#store.remove(tableName(old.tableId));
    }
    // And no partial download of another table: one of a version replaced
    // before it finished would stay forever. Only a store that can list
    // its names (the cache directory; an app's store if it gives list()).
    if (typeof this.#store.list === "function") {
      const current = partName(manifest.tableId);
      for (const name of await this.#store.list()) {
        if (name.startsWith("table-") && name.endsWith(".part") && name !== current) await this.#store.remove(name);
      }
    }
    this.#table = table;
    this.#manifest = manifest;
    this.#maxBatch = response.maxBatch;
    return { version: manifest.version, how, deltaRefused };
  }

  async #tableFor(manifest) {
    const core = this.#core;
    if (this.#table && sameBytes(this.#table.tableId, manifest.tableId)) return { table: this.#table, how: "held" };
    const cached = await this.#store.read(tableName(manifest.tableId));
    if (cached) {
      try {
        return { table: core.Table.open(cached, manifest), how: "cached" };
      } catch (e) {
        if (!isCoreError(e)) throw e;
        await this.#store.remove(tableName(manifest.tableId)); // damaged: fetch again
      }
    }
    let held = this.#table;
    let heldManifest = this.#manifest;
    const newest = this.#history.newest;
    if (!held && newest) {
      // After a restart: the store's copy of the version held before.
      const saved = await this.#store.read(tableName(newest.tableId));
      if (saved) {
        try {
          held = core.Table.open(saved, newest);
          heldManifest = newest;
        } catch (e) {
          if (!isCoreError(e)) throw e;
        }
      }
    }
    let deltaRefused;
    // A delta is between tables of one shape; for any other the server has
    // none (NOT_FOUND, SPEC 13.4) and the table is downloaded in full.
    if (held && heldManifest && heldManifest.k === manifest.k && heldManifest.nSlots === manifest.nSlots) {
      try {
        return { table: await this.#delta(held, manifest), how: "delta" };
      } catch (e) {
        // No delta for this pair (a call's status), or one that does not
        // verify: download in full. Anything else is the app's or ours.
        const status = this.#transport.status(e);
        if (status) {
          deltaRefused = `${CODE_NAMES[status.code] ?? status.code}: ${status.message}`;
        } else if (isCoreError(e) && (e.kind === "Invalid" || e.kind === "Malformed")) {
          deltaRefused = e.message;
        } else {
          throw e;
        }
      }
    }
    return { table: await this.#download(manifest), how: "download", deltaRefused };
  }

  async #delta(held, manifest) {
    const delta = new this.#core.DeltaDownload(held, manifest);
    const stream = this.#transport.downloadDelta({ fromTableId: held.tableId, toTableId: manifest.tableId });
    for await (const chunk of stream) delta.push(chunk.indices, chunk.slots);
    return delta.finish(held);
  }

  async #download(manifest) {
    const core = this.#core;
    const part = partName(manifest.tableId);
    let download;
    const saved = await this.#store.read(part);
    try {
      download = core.TableDownload.resume(manifest, saved ?? new Uint8Array());
    } catch (e) {
      if (!isCoreError(e)) throw e;
      await this.#store.remove(part); // not a prefix of this table: start over
      download = new core.TableDownload(manifest);
    }
    // Only whole chunks were kept: new ones are appended after them.
    if (saved) await this.#store.truncate(part, download.offset);
    const backoff = new core.Backoff(this.attempts, this.firstDelayMs);
    for (;;) {
      try {
        const stream = this.#transport.downloadTable({ tableId: manifest.tableId, offset: download.offset });
        for await (const chunk of stream) {
          // Throws for a chunk that does not verify; what was verified
          // before it is kept, and a resume starts there.
          download.push(chunk.offset, chunk.slots, chunk.proof);
          await this.#store.append(part, chunk.slots);
        }
        break;
      } catch (e) {
        await this.#wait(backoff, e);
      }
    }
    try {
      return download.finish();
    } finally {
      await this.#store.remove(part);
    }
  }

  async #submitAll(items, make) {
    items = Array.from(items);
    if (!this.#table) await this.#refresh();
    let acknowledged = 0;
    let start = 0;
    // Until a Submit is sent, errors (the first table's refresh, a Mode
    // error for the other mode's table, a bad item) are thrown as they
    // are: nothing was stored, and the call was wrong or early, not cut
    // short.
    let begun = false;
    const send = (submission) => {
      begun = true;
      return this.#submit(submission);
    };
    try {
      while (start < items.length) {
        let chunk = items.slice(start, start + Math.max(1, this.#maxBatch));
        let accepted;
        try {
          accepted = await send(make(this.#table, chunk));
        } catch (e) {
          if (this.#transport.status(e)?.code !== FAILED_PRECONDITION) throw e;
          // The server moved to another table and stored nothing (SPEC
          // 12.2): fetch it and make the batch again, once.
          await this.#refresh();
          chunk = items.slice(start, start + Math.max(1, this.#maxBatch));
          accepted = await send(make(this.#table, chunk));
        }
        acknowledged += accepted;
        start += chunk.length;
      }
    } catch (e) {
      if (!begun) throw e;
      // The same words in every client: the status's name and the server's
      // message, or the core's message.
      const status = isCoreError(e) ? undefined : this.#transport.status(e);
      const detail = status ? `${CODE_NAMES[status.code] ?? status.code}: ${status.message}` : undefined;
      throw new Incomplete(acknowledged, items.slice(start), items.length, e, detail);
    }
    return acknowledged;
  }

  async #submit(s) {
    const request = { tableId: s.tableId, vouchers: s.vouchers, submissionId: s.id, accountId: s.accountId };
    // The same request on every try: the server stores it once.
    return (await this.#retried(() => this.#transport.submit(request))).accepted;
  }

  async #retried(call) {
    const backoff = new this.#core.Backoff(this.attempts, this.firstDelayMs);
    for (;;) {
      try {
        return await call();
      } catch (e) {
        await this.#wait(backoff, e);
      }
    }
  }

  /** Waits as the core's backoff says for the call's failure `e`, or rethrows it. */
  async #wait(backoff, e) {
    const status = isCoreError(e) ? undefined : this.#transport.status(e);
    if (!status) throw e;
    const ms = backoff.retry(status.code, status.pushback);
    if (ms === undefined) throw e;
    await new Promise((r) => setTimeout(r, ms));
  }

  async #reloadHistory() {
    const saved = await this.#store.read("history");
    // Throws History if it does not verify: starting over silently would
    // drop the rollback protection it holds (bindings/ERRORS.md).
    if (saved) this.#history = this.#core.History.restore(this.#operator, saved);
  }
}

function tableName(tableId) {
  return `table-${hex(tableId)}`;
}

function partName(tableId) {
  return `${tableName(tableId)}.part`;
}
