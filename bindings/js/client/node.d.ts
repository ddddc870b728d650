/**
 * The ready client for Node, over @grpc/grpc-js, with a cache directory.
 *
 * @module blindmatch/client
 */
import type { Channel, ChannelCredentials, Interceptor } from "@grpc/grpc-js";
import type { OperatorKey } from "../web/blindmatch_wasm.js";
import { Flow, type FlowOptions } from "./flow.js";

export { Incomplete } from "./flow.js";
export type { FlowOptions, Item, Refreshed, Upload } from "./flow.js";

/** The options of the Node client. */
export interface ClientOptions extends FlowOptions {
  /**
   * The history and the table persist here, one directory per operator
   * key (created, mode 0700). For one client at a time: two processes that
   * write one directory can set each other's history back. No file there is
   * opened through a symbolic link: the client makes none, and removes one
   * it finds in a file's place. After each refresh the partial downloads
   * of other tables are removed.
   */
  cacheDir?: string;
  /** TLS credentials for an https:// url (default: Node's roots). */
  credentials?: ChannelCredentials;
  /** grpc-js interceptors on every call (an app that authenticates its account ids adds metadata here). */
  interceptors?: Interceptor[];
  /** A channel the app made (grpc-js's `channelOverride`), used instead of one from the url: the url is then null. `close()` leaves it open. */
  channel?: Channel;
}

/**
 * Checks items against a blindmatch server from Node, over @grpc/grpc-js.
 *
 * ```js
 * import { Client } from "blindmatch/client";
 * const client = new Client("https://list.example", operatorKeyHex, { cacheDir });
 * await client.refresh();
 * await client.check([{ type: "sha256", value: hashBytes, associatedData }]);
 * client.close();
 * ```
 */
export class Client extends Flow {
  /**
   * `url` is `http://HOST[:PORT]` (plaintext: loopback or a trusted
   * network) or `https://HOST[:PORT]` (TLS): HOST a name, an IPv4 address or
   * a bracketed IPv6 address; PORT 1 to 65535 (default 443 for https, 80
   * for http); no path (not even `/`), query, fragment or user info. Throws
   * a TypeError naming the url and what is wrong. `operatorKey` is the
   * operator's verifying key the app pins: an `OperatorKey` or 64 hex digits.
   */
  constructor(url: string | null, operatorKey: OperatorKey | string, options?: ClientOptions);
  /** Closes the channel (not one the app gave as `channel`). */
  close(): void;
}
