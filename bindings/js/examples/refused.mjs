// A refused table, and what the app does: keep the table it holds, go on
// checking with it, alert, and never fall back to anything unverified.
//
//   node refused.mjs URL OPERATOR_KEY_HEX EVERY_MS sha256:HEX[:NOTE] ...
//
// A long-running app in small: one item arrives per round (every EVERY_MS
// milliseconds); each round refreshes the table, then checks what is
// queued. A refresh can be refused: a manifest not signed by the pinned
// operator key (BadSignature: another server answered, or the operator's
// key changed without the app being told), an older version than one
// already seen (Rollback), two tables for one version (Equivocation), or
// a quorum, log or age the app requires and the table lacks. The client
// then keeps the table it holds and its history: the app alerts and goes
// on. A process that starts with a refused table holds no verified table
// until a refresh succeeds, and checks nothing until then: it never falls
// back to an unverified table. A check whose submissions the server
// refused (it holds no such table any more, and the refresh it asks for is
// refused too) fails as `Incomplete`: the items not acknowledged stay
// queued for a later round.
import { pathToFileURL } from "node:url";

import { itemFromHex } from "blindmatch";
import { Client } from "blindmatch/client";

// The refusals that mean "do not trust this table" (bindings/ERRORS.md),
// as the Python and Kotlin examples have them. Not History or Invalid: a
// saved history that does not verify or a table whose data does not is a
// bug or a broken cache, thrown, not a table to refuse and carry on.
const REFUSED = new Set(["BadSignature", "Rollback", "Equivocation", "Quorum", "Log", "TooOld"]);

/** One round: refresh (a refusal keeps the table held), then check `queue`; resolves to what is still queued. */
export async function round(client, queue, say) {
  try {
    const { version, how } = await client.refresh();
    say(`table version ${version} (${how})`);
  } catch (e) {
    if (e.name !== "BlindmatchError" || !REFUSED.has(e.kind)) throw e;
    // An app raises this with whoever runs it: it is an attack or a
    // mistake, never a reason to stop verifying.
    say(`ALERT: table refused (${e.kind}): ${e.message}`);
    if (!client.manifest) {
      say(`no verified table yet: ${queue.length} items wait`);
      return queue;
    }
    say(`checking with the table held, version ${client.manifest.version}`);
  }
  try {
    const n = await client.check(queue);
    say(`${n} vouchers acknowledged`);
    return [];
  } catch (e) {
    if (e.name !== "Incomplete") throw e;
    say(`${e.acknowledged} acknowledged, ${e.remaining.length} queued again (${e.cause?.name ?? "error"}: ${e.cause?.kind ?? e.cause?.code})`);
    return e.remaining;
  }
}

// Run, not imported (pathToFileURL encodes the path as import.meta.url is).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [url, key, every, ...texts] = process.argv.slice(2);
  const items = texts.map((text) => {
    const [type, hex, note = ""] = text.split(":");
    return { type, value: itemFromHex(type, hex), associatedData: new TextEncoder().encode(note) };
  });
  // Few tries, so that a round ends soon when the server is not the right one.
  const client = new Client(url, key, { attempts: 3, firstDelayMs: 50 });
  let queue = [];
  try {
    for (let i = 0; i < items.length || queue.length > 0; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, Number(every)));
      if (i < items.length) queue.push(items[i]);
      queue = await round(client, queue, (text) => console.log(`round ${i + 1}: ${text}`));
      if (i >= items.length + 2) break; // the demo stops; an app would go on
    }
    console.log(`done: ${queue.length} items not submitted`);
  } finally {
    client.close();
  }
}
