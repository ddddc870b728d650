"""Threshold mode through the Python binding, against a real server whose
table has t = 3 and s = 2: an account below t leaves candidates and nothing
else; one that reaches t has its matches revealed with their associated
data; version-1 submissions and account submissions are each refused for
the other mode's table."""

import hashlib
import time

import grpc
import pytest

import blindmatch
import check


@pytest.fixture(scope="module")
def threshold_server(tmp_path_factory):
    from conftest import Server

    s = Server(tmp_path_factory.mktemp("threshold"), threshold="3:2")
    yield s
    s.stop()


def upload(name, kind, hex_value, ad):
    t = getattr(blindmatch.ItemType, kind.upper())
    return blindmatch.Upload(
        voucher_id=hashlib.sha256(name.encode()).digest()[:16],
        item_type=t,
        value=blindmatch.item_from_hex(t, hex_value),
        associated_data=ad,
    )


def test_an_account_reveals_only_at_t(threshold_server):
    server = threshold_server
    operator = blindmatch.OperatorKey.from_hex(server.operator_hex)
    listed = server.listed()
    # No synthetic vouchers, so the counts below are exact.
    below = blindmatch.Account.generate(b"py-below", 0.0)
    above = blindmatch.Account.generate(b"py-above", 0.0)
    # An account secret survives its encoding (what the app stores).
    above = blindmatch.Account.decode(above.encode())
    assert above.account_id() == b"py-above"
    with grpc.insecure_channel(server.url.removeprefix("http://")) as channel:
        manifest, max_batch, table = check.fetch_table(channel, blindmatch.History(operator))
        assert manifest.threshold() == 3
        unlisted = [
            upload(f"u{i}", "sha256", hashlib.sha256(f"no-{i}".encode()).hexdigest(), b"x")
            for i in range(5)
        ]
        two = [upload(f"b{i}", k, v, f"below-{i}".encode()) for i, (k, v) in enumerate(listed[:2])]
        assert check.submit(channel, table, two + unlisted, max_batch, below) == 7
        four = [upload(f"a{i}", k, v, f"above-{i}".encode()) for i, (k, v) in enumerate(listed[:4])]
        # Sent twice: the same voucher ids count once.
        assert check.submit(channel, table, four[:2], max_batch, above) == 2
        assert check.submit(channel, table, four, max_batch, above) == 4

        with pytest.raises(blindmatch.BlindmatchError.Mode):
            table.submission([blindmatch.ItemToCheck(
                item_type=blindmatch.ItemType.SHA256, value=bytes(32), associated_data=b"")])
        with pytest.raises(blindmatch.BlindmatchError.Input):
            table.account_submission(above, [blindmatch.Upload(
                voucher_id=bytes(15), item_type=blindmatch.ItemType.SHA256,
                value=bytes(32), associated_data=b"")])

    matches = server.matches(4)
    got = sorted(m["associated_data"] for m in matches)
    assert got == [f"above-{i}" for i in range(4)], got
    accounts = {a["account_hex"]: a for a in server.accounts(2)}
    b = accounts[b"py-below".hex()]
    assert (b["t"], b["unrevealed"], b["real"]) == (3, 2, 0)
    a = accounts[b"py-above".hex()]
    assert (a["real"], a["unrevealed"]) == (4, 0)


def test_a_damaged_account_secret_is_refused_by_name():
    saved = bytearray(blindmatch.Account.generate(b"user", 0.25).encode())
    saved[0] ^= 1
    with pytest.raises(blindmatch.BlindmatchError.Account) as e:
        blindmatch.Account.decode(bytes(saved))
    assert "account secret" in str(e.value)
    with pytest.raises(blindmatch.BlindmatchError.Account):
        blindmatch.Account.generate(b"", 0.0)
    with pytest.raises(blindmatch.BlindmatchError.Account):
        blindmatch.Account.generate(b"user", 1.5)


def test_an_account_submission_is_refused_for_a_version_1_table(server):
    operator = blindmatch.OperatorKey.from_hex(server.operator_hex)
    with grpc.insecure_channel(server.url.removeprefix("http://")) as channel:
        manifest, _, table = check.fetch_table(channel, blindmatch.History(operator))
        assert manifest.threshold() is None
        kind, value = server.listed()[0]
        with pytest.raises(blindmatch.BlindmatchError.Mode):
            table.account_submission(
                blindmatch.Account.generate(b"u", 0.0), [upload("x", kind, value, b"")]
            )


def test_the_ready_client_in_threshold_mode(threshold_server, tmp_path):
    """examples/quickstart.py's check_uploads: an account that reaches t
    through blindmatch.Client has its matches revealed."""
    import quickstart

    server = threshold_server
    account = blindmatch.Account.generate(b"py-client", 0.0)
    listed = server.listed()
    three = [upload(f"c{i}", k, v, f"client-{i}".encode()) for i, (k, v) in enumerate(listed[:3])]
    assert quickstart.check_uploads(server.url, server.operator_hex, tmp_path, account, three) == 3
    # Other tests' accounts are there too: wait for this one's reveal.
    for _ in range(100):
        mine = [a for a in server.accounts(1) if a["account_hex"] == b"py-client".hex()]
        if mine and mine[0]["real"] == 3:
            break
        time.sleep(0.2)
    assert mine and (mine[0]["real"], mine[0]["unrevealed"]) == (3, 0)


def test_the_client_raises_a_mode_error_as_it_is_before_anything_was_sent(threshold_server):
    """Not `Incomplete`: nothing was submitted, the items are the wrong kind."""
    server = threshold_server
    kind, value = server.listed()[0]
    t = getattr(blindmatch.ItemType, kind.upper())
    item = blindmatch.ItemToCheck(item_type=t, value=blindmatch.item_from_hex(t, value), associated_data=b"")
    with blindmatch.Client(server.url, server.operator_hex) as client:
        with pytest.raises(blindmatch.BlindmatchError.Mode):
            client.check([item])
