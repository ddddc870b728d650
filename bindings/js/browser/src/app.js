// The page's flow: verify the operator's manifest, download the table (each
// chunk checked), then for a picked file: SHA-256 with WebCrypto, a voucher
// in WebAssembly, Submit over gRPC-Web (Connect's transport).
import init, { History, Manifest, OperatorKey, Quorum, TableDownload } from "blindmatch";
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { TableService, VoucherService } from "../gen/blindmatch/v1/blindmatch_pb.js";

const params = new URLSearchParams(location.search);
const status = document.getElementById("status");
const show = (text) => { status.textContent = text; };

async function main() {
  await init({ module_or_path: "./blindmatch_wasm_bg.wasm" });
  const transport = createGrpcWebTransport({ baseUrl: params.get("server") });
  const tables = createClient(TableService, transport);
  const vouchers = createClient(VoucherService, transport);
  // An app ships the operator key and keeps the history (IndexedDB).
  const history = new History(OperatorKey.fromHex(params.get("operator")));

  const response = await tables.getManifest({});
  let manifest = Manifest.verify(response.statement, response.signature, history.operator());
  // An app that pins list organisations (`orgs`: their keys, comma-separated)
  // requires `quorum` of them (default: all) to have co-signed (SPEC 15.6).
  const orgs = params.get("orgs")?.split(",").filter(Boolean) ?? [];
  if (orgs.length > 0) {
    const quorum = new Quorum(orgs, Number(params.get("quorum") ?? orgs.length));
    manifest = manifest.requireQuorum(quorum, response.cosignatures); // throws Quorum
  }
  const accepted = history.check(manifest);
  const download = new TableDownload(manifest);
  for await (const chunk of tables.downloadTable({ tableId: manifest.tableId, offset: 0n })) {
    download.push(Number(chunk.offset), chunk.slots, chunk.proof);
  }
  const table = download.finish();
  history.record(accepted);
  const cosigners = manifest.cosigners.length ? `, co-signed by ${manifest.cosigners.join(", ")}` : "";
  show(`table version ${manifest.version} verified${cosigners}; pick a file`);

  const button = document.getElementById("check");
  button.disabled = false;
  button.addEventListener("click", async () => {
    const file = document.getElementById("file").files[0];
    if (!file) return show("pick a file first");
    button.disabled = true;
    try {
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await file.arrayBuffer()));
      const batch = table.batch();
      batch.add("sha256", digest, new TextEncoder().encode(document.getElementById("ad").value));
      const s = table.submission(batch);
      const r = await vouchers.submit({ tableId: s.tableId, vouchers: s.vouchers, submissionId: s.id });
      show(`${file.name}: acknowledged (${r.accepted} voucher)`);
    } catch (e) {
      show(`${file.name}: error: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  });
}

main().catch((e) => show(`error: ${e.message}`));
