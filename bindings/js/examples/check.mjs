// Check items against a blindmatch server from Node: the whole flow.
//
// The app keeps its own gRPC stack (here @grpc/grpc-js, with the messages
// loaded from proto/proto/blindmatch/v1/blindmatch.proto by
// @grpc/proto-loader); the blindmatch package decides what to trust and what
// to send.
//
//   node examples/check.mjs URL OPERATOR_KEY_HEX sha256:HEX[:ASSOCIATED_DATA] ...
import { fileURLToPath, pathToFileURL } from "node:url";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import { Backoff, DeltaDownload, History, Manifest, OperatorKey, TableDownload, itemFromHex } from "blindmatch";

/** The TableService and VoucherService clients for `target` (host:port). */
export function connect(protoPath, target) {
  const definition = protoLoader.loadSync(protoPath, { longs: Number, defaults: true });
  const v1 = grpc.loadPackageDefinition(definition).blindmatch.v1;
  const credentials = grpc.credentials.createInsecure();
  return {
    tables: new v1.TableService(target, credentials),
    vouchers: new v1.VoucherService(target, credentials),
  };
}

const unary = (client, method, request) =>
  new Promise((resolve, reject) => client[method](request, (err, response) => (err ? reject(err) : resolve(response))));

/** The current table, verified: a delta from `held` if one applies, else a
 * full download checked chunk by chunk. Throws a BlindmatchError (kind
 * Rollback, Equivocation, BadSignature, Invalid) for what must be refused. */
export async function fetchTable({ tables }, history, held) {
  const response = await unary(tables, "GetManifest", {});
  // Only the signed statement is trusted; the other fields are copies.
  const manifest = Manifest.verify(response.statement, response.signature, history.operator());
  const accepted = history.check(manifest); // throws Rollback or Equivocation
  let table;
  if (held && Buffer.from(held.tableId).equals(Buffer.from(manifest.tableId))) {
    table = held;
  } else if (held) {
    try {
      const delta = new DeltaDownload(held, manifest);
      const stream = tables.DownloadDelta({ fromTableId: held.tableId, toTableId: manifest.tableId });
      for await (const chunk of stream) delta.push(chunk.indices, chunk.slots);
      table = delta.finish(held);
    } catch {
      table = undefined; // no usable delta: download in full
    }
  }
  if (!table) {
    const download = new TableDownload(manifest);
    const stream = tables.DownloadTable({ tableId: manifest.tableId, offset: download.offset });
    for await (const chunk of stream) download.push(chunk.offset, chunk.slots, chunk.proof);
    table = download.finish();
  }
  history.record(accepted); // once the table is in hand
  return { manifest, maxBatch: response.maxBatch, table };
}

/** Submits `items` ([type, value, associatedData], or with an `account`
 * in threshold mode [voucherId, type, value, associatedData]) in batches
 * of `maxBatch`; returns how many were acknowledged. Each batch is retried,
 * unchanged, as the core's Backoff allows, so the server stores it once. */
export async function submit({ vouchers }, table, items, maxBatch, account) {
  let acknowledged = 0;
  for (let start = 0; start < items.length; start += maxBatch) {
    let s;
    if (account) {
      const batch = table.accountBatch();
      for (const [id, type, value, ad] of items.slice(start, start + maxBatch)) batch.add(id, type, value, ad);
      s = table.accountSubmission(account, batch);
    } else {
      const batch = table.batch();
      for (const [type, value, ad] of items.slice(start, start + maxBatch)) batch.add(type, value, ad);
      s = table.submission(batch);
    }
    const request = { tableId: s.tableId, vouchers: s.vouchers, submissionId: s.id, accountId: s.accountId };
    const backoff = new Backoff(5, 200);
    for (;;) {
      try {
        acknowledged += (await unary(vouchers, "Submit", request)).accepted;
        break;
      } catch (err) {
        if (err.name === "BlindmatchError" || err.code === undefined) throw err;
        const pushback = err.metadata?.get("grpc-retry-pushback-ms")?.[0]?.toString();
        const waitMs = backoff.retry(err.code, pushback);
        if (waitMs === undefined) throw err;
        await new Promise((r) => setTimeout(r, waitMs));
      }
    }
  }
  return acknowledged;
}

// Run, not imported (pathToFileURL encodes the path as import.meta.url is).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [url, operatorHex, ...args] = process.argv.slice(2);
  const proto = fileURLToPath(new URL("../../../proto/proto/blindmatch/v1/blindmatch.proto", import.meta.url));
  const clients = connect(proto, url.replace(/^http:\/\//, ""));
  const history = new History(OperatorKey.fromHex(operatorHex)); // an app restores its saved one
  const { manifest, maxBatch, table } = await fetchTable(clients, history);
  const items = args.map((a) => {
    const [type, hex, ad = ""] = a.split(":");
    return [type, itemFromHex(type, hex), new TextEncoder().encode(ad)];
  });
  const n = await submit(clients, table, items, maxBatch);
  console.log(`table version ${manifest.version}: ${n} vouchers acknowledged`);
  process.exit(0);
}
