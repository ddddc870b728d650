"""Check items against a blindmatch server from Python: the whole flow.

This is the layer below `blindmatch.Client`, for an app that keeps its own
networking: here grpcio, with the stubs the package carries
(`blindmatch.v1`); the `blindmatch` core decides what to trust and what to
send.

    python examples/check.py URL OPERATOR_KEY_HEX sha256:HEX[:ASSOCIATED_DATA] ...
"""

import sys
import time

import grpc

import blindmatch
from blindmatch.v1 import blindmatch_pb2 as pb
from blindmatch.v1 import blindmatch_pb2_grpc as rpc


def fetch_table(channel, history, held=None):
    """The current table, verified: a delta from `held` if it applies,
    else a full download checked chunk by chunk. Returns (manifest,
    max_batch, table)."""
    tables = rpc.TableServiceStub(channel)
    response = tables.GetManifest(pb.GetManifestRequest(), timeout=30)
    # Only the signed statement is trusted; the other fields are copies.
    manifest = blindmatch.Manifest.verify(
        response.statement, response.signature, history.operator()
    )
    accepted = history.check(manifest)  # raises Rollback or Equivocation
    table = None
    if held is not None and held.table_id() == manifest.table_id():
        table = held
    elif held is not None:
        delta = blindmatch.DeltaDownload(held, manifest)
        request = pb.DownloadDeltaRequest(
            from_table_id=held.table_id(), to_table_id=manifest.table_id()
        )
        try:
            for chunk in tables.DownloadDelta(request, timeout=60):
                delta.push(chunk.indices, chunk.slots)
            table = delta.finish()
        except (grpc.RpcError, blindmatch.BlindmatchError):
            table = None  # no usable delta: download in full
    if table is None:
        download = blindmatch.TableDownload(manifest)
        request = pb.DownloadTableRequest(
            table_id=manifest.table_id(), offset=download.offset()
        )
        for chunk in tables.DownloadTable(request, timeout=300):
            download.push(chunk.offset, chunk.slots, list(chunk.proof))
        table = download.finish()
    history.record(accepted)  # once the table is in hand
    return manifest, response.max_batch, table


def submit(channel, table, items, max_batch, account=None):
    """Submits `items` in batches; returns the number acknowledged. Items
    are blindmatch.ItemToCheck, or with an `account` (threshold mode)
    blindmatch.Upload. Each batch is retried, unchanged, as the core's
    Backoff allows, so the server stores it once."""
    vouchers = rpc.VoucherServiceStub(channel)
    acknowledged = 0
    for start in range(0, len(items), max_batch):
        chunk = items[start : start + max_batch]
        if account is None:
            batch = table.submission(chunk)
        else:
            batch = table.account_submission(account, chunk)
        request = pb.SubmitRequest(
            table_id=batch.table_id,
            vouchers=batch.vouchers,
            submission_id=batch.id,
            account_id=batch.account_id,
        )
        backoff = blindmatch.Backoff(5, 200)
        while True:
            try:
                acknowledged += vouchers.Submit(request, timeout=30).accepted
                break
            except grpc.RpcError as e:
                trailers = dict(e.trailing_metadata() or ())
                wait_ms = backoff.retry(
                    e.code().value[0], trailers.get("grpc-retry-pushback-ms")
                )
                if wait_ms is None:
                    raise
                time.sleep(wait_ms / 1000)
    return acknowledged


def parse_item(text):
    """`sha256:HEX[:ASSOCIATED_DATA]` as an item to check."""
    kind, value, *ad = text.split(":", 2)
    item_type = getattr(blindmatch.ItemType, kind.upper())
    return blindmatch.ItemToCheck(
        item_type=item_type,
        value=blindmatch.item_from_hex(item_type, value),
        associated_data=(ad[0] if ad else "").encode(),
    )


def main(argv):
    url, operator_hex, *items = argv
    operator = blindmatch.OperatorKey.from_hex(operator_hex)
    history = blindmatch.History(operator)  # an app restores its saved one
    target = url.removeprefix("http://")
    with grpc.insecure_channel(target) as channel:
        manifest, max_batch, table = fetch_table(channel, history)
        n = submit(channel, table, [parse_item(i) for i in items], max_batch)
    print(f"table version {manifest.version()}: {n} vouchers acknowledged")


if __name__ == "__main__":
    main(sys.argv[1:])
