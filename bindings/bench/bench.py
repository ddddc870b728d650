"""The Python side of bindings/bench.sh: the same work as the native bench
(validate the table, make vouchers in batches of 64), through the wheel."""

import hashlib
import json
import sys
import time

import blindmatch

table_path, n_vouchers = sys.argv[1], int(sys.argv[2])
encoded = open(table_path, "rb").read()
t = time.perf_counter()
table = blindmatch.Table.open_unverified(encoded)
validate = time.perf_counter() - t
print(json.dumps({"binding": "python", "validate_s": round(validate, 3)}))
items = [
    blindmatch.ItemToCheck(
        item_type=blindmatch.ItemType.SHA256,
        value=hashlib.sha256((2 * i).to_bytes(4, "big")).digest(),
        associated_data=b"bench",
    )
    for i in range(64)
]
rounds = -(-n_vouchers // 64)
t = time.perf_counter()
for _ in range(rounds):
    table.submission(items)
per = (time.perf_counter() - t) / (rounds * 64) * 1e6
print(json.dumps({"binding": "python", "voucher_us": round(per, 1)}))
