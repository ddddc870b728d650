"""The ready client, `blindmatch.Client`: check items against a blindmatch
server in both modes.

    python examples/quickstart.py URL OPERATOR_KEY_HEX CACHE_DIR sha256:HEX[:NOTE] ...

The acknowledgement is the same whether an item matched or not: the app
learns nothing about the list, and the server only learns the listed
items (in threshold mode, once an account holds t of them).
"""

import sys

import blindmatch


def check_items(url, operator_key, cache_dir, items):
    """Version 1: every listed item is reported to the operator at once.
    (If the operator moves the list to threshold mode, `check` raises
    `BlindmatchError.Mode`: uploads then go with an account, check_uploads.)"""
    with blindmatch.Client(url, operator_key, cache_dir=cache_dir) as client:
        client.refresh()  # verify the manifest, bring the table up to date
        return client.check(items)  # how many vouchers were acknowledged


def check_uploads(url, operator_key, cache_dir, account, uploads):
    """Threshold mode: the server learns nothing about `account` until it
    holds t matches. `account` is the account's secret
    (`blindmatch.Account.generate(account_id, rate)` once, then kept with
    its other secrets and restored with `Account.decode`); each upload keeps
    its `voucher_id` across retries, so it counts once."""
    with blindmatch.Client(url, operator_key, cache_dir=cache_dir) as client:
        client.refresh()
        return client.check_account(account, uploads)


def parse_item(text):
    """`sha256:HEX[:NOTE]` as an item to check, the note its associated data."""
    kind, value, *note = text.split(":", 2)
    item_type = getattr(blindmatch.ItemType, kind.upper())
    return blindmatch.ItemToCheck(
        item_type=item_type,
        value=blindmatch.item_from_hex(item_type, value),
        associated_data=(note[0] if note else "").encode(),
    )


if __name__ == "__main__":
    url, key, cache, *texts = sys.argv[1:]
    try:
        n = check_items(url, key, cache, [parse_item(t) for t in texts])
    except blindmatch.BlindmatchError as e:
        # A refused table (bad signature, rollback, ...): the table held
        # stays; report it and try again at the next refresh.
        sys.exit(f"refused: {e}")
    print(f"{n} vouchers acknowledged")
