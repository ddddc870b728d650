// The transparency log's client check in WebAssembly (Node), against the
// same check in native Rust (blindmatch-log-bench): Manifest.requireLogged on
// the log vectors' inclusion proof (SPEC 16.8), with the policy of the log
// and both witnesses (quorum 2).
import { readFileSync } from "node:fs";
import { LogPolicy, Manifest, OperatorKey } from "blindmatch";

const [vectorsPath, rounds = "2000"] = process.argv.slice(2);
const v = JSON.parse(readFileSync(vectorsPath, "utf8"));
const hex = (s) => Uint8Array.from(Buffer.from(s, "hex"));
const policy = LogPolicy.parse(
  `log ${v.log.vkey}\n` + v.witnesses.map((w) => `witness ${w.name} ${w.vkey}\n`).join("") +
    `group both all ${v.witnesses.map((w) => w.name).join(" ")}\nquorum both\n`,
);
// Entry 0 (no co-signatures): "BMLE" 0x01, I2OSP(len, 2), statement || signature, 0x00.
const entry = hex(v.entries[0].encoding);
const len = (entry[5] << 8) | entry[6];
const signed = entry.slice(7, 7 + len);
const manifest = Manifest.verify(
  signed.slice(0, len - 64),
  signed.slice(len - 64),
  OperatorKey.fromHex(v.operator_verifying_key),
);
const proof = v.inclusion[0].tlog_proof;
manifest.requireLogged(policy, proof, [], []).free();
const n = Number(rounds);
const t = performance.now();
for (let i = 0; i < n; i++) manifest.requireLogged(policy, proof, [], []).free();
const us = ((performance.now() - t) / n) * 1000;
console.log(JSON.stringify({ binding: "wasm-node", log_check_us: +us.toFixed(1), proof_bytes: proof.length }));
