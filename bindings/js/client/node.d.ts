// The ready Node client (client/node.mjs): types.
import type { ChannelCredentials } from "@grpc/grpc-js";
import type { Account, LogPolicy, Manifest, OperatorKey, Quorum } from "../node/blindmatch_wasm.js";

export interface ClientOptions {
  /** The history and the table persist here (one directory per operator key). */
  cacheDir?: string;
  /** Refuse a table not co-signed by enough of these organisations (SPEC 15.6). */
  quorum?: Quorum;
  /** Refuse a table not in the operator's transparency log (SPEC 16.6). */
  logPolicy?: LogPolicy;
  /** Refuse a table built longer ago than this. */
  maxAgeSeconds?: number;
  /** Deadline of each call (default 30,000). */
  timeoutMs?: number;
  /** Deadline of a whole table download or delta (default 600,000). */
  downloadTimeoutMs?: number;
  /** Tries per call (default 5). */
  attempts?: number;
  /** Wait before the second try (default 200); the core's Backoff does the rest. */
  firstDelayMs?: number;
  /** TLS credentials for an https:// url (default: Node's roots). */
  credentials?: ChannelCredentials;
}

/** An item to check in version 1. */
export interface Item {
  /** "sha256", "sha1", "md5", "pdq" or "bytes". */
  type: string;
  /** The hash's bytes. */
  value: Uint8Array;
  /** At most 1,024 bytes, for the operator's match record. */
  associatedData?: Uint8Array;
}

/** An upload in threshold mode. */
export interface Upload extends Item {
  /** 16 bytes, the same on every retry: the upload counts once. */
  voucherId: Uint8Array;
}

export interface Refreshed {
  version: number;
  how: "held" | "cached" | "delta" | "download";
}

export class Client {
  constructor(url: string, operatorKey: OperatorKey | string, options?: ClientOptions);
  /** The manifest of the table held, once refreshed. */
  readonly manifest: Manifest | undefined;
  refresh(): Promise<Refreshed>;
  check(items: Item[]): Promise<number>;
  checkAccount(account: Account, uploads: Upload[]): Promise<number>;
  close(): void;
}
