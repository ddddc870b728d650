// The ready client for browsers: the shared flow (client/flow.mjs) over
// Connect's gRPC-Web transport, with the service's stubs generated into the
// package (client/gen, by buf and protoc-gen-es: nobody runs protoc).
//
// A browser has no disk: the history and the table live in the client. An
// app that wants them across page loads gives a `store` (an object with
// async get(name), put(name, bytes) and remove(name), and optionally
// list(); IndexedDB, say), and the client keeps the history, the table and
// a partial download there.
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import * as core from "blindmatch";
import { Flow, Incomplete, parseServerUrl } from "./flow.mjs";
import { TableService, VoucherService } from "./gen/blindmatch/v1/blindmatch_pb.js";

export { Incomplete };

// Connect's Code has gRPC's numbers; a request that never reached the
// server (fetch failed) is UNAVAILABLE, as gRPC would say.
const UNKNOWN = 2;
const UNAVAILABLE = 14;

export class Client extends Flow {
  /**
   * `url` is `http://HOST[:PORT]` or `https://HOST[:PORT]`, the server's
   * gRPC-Web base URL, or null with a Connect `transport`. Call the core's
   * `init()` (the default export of "blindmatch") first. See
   * client/web.d.ts for the options.
   */
  constructor(url, operatorKey, options = {}) {
    let connect = options.transport;
    if (connect) {
      if (url != null) throw new TypeError("a transport was given with a url: give one or the other");
    } else {
      connect = createGrpcWebTransport({ baseUrl: parseServerUrl(url).origin });
    }
    const tables = createClient(TableService, connect);
    const vouchers = createClient(VoucherService, connect);
    const timeoutMs = options.timeoutMs ?? 30_000;
    const downloadTimeoutMs = options.downloadTimeoutMs ?? 600_000;
    const transport = {
      getManifest: ({ logSize }) => tables.getManifest({ logSize: BigInt(logSize) }, { timeoutMs }),
      async *downloadTable({ tableId, offset }) {
        const stream = tables.downloadTable({ tableId, offset: BigInt(offset) }, { timeoutMs: downloadTimeoutMs });
        for await (const c of stream) yield { offset: Number(c.offset), slots: c.slots, proof: c.proof };
      },
      downloadDelta: (request) => tables.downloadDelta(request, { timeoutMs: downloadTimeoutMs }),
      submit: (request) => vouchers.submit(request, { timeoutMs }),
      status(e) {
        if (e?.name !== "ConnectError" || typeof e.code !== "number") return undefined;
        const unreached = e.code === UNKNOWN && e.cause instanceof TypeError;
        return {
          code: unreached ? UNAVAILABLE : e.code,
          message: e.rawMessage ?? e.message,
          pushback: e.metadata?.get("grpc-retry-pushback-ms") ?? undefined,
        };
      },
    };
    const key = typeof operatorKey === "string" ? core.OperatorKey.fromHex(operatorKey.trim()) : operatorKey;
    const store = options.store ? appStore(options.store, key.toHex()) : undefined;
    super({ core, transport, store, operatorKey: key, options });
  }

  /** Nothing to close: the transport holds no connection of its own. */
  close() {}
}

/**
 * The app's store, its names prefixed with the operator key (one store can
 * serve several clients). A partial download is kept in memory and written
 * to the store each time it has grown by half again (at least 1 MiB): what
 * is written is always a prefix, which a resume cuts to whole chunks, and
 * the writes add up to a few times the table's size, not its square.
 */
function appStore(store, prefix) {
  const parts = new Map(); // name -> { chunks, length, saved }
  const key = (name) => `${prefix}/${name}`;
  // The flow clears stale partial downloads only through list(): a store
  // without one keeps them (an app's store may not be able to list).
  const list =
    typeof store.list === "function"
      ? async () => {
          const stored = (await store.list()).filter((k) => k.startsWith(`${prefix}/`)).map((k) => k.slice(prefix.length + 1));
          return [...new Set([...stored, ...parts.keys()])];
        }
      : undefined;
  const concat = (chunks, length) => {
    const out = new Uint8Array(length);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  };
  return {
    async read(name) {
      const part = parts.get(name);
      if (part) return concat(part.chunks, part.length);
      const bytes = await store.get(key(name));
      return bytes == null ? undefined : new Uint8Array(bytes);
    },
    write: (name, bytes) => store.put(key(name), bytes),
    async append(name, bytes) {
      let part = parts.get(name);
      if (!part) parts.set(name, (part = { chunks: [], length: 0, saved: 0 }));
      part.chunks.push(new Uint8Array(bytes));
      part.length += bytes.length;
      if (part.length - part.saved >= Math.max(1 << 20, part.saved / 2)) {
        const whole = concat(part.chunks, part.length);
        part.chunks = [whole];
        await store.put(key(name), whole);
        part.saved = whole.length;
      }
    },
    async truncate(name, length) {
      const bytes = await this.read(name);
      if (bytes === undefined) return;
      parts.set(name, { chunks: [bytes.subarray(0, length)], length, saved: length });
    },
    async remove(name) {
      parts.delete(name);
      await store.remove(key(name));
    },
    ...(list && { list }),
  };
}
