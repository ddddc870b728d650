// Threshold mode with the ready Node client: an account's uploads, which the
// server can open only once it holds t of the account's matches.
//
//   node threshold.mjs URL OPERATOR_KEY_HEX CACHE_DIR ACCOUNT_FILE ACCOUNT_ID MAX_UPLOADS \
//       ASSET=sha256:HEX[:NOTE] ...
//
// ACCOUNT_FILE holds the account's secret: made on the first run (its
// synthetic rate chosen from the table's synthetic bound s), then read back
// on every run and every device of the account. MAX_UPLOADS is the largest
// number of uploads the app expects the account to send under one
// threshold (candidates are kept across versions). ASSET names the upload
// (a photo's asset id, say): its voucher id is made from it, so the same
// upload counts once however often it is sent.
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { pathToFileURL } from "node:url";

import { Account, itemFromHex } from "blindmatch";
import { Client } from "blindmatch/client";

/**
 * The synthetic rate for an account that sends at most `maxUploads`
 * uploads under one threshold: s / 2N (README, "Choosing the synthetic
 * rate"), so its synthetic vouchers stay near half the bound s that the
 * table's detection guarantee allows.
 */
export function syntheticRate(manifest, maxUploads) {
  const s = manifest.syntheticBound;
  if (s === undefined) throw new Error("the table is version 1 (no threshold): use quickstart.mjs");
  return Math.min(1, s / (2 * maxUploads));
}

/** The account kept in `file`, made there (mode 0600) the first time. */
export function loadAccount(file, accountId, manifest, maxUploads) {
  try {
    return { account: Account.decode(readFileSync(file)), made: false };
  } catch (e) {
    if (e.code !== "ENOENT") throw e;
  }
  const account = Account.generate(new TextEncoder().encode(accountId), syntheticRate(manifest, maxUploads));
  // Exclusively: two first runs at once must not make two accounts.
  const fd = openSync(file, "wx", 0o600);
  try {
    writeSync(fd, account.encode());
  } finally {
    closeSync(fd);
  }
  return { account, made: true };
}

/** `ASSET=sha256:HEX[:NOTE]` as an upload. */
export function parseUpload(text) {
  const at = text.indexOf("=");
  const [type, hex, note = ""] = text.slice(at + 1).split(":");
  return {
    // 16 bytes named by the asset, the same on every run.
    voucherId: new Uint8Array(createHash("sha256").update(`voucher-id:${text.slice(0, at)}`).digest().subarray(0, 16)),
    type,
    value: itemFromHex(type, hex),
    associatedData: new TextEncoder().encode(note),
  };
}

// Run, not imported (pathToFileURL encodes the path as import.meta.url is).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [url, key, cacheDir, accountFile, accountId, maxUploads, ...texts] = process.argv.slice(2);
  const client = new Client(url, key, { cacheDir });
  try {
    const { version } = await client.refresh();
    const { threshold, syntheticBound } = client.manifest;
    if (syntheticBound === undefined) {
      console.error("the table is version 1 (no threshold): use quickstart.mjs");
      process.exit(2);
    }
    const { account, made } = loadAccount(accountFile, accountId, client.manifest, Number(maxUploads));
    // The rate is the account's secret: never printed.
    console.log(
      `table version ${version}: threshold ${threshold}, synthetic bound ${syntheticBound}; account ${made ? "made and saved" : "read"}`,
    );
    const n = await client.checkAccount(account, texts.map(parseUpload));
    console.log(`${n} vouchers acknowledged`);
  } catch (e) {
    if (e.name === "Incomplete") {
      // Earlier batches are stored: send only the rest again, later.
      console.error(`${e.message}; ${e.remaining.length} uploads to send again`);
      process.exit(3);
    }
    if (e.name !== "BlindmatchError") throw e;
    console.error(`refused (${e.kind}): ${e.message}`);
    process.exit(1);
  } finally {
    client.close();
  }
}
