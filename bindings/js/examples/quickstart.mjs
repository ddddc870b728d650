// The ready Node client, `Client` from "blindmatch/client": check items
// against a blindmatch server in both modes.
//
//   node quickstart.mjs URL OPERATOR_KEY_HEX CACHE_DIR sha256:HEX[:NOTE] ...
//
// Version 1 (every listed item reported at once); threshold.mjs is the
// threshold mode with an account, refused.mjs what an app does when a
// table is refused.
//
// The acknowledgement is the same whether an item matched or not: the app
// learns nothing about the list, and the server only learns the listed items
// (in threshold mode, once an account holds t of them).
import { pathToFileURL } from "node:url";

import { itemFromHex } from "blindmatch";
import { Client } from "blindmatch/client";

/** Version 1: every listed item is reported to the operator at once. */
export async function checkItems(url, operatorKey, cacheDir, items) {
  const client = new Client(url, operatorKey, { cacheDir });
  try {
    await client.refresh(); // verify the manifest, bring the table up to date
    return await client.check(items); // how many vouchers were acknowledged
  } finally {
    client.close();
  }
}

/** Threshold mode: the server learns nothing about `account` until it holds
 * t matches. `account` is the account's secret (`Account.generate(id, rate)`
 * once, then kept with its other secrets and restored with
 * `Account.decode`); each upload keeps its `voucherId` across retries, so it
 * counts once. */
export async function checkUploads(url, operatorKey, cacheDir, account, uploads) {
  const client = new Client(url, operatorKey, { cacheDir });
  try {
    await client.refresh();
    return await client.checkAccount(account, uploads);
  } finally {
    client.close();
  }
}

/** `sha256:HEX[:NOTE]` as an item to check, the note its associated data. */
export function parseItem(text) {
  const [type, hex, note = ""] = text.split(":");
  return { type, value: itemFromHex(type, hex), associatedData: new TextEncoder().encode(note) };
}

// Run, not imported (pathToFileURL encodes the path as import.meta.url is).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [url, key, cacheDir, ...texts] = process.argv.slice(2);
  try {
    const n = await checkItems(url, key, cacheDir, texts.map(parseItem));
    console.log(`${n} vouchers acknowledged`);
  } catch (e) {
    if (e.name === "Incomplete") {
      // Earlier batches are stored: send only `e.remaining` again, later
      // (all of them again would record the acknowledged ones twice).
      console.error(`${e.message}; ${e.remaining.length} items to send again`);
      process.exit(3);
    }
    // A refused table (kind BadSignature, Rollback, ...): the table held
    // stays; report it and try again at the next refresh (refused.mjs).
    if (e.name !== "BlindmatchError") throw e;
    console.error(`refused (${e.kind}): ${e.message}`);
    process.exit(1);
  }
}
