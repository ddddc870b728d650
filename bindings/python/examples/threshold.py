"""Threshold mode with the ready client: the server learns nothing about an
account until it holds t matches (SPEC Section 14).

    python threshold.py URL OPERATOR_KEY_HEX CACHE_DIR ACCOUNT_FILE MAX_UPLOADS sha256:HEX[:NOTE] ...

ACCOUNT_FILE keeps the account's secret (made on the first run, mode 0600;
an app keeps it with the account's other secrets, the same on each of its
devices). MAX_UPLOADS is the most uploads the app expects an account to
send under one threshold: the synthetic rate is chosen from it and the
table's synthetic bound s.
"""

import hashlib
import os
import sys

import blindmatch


def synthetic_rate(manifest, max_uploads):
    """At most s / 2N (README, "Choosing the synthetic rate"): an account's
    synthetic vouchers stay near half the bound s, within which t real
    matches are always detected; a higher rate hides better how many
    matches an account holds below t."""
    s = manifest.synthetic_bound()
    if s is None:
        raise SystemExit("this table is in version 1: use quickstart.py")
    return min(1.0, s / (2 * max_uploads))


def load_account(path, account_id, manifest, max_uploads):
    """The account's secret: restored if saved, else made and saved."""
    try:
        with open(path, "rb") as f:
            return blindmatch.Account.decode(f.read())
    except FileNotFoundError:
        pass
    account = blindmatch.Account.generate(account_id, synthetic_rate(manifest, max_uploads))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(account.encode())
    return account


def upload(text, index):
    """`sha256:HEX[:NOTE]` as an upload. Its 16-byte voucher id names the
    upload, so a retry or a restart counts it once: an app derives it from
    its own name for the upload (here: the argument and its place)."""
    kind, value, *note = text.split(":", 2)
    item_type = getattr(blindmatch.ItemType, kind.upper())
    return blindmatch.Upload(
        voucher_id=hashlib.sha256(f"{index}:{text}".encode()).digest()[:16],
        item_type=item_type,
        value=blindmatch.item_from_hex(item_type, value),
        associated_data=(note[0] if note else "").encode(),
    )


def main(url, operator_key, cache_dir, account_file, max_uploads, texts):
    with blindmatch.Client(url, operator_key, cache_dir=cache_dir) as client:
        client.refresh()
        manifest = client.manifest()
        account = load_account(account_file, b"account-1", manifest, int(max_uploads))
        uploads = [upload(t, i) for i, t in enumerate(texts)]
        try:
            n = client.check_account(account, uploads)
        except blindmatch.Incomplete as e:
            # Some batches were stored: submit only the rest (same ids).
            n = e.acknowledged + client.check_account(account, e.remaining)
    print(f"t = {manifest.threshold()}, s = {manifest.synthetic_bound()}: {n} vouchers acknowledged")


if __name__ == "__main__":
    main(*sys.argv[1:6], sys.argv[6:])
