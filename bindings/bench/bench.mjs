// The WebAssembly side of bindings/bench.sh, in Node: the same work as the
// native bench (validate the table, make vouchers in batches of 64).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { Table } from "blindmatch";

const [tablePath, nVouchers] = process.argv.slice(2);
const encoded = readFileSync(tablePath);
let t = performance.now();
const table = Table.openUnverified(encoded);
const validate = (performance.now() - t) / 1000;
console.log(JSON.stringify({ binding: "wasm-node", validate_s: +validate.toFixed(3) }));
const values = [];
for (let i = 0; i < 64; i++) {
  const be = Buffer.alloc(4);
  be.writeUInt32BE(2 * i);
  values.push(createHash("sha256").update(be).digest());
}
const ad = new TextEncoder().encode("bench");
const rounds = Math.ceil(Number(nVouchers) / 64);
t = performance.now();
for (let r = 0; r < rounds; r++) {
  const batch = table.batch();
  for (const v of values) batch.add("sha256", v, ad);
  table.submission(batch).free();
  batch.free();
}
const per = ((performance.now() - t) / (rounds * 64)) * 1000;
console.log(JSON.stringify({ binding: "wasm-node", voucher_us: +per.toFixed(1) }));
