// The ready client for Node: the shared flow (client/flow.mjs) over
// @grpc/grpc-js, with a cache directory for the history and the table.
// The messages come from the package's own copy of blindmatch.proto
// (@grpc/proto-loader): nobody runs protoc.
import {
  closeSync,
  constants,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

import * as core from "../node/blindmatch_wasm.js";
import { Flow, Incomplete, parseServerUrl } from "./flow.mjs";

export { Incomplete };

const PROTO = fileURLToPath(new URL("../proto/blindmatch/v1/blindmatch.proto", import.meta.url));
let v1;
/** The blindmatch.v1 service constructors, loaded once. */
function services() {
  v1 ??= grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { longs: Number, defaults: true })).blindmatch.v1;
  return v1;
}

export class Client extends Flow {
  #tables;
  #ownChannel;

  /**
   * `url` is `http://HOST[:PORT]` (plaintext: loopback or a trusted
   * network) or `https://HOST[:PORT]` (TLS with Node's roots, or
   * `credentials`), or null with a `channel`. See client/node.d.ts for the
   * options.
   */
  constructor(url, operatorKey, options = {}) {
    let target, credentials;
    if (options.channel) {
      if (url != null || options.credentials) throw new TypeError("a channel was given with a url or credentials: give one or the other");
      credentials = grpc.credentials.createInsecure(); // unused: the channel has its own
      target = "unused";
    } else {
      const parsed = parseServerUrl(url);
      if (!parsed.secure && options.credentials) throw new TypeError("credentials were given for a plaintext http:// url");
      target = parsed.authority;
      credentials = parsed.secure ? (options.credentials ?? grpc.credentials.createSsl()) : grpc.credentials.createInsecure();
    }
    const { TableService, VoucherService } = services();
    const clientOptions = options.interceptors ? { interceptors: options.interceptors } : {};
    const tables = new TableService(target, credentials, { ...clientOptions, channelOverride: options.channel });
    const vouchers = new VoucherService(target, credentials, { ...clientOptions, channelOverride: tables.getChannel() });
    const timeoutMs = options.timeoutMs ?? 30_000;
    const downloadTimeoutMs = options.downloadTimeoutMs ?? 600_000;
    const unary = (client, method, request) =>
      new Promise((resolve, reject) =>
        client[method](request, { deadline: Date.now() + timeoutMs }, (err, response) => (err ? reject(err) : resolve(response))),
      );
    const transport = {
      getManifest: (request) => unary(tables, "GetManifest", request),
      downloadTable: (request) => tables.DownloadTable(request, { deadline: Date.now() + downloadTimeoutMs }),
      downloadDelta: (request) => tables.DownloadDelta(request, { deadline: Date.now() + downloadTimeoutMs }),
      submit: (request) => unary(vouchers, "Submit", request),
      status: (e) =>
        typeof e?.code === "number" && typeof e.metadata?.get === "function"
          ? { code: e.code, message: e.details ?? e.message, pushback: e.metadata.get("grpc-retry-pushback-ms")[0]?.toString() }
          : undefined,
    };
    let store;
    if (options.cacheDir !== undefined) {
      const key = typeof operatorKey === "string" ? core.OperatorKey.fromHex(operatorKey.trim()) : operatorKey;
      store = directoryStore(join(options.cacheDir, key.toHex()));
    }
    super({ core, transport, store, operatorKey, options });
    this.#tables = tables;
    this.#ownChannel = !options.channel;
  }

  /** Closes the channel (not one the app gave). */
  close() {
    if (this.#ownChannel) this.#tables.close();
  }
}

/**
 * The cache directory: one file per name, each replaced whole. No file is
 * opened through a symbolic link (O_NOFOLLOW): the client makes none, so
 * one there was planted (a `.part` linked to a file of the user's, to have
 * it read as a table or cut), and it is removed, the link itself, as if
 * the file were missing: a partial download starts afresh.
 */
function directoryStore(dir) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // What a crash left between writing a file and renaming it.
  for (const name of readdirSync(dir)) if (name.startsWith(".tmp-")) rmSync(join(dir, name), { force: true });
  const { O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_WRONLY } = constants;
  /** `name` opened with `flags`, never through a link; undefined if it is missing (or was a link, now removed). */
  const open = (name, flags) => {
    try {
      return openSync(join(dir, name), flags | O_NOFOLLOW, 0o600);
    } catch (e) {
      if (e.code === "ENOENT") return undefined;
      if (e.code !== "ELOOP") throw e;
      rmSync(join(dir, name), { force: true }); // unlinks the link, not its target
      return undefined;
    }
  };
  return {
    read(name) {
      const fd = open(name, O_RDONLY);
      if (fd === undefined) return undefined;
      try {
        return new Uint8Array(readFileSync(fd));
      } finally {
        closeSync(fd);
      }
    },
    write(name, bytes) {
      // Whole or not at all: a crash leaves the old file. The temporary
      // file is new (O_EXCL) and never a link someone planted (O_NOFOLLOW).
      const tmp = join(dir, `.tmp-${randomBytes(8).toString("hex")}-${name}`);
      const fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
      try {
        for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, join(dir, name));
    },
    append(name, bytes) {
      // A link removed by the first open: the second creates the file (and
      // throws its own error if anything is in the way again).
      const flags = O_WRONLY | O_APPEND | O_CREAT;
      const fd = open(name, flags) ?? openSync(join(dir, name), flags | O_EXCL | O_NOFOLLOW, 0o600);
      try {
        for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at);
      } finally {
        closeSync(fd);
      }
    },
    truncate(name, length) {
      const fd = open(name, O_WRONLY);
      if (fd === undefined) return;
      try {
        ftruncateSync(fd, length);
      } finally {
        closeSync(fd);
      }
    },
    remove(name) {
      rmSync(join(dir, name), { force: true });
    },
    list() {
      return readdirSync(dir);
    },
  };
}
