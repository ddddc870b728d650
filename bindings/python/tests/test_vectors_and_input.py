"""What the Python binding reproduces of protocol/vectors/blindmatch-v1.json,
and how it refuses bad input: a typed exception, never a crash."""

import pytest

import blindmatch

E = blindmatch.BlindmatchError


def h(s):
    return bytes.fromhex(s)


def vector_v1(vectors):
    t = vectors["table"]
    encoded = h(t["header"]) + b"".join(h(s) for s in t["slots"])
    assert blindmatch.table_id_of(encoded) == h(t["table_id"])
    return encoded


def vector_manifest(vectors):
    m = vectors["lifecycle"]["manifest"]
    key = blindmatch.OperatorKey.from_hex(m["verifying_key"])
    return key, blindmatch.Manifest.verify(h(m["statement"]), h(m["signature"]), key)


def test_manifest_signature_and_statement(vectors):
    key, manifest = vector_manifest(vectors)
    update = vectors["lifecycle"]["update"]
    assert manifest.version() == 2
    assert manifest.created() == vectors["lifecycle"]["manifest"]["created"]
    assert manifest.table_id() == h(update["table_id"])
    assert manifest.digest() == h(update["digest"])
    assert manifest.statement() == h(vectors["lifecycle"]["manifest"]["statement"])
    assert manifest.k() == vectors["table"]["k"]
    assert manifest.n_slots() == vectors["table"]["n_slots"]
    statement = bytearray(manifest.statement())
    statement[12] ^= 1
    with pytest.raises(E.BadSignature):
        blindmatch.Manifest.verify(bytes(statement), manifest.signature(), key)
    # The Ed25519 base point: a valid key, not the operator's.
    other = blindmatch.OperatorKey.from_hex("58" + "66" * 31)
    with pytest.raises(E.BadSignature):
        blindmatch.Manifest.verify(manifest.statement(), manifest.signature(), other)


def test_table_id_and_delta_to_version_2(vectors):
    encoded = vector_v1(vectors)
    _, v2_manifest = vector_manifest(vectors)
    # Version 1 has no manifest in the vectors; the delta's result is
    # checked against version 2's signed digest and table id.
    v1 = table_for(encoded)
    delta = blindmatch.DeltaDownload(v1, v2_manifest)
    for d in vectors["lifecycle"]["update"]["delta"]:
        delta.push(d["slot"].to_bytes(4, "big"), h(d["after"]))
    v2 = delta.finish()
    assert v2.table_id() == h(vectors["lifecycle"]["update"]["table_id"])
    saved = blindmatch.Table.open(v2.encode(), v2_manifest)
    assert saved.voucher_len() == 1 + 32 + 3 * 80 + 1108

    tampered = blindmatch.DeltaDownload(v1, v2_manifest)
    d = vectors["lifecycle"]["update"]["delta"][0]
    after = bytearray(h(d["after"]))
    after[0] ^= 2
    tampered.push(d["slot"].to_bytes(4, "big"), bytes(after))
    with pytest.raises(E.Invalid):
        tampered.finish()
    with pytest.raises(E.Malformed):
        blindmatch.DeltaDownload(v1, v2_manifest).push(b"\x00\x00\x01", b"")


def table_for(encoded):
    """The vectors' version 1 has no signed manifest (only version 2 has),
    so it is opened with the one constructor that checks none."""
    return blindmatch.Table.open_unverified(encoded)


def test_bad_input_raises_typed_errors(vectors):
    with pytest.raises(E.Input):
        blindmatch.OperatorKey.from_hex("not hex")
    with pytest.raises(E.Input):
        blindmatch.OperatorKey.from_hex("ab" * 31)
    with pytest.raises(E.Input):
        blindmatch.item_from_hex(blindmatch.ItemType.SHA256, "ab" * 31)
    with pytest.raises(E.Input):
        blindmatch.item_from_hex(blindmatch.ItemType.MD5, "zz" * 16)
    key, manifest = vector_manifest(vectors)
    with pytest.raises(E.History):
        blindmatch.History.restore(key, b"\x01" * 40)
    table = table_for(vector_v1(vectors))
    with pytest.raises(E.Input):
        table.submission(
            [blindmatch.ItemToCheck(item_type=blindmatch.ItemType.MD5, value=b"\x01" * 15, associated_data=b"")]
        )
    with pytest.raises(E.Input):
        table.submission(
            [blindmatch.ItemToCheck(item_type=blindmatch.ItemType.MD5, value=b"\x01" * 16, associated_data=b"x" * 1025)]
        )
    ok = table.submission(
        [blindmatch.ItemToCheck(item_type=blindmatch.ItemType.BYTES, value=b"\x01", associated_data=b"x" * 1024)]
    )
    assert [len(v) for v in ok.vouchers] == [table.voucher_len()]
    assert len(ok.id) == 16 and len(ok.digest) == 32

    download = blindmatch.TableDownload(manifest)
    with pytest.raises(E.Invalid):
        download.push(0, b"\x00" * 32 * 16, [])
    with pytest.raises(E.Malformed):
        download.push(0, b"\x00" * 32 * 16, [b"\x00" * 31])
    assert download.offset() == 0
    with pytest.raises(E.Invalid):
        download.finish()
    with pytest.raises(E.State):
        download.offset()
    with pytest.raises(E.Invalid):
        blindmatch.Table.open(b"garbage", manifest)


def test_backoff_rule():
    b = blindmatch.Backoff(3, 100)
    assert 100 <= b.retry(14, None) <= 125
    assert b.retry(8, None) is None
    assert 700 <= b.retry(8, "700") <= 875
    assert b.retry(14, None) is None  # three tries in all
    assert blindmatch.Backoff(5, 100).retry(3, None) is None
