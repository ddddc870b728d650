/**
 * The ready client for browsers, over Connect's gRPC-Web transport, with an optional store.
 *
 * @module blindmatch/web
 */
import type { Transport } from "@connectrpc/connect";
import type { OperatorKey } from "../web/blindmatch_wasm.js";
import { Flow, type FlowOptions } from "./flow.js";

export { Incomplete } from "./flow.js";
export type { FlowOptions, Item, Refreshed, Upload } from "./flow.js";

/**
 * Where the browser client keeps the history, the table and a partial
 * download across page loads (IndexedDB, say). Names are short strings;
 * values are byte strings of up to the table's size. `put` replaces a
 * value whole.
 */
export interface Store {
  /** The bytes stored under `name`, or undefined. */
  get(name: string): Promise<Uint8Array | undefined>;
  /** Stores `bytes` under `name`, replacing what was there. */
  put(name: string, bytes: Uint8Array): Promise<void>;
  /** Removes `name` (nothing if it is not there). */
  remove(name: string): Promise<void>;
  /**
   * Every name stored (optional). With it, the client removes the partial
   * downloads of other tables after each refresh (one of a version replaced
   * before it finished would stay otherwise); without it they stay.
   */
  list?(): Promise<string[]>;
}

/** The options of the browser client. */
export interface ClientOptions extends FlowOptions {
  /**
   * Keeps the history and the table across page loads (names prefixed with
   * the operator key's hex and `/`). Without it they live as long as the
   * client: a reload downloads the table again and forgets the history.
   */
  store?: Store;
  /**
   * A Connect transport the app made (`createGrpcWebTransport` with its
   * interceptors, its `fetch`, ...), used instead of one from the url: the
   * url is then null.
   */
  transport?: Transport;
}

/**
 * Checks items against a blindmatch server from a browser, over Connect's
 * gRPC-Web transport (the server runs with `--grpc-web-origin`). Call the
 * core's `init()` first.
 *
 * ```js
 * import init from "blindmatch";
 * import { Client } from "blindmatch/web";
 * await init();
 * const client = new Client("https://list.example", operatorKeyHex, { store });
 * await client.refresh();
 * await client.check([{ type: "sha256", value: hashBytes, associatedData }]);
 * ```
 */
export class Client extends Flow {
  /**
   * `url` is the server's gRPC-Web base URL, `http://HOST[:PORT]` or
   * `https://HOST[:PORT]` as the Node client takes it (a TypeError names
   * what is wrong), or null with a `transport`. `operatorKey` is the
   * operator's verifying key the app pins: an `OperatorKey` or 64 hex digits.
   */
  constructor(url: string | null, operatorKey: OperatorKey | string, options?: ClientOptions);
  /** Nothing to close: the transport holds no connection of its own. */
  close(): void;
}
