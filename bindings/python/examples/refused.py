"""What an app does when the server offers a table it must refuse: a
signature that does not verify under the pinned key, an older version than
one seen before (a rollback), another table under a version seen before
(equivocation), too few co-signers, a table missing from the log.

    python refused.py URL OPERATOR_KEY_HEX CACHE_DIR sha256:HEX[:NOTE] ...

The rule: never check against a table that did not verify. Keep the one
held (it verified), tell someone, and try again at the next refresh. Every
kind and what to do: bindings/ERRORS.md.
"""

import sys

from quickstart import parse_item  # the example next to this one

import blindmatch

# Refusals of the table itself: the server (or someone between) offers a
# table this app must not use. Transient failures are grpc.RpcError.
REFUSED = (
    blindmatch.BlindmatchError.BadSignature,
    blindmatch.BlindmatchError.Rollback,
    blindmatch.BlindmatchError.Equivocation,
    blindmatch.BlindmatchError.Quorum,
    blindmatch.BlindmatchError.Log,
    blindmatch.BlindmatchError.TooOld,
)


def refresh_or_keep(client):
    """Refreshes; on a refused table keeps the one held, if any. Returns
    whether the client holds a verified table to check against."""
    try:
        client.refresh()
    except REFUSED as e:
        # An alert for the app's operators: the kind and the message (it
        # never carries an item or a key).
        print(f"refused a table ({type(e).__name__}): {e}", file=sys.stderr)
    return client.manifest() is not None


def main(url, operator_key, cache_dir, texts):
    with blindmatch.Client(url, operator_key, cache_dir=cache_dir) as client:
        if not refresh_or_keep(client):
            # Nothing verified held: nothing is checked, nothing is sent.
            print("no verified table: uploads are not checked until one verifies")
            return 3
        print(f"{client.check([parse_item(t) for t in texts])} vouchers acknowledged")
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
