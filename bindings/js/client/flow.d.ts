/**
 * What both ready clients share (client/flow.mjs): the flow their `Client`
 * extends and the types they take and give. Import them from
 * "blindmatch/client" or "blindmatch/web".
 *
 * @module shared
 */
import type { Account, LogPolicy, Manifest, Quorum } from "../web/blindmatch_wasm.js";

/** The options every ready client takes. */
export interface FlowOptions {
  /** Refuse a table not co-signed by enough of these organisations (SPEC 15.6). */
  quorum?: Quorum;
  /** Refuse a table not in the operator's transparency log (SPEC 16.6). */
  logPolicy?: LogPolicy;
  /** Refuse a table built longer ago than this. */
  maxAgeSeconds?: number;
  /** Deadline of each call, in milliseconds (default 30,000). */
  timeoutMs?: number;
  /** Deadline of each attempt at a table download or a delta, in milliseconds (default 600,000). */
  downloadTimeoutMs?: number;
  /** Tries per call (default 5). */
  attempts?: number;
  /** Wait before the second try, in milliseconds (default 200); the core's `Backoff` does the rest. */
  firstDelayMs?: number;
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
  /** 16 bytes, the same on every retry and after a restart: the upload counts once. */
  voucherId: Uint8Array;
}

/** What `refresh` did. */
export interface Refreshed {
  /** The version of the table now held. */
  version: number;
  /**
   * "held" (already up to date), "cached" (from the cache directory or the
   * store), "delta" (the slots changed since the table held) or "download"
   * (in full, every chunk checked).
   */
  how: "held" | "cached" | "delta" | "download";
  /**
   * Why the delta from the table held was refused when one was tried and
   * the table was downloaded in full instead: the server's status (its
   * gRPC code name and message, such as `NOT_FOUND: ...`) or the core's
   * error message. Undefined otherwise.
   */
  deltaRefused?: string;
}

/**
 * A `check` or `checkAccount` that failed after submitting began. Earlier
 * batches were acknowledged and are stored; retry with `remaining` only:
 * checking every item again would submit the acknowledged ones again under
 * new submission ids, and a version-1 server would record them twice.
 * Errors before the first Submit is sent (the refresh that gets the first
 * table, a `Mode` error for a table of the other mode, an `Input` error or a
 * TypeError for a bad item in the first batch) are thrown as they are.
 *
 * Its message reads the same in every client:
 * `${acknowledged} of ${total} acknowledged; the rest failed: ${detail}`,
 * `detail` being `CODE_NAME: details` for a call's status (the gRPC status
 * name, such as `UNAVAILABLE`, and the server's message) or the core's
 * message for a `BlindmatchError`.
 */
export class Incomplete<T = Item | Upload> extends Error {
  /** "Incomplete". */
  readonly name: "Incomplete";
  /** Vouchers acknowledged by the earlier batches of this call. */
  readonly acknowledged: number;
  /** The items (or uploads) of this call not acknowledged, in the order given: from the first batch that failed to the end. */
  readonly remaining: T[];
  /** The failure: a call's error once its retries are spent, or a `BlindmatchError` (a refresh the server asked for that was refused). */
  readonly cause: unknown;
}

/**
 * The flow both ready clients share (their `Client` extends it): verify
 * the manifest, bring the table up to date, submit, retry. One call runs
 * at a time: calls made together take turns.
 */
export class Flow {
  protected constructor();
  /** The manifest of the table held, once refreshed (its `syntheticBound`, `threshold`, `version`, ...). */
  get manifest(): Manifest | undefined;
  /**
   * Fetches the manifest, verifies it (the operator key, then the quorum,
   * the log and the age if the options ask, then the history: no rollback,
   * no equivocation) and brings the table up to its version: from memory,
   * the store, a delta or a resumable download. Rejects with a
   * `BlindmatchError` (kind `BadSignature`, `Rollback`, `Equivocation`,
   * `Quorum`, `Log`, `Stale`, `Invalid`, ...; bindings/ERRORS.md) if the
   * manifest or the table is refused: the table held stays in use. Rejects
   * with the call's error once its retries are spent.
   */
  refresh(): Promise<Refreshed>;
  /**
   * Version 1: submits `items` in batches of the server's size (a
   * `refresh` first if no table is held); resolves to how many vouchers
   * were acknowledged, which says nothing about matches. A Submit refused
   * because the server moved to another table (FAILED_PRECONDITION) makes
   * the client refresh and make that batch again, once. Rejects with
   * `Incomplete` once submitting began.
   */
  check(items: Item[]): Promise<number>;
  /**
   * Threshold mode: submits `uploads` under `account`, as `check` does.
   * The server learns nothing about the account until it holds the table's
   * threshold of its matches.
   */
  checkAccount(account: Account, uploads: Upload[]): Promise<number>;
}
