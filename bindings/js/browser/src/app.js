// The page: the packaged browser client ("blindmatch/web") verifies the
// operator's manifest and brings the table up to date (kept in IndexedDB
// across page loads); for a picked file, SHA-256 with WebCrypto, then
// `check` (version 1) or `checkAccount` (threshold mode, `account=ID` in the
// page's URL) makes the voucher in WebAssembly and submits it over gRPC-Web.
import init, { Account, Quorum } from "blindmatch";
import { Client } from "blindmatch/web";

const params = new URLSearchParams(location.search);
const status = document.getElementById("status");
const show = (text) => {
  status.textContent = text;
};

/**
 * The client's store in IndexedDB: one object store of byte strings by
 * name (what `Client`'s `store` option takes).
 */
function indexedDbStore(name = "blindmatch") {
  const db = new Promise((resolve, reject) => {
    const open = indexedDB.open(name, 1);
    open.onupgradeneeded = () => open.result.createObjectStore("files");
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  const request = async (mode, op) => {
    const tx = (await db).transaction("files", mode);
    const req = op(tx.objectStore("files"));
    return new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = tx.onabort = () => reject(tx.error);
    });
  };
  return {
    get: (key) => request("readonly", (s) => s.get(key)),
    put: async (key, bytes) => void (await request("readwrite", (s) => s.put(bytes, key))),
    remove: async (key) => void (await request("readwrite", (s) => s.delete(key))),
  };
}

/** The account of this page, in threshold mode: made once, kept in IndexedDB. */
async function pageAccount(store, manifest) {
  const saved = await store.get("account");
  if (saved) return Account.decode(saved);
  // The rate from the table's synthetic bound s: s / 2N for at most N =
  // 1,000 uploads under one threshold (README, "Choosing the synthetic rate").
  const account = Account.generate(new TextEncoder().encode(params.get("account")), manifest.syntheticBound / 2000);
  await store.put("account", account.encode());
  return account;
}

async function main() {
  await init({ module_or_path: "./blindmatch_wasm_bg.wasm" });
  // An app that pins list organisations (`orgs`: their keys, comma-separated)
  // requires `quorum` of them (default: all) to have co-signed (SPEC 15.6).
  const orgs = params.get("orgs")?.split(",").filter(Boolean) ?? [];
  const quorum = orgs.length > 0 ? new Quorum(orgs, Number(params.get("quorum") ?? orgs.length)) : undefined;
  const store = indexedDbStore();
  // An app ships the operator key; the client keeps the history and the
  // table in the store.
  const client = new Client(params.get("server"), params.get("operator"), { quorum, store });
  const { version, how } = await client.refresh(); // throws Quorum, BadSignature, Rollback, ...
  const { cosigners, threshold } = client.manifest;
  const account = params.get("account") ? await pageAccount(store, client.manifest) : undefined;
  const signed = cosigners.length ? `, co-signed by ${cosigners.join(", ")}` : "";
  const mode = account ? `, threshold ${threshold}` : "";
  show(`table version ${version} verified (${how})${signed}${mode}; pick a file`);

  const button = document.getElementById("check");
  button.disabled = false;
  button.addEventListener("click", async () => {
    const file = document.getElementById("file").files[0];
    if (!file) return show("pick a file first");
    button.disabled = true;
    try {
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await file.arrayBuffer()));
      const item = { type: "sha256", value: digest, associatedData: new TextEncoder().encode(document.getElementById("ad").value) };
      let n;
      if (account) {
        // The upload's voucher id: the same for the same file name, so a
        // file sent again counts once.
        const id = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`voucher-id:${file.name}`));
        n = await client.checkAccount(account, [{ ...item, voucherId: new Uint8Array(id).slice(0, 16) }]);
      } else {
        n = await client.check([item]);
      }
      show(`${file.name}: acknowledged (${n} voucher)`);
    } catch (e) {
      show(`${file.name}: error: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  });
}

main().catch((e) => show(`error: ${e.message}`));
