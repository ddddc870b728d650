"""The Python binding against a real server: what it submits is opened by
the Rust matcher, listed items are recorded with their associated data,
unlisted ones never are, and a delta brings a held table to version 2."""

import hashlib
import time

import grpc
import pytest

import blindmatch
import check  # examples/check.py: the flow the README shows


def item(kind, hex_value, ad=b""):
    t = getattr(blindmatch.ItemType, kind.upper())
    return blindmatch.ItemToCheck(
        item_type=t, value=blindmatch.item_from_hex(t, hex_value), associated_data=ad
    )


def unlisted(n):
    return [
        item("sha256", hashlib.sha256(f"unlisted-{i}".encode()).hexdigest(), b"no")
        for i in range(n)
    ]


def test_listed_items_are_recorded_with_their_data_and_unlisted_never(server):
    operator = blindmatch.OperatorKey.from_hex(server.operator_hex)
    history = blindmatch.History(operator)
    listed = server.listed()
    items = [item(k, v, f"py-{i}".encode()) for i, (k, v) in enumerate(listed)]
    items += unlisted(70)  # more than one batch of 64
    with grpc.insecure_channel(server.url.removeprefix("http://")) as channel:
        manifest, max_batch, table = check.fetch_table(channel, history)
        assert manifest.version() == 1
        assert max_batch == 64
        assert check.submit(channel, table, items, max_batch) == len(items)
    matches = server.matches(len(listed))
    got = sorted((m["item_type"], m["item_hex"], m["associated_data"]) for m in matches)
    want = sorted((k, v, f"py-{i}") for i, (k, v) in enumerate(listed))
    assert got == want
    # The saved history refuses nothing new, and restores.
    again = blindmatch.History.restore(operator, history.encode())
    assert again.newest().version() == 1


def test_a_retried_batch_is_stored_once(server):
    operator = blindmatch.OperatorKey.from_hex(server.operator_hex)
    with grpc.insecure_channel(server.url.removeprefix("http://")) as channel:
        _, _, table = check.fetch_table(channel, blindmatch.History(operator))
        kind, value = server.listed()[0]
        batch = table.submission([item(kind, value, b"twice")])
        stub = check.rpc.VoucherServiceStub(channel)
        request = check.pb.SubmitRequest(
            table_id=batch.table_id, vouchers=batch.vouchers, submission_id=batch.id
        )
        assert stub.Submit(request).accepted == 1
        assert stub.Submit(request).accepted == 1
        other = table.submission([item(kind, value, b"other")])
        request.vouchers[:] = other.vouchers
        with pytest.raises(grpc.RpcError) as refused:
            stub.Submit(request)
        assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    twice = [m for m in server.matches(1) if m["associated_data"] == "twice"]
    assert len(twice) == 1


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory):
    from conftest import Server

    s = Server(tmp_path_factory.mktemp("delta"))
    yield s
    s.stop()


def test_a_delta_brings_the_table_to_version_2_and_old_versions_are_refused(
    fresh_server,
):
    server = fresh_server
    operator = blindmatch.OperatorKey.from_hex(server.operator_hex)
    history = blindmatch.History(operator)
    target = server.url.removeprefix("http://")
    with grpc.insecure_channel(target) as channel:
        v1, _, held = check.fetch_table(channel, history)
        server.publish()
        for _ in range(100):
            response = check.rpc.TableServiceStub(channel).GetManifest(
                check.pb.GetManifestRequest()
            )
            if response.version == 2:
                break
            time.sleep(0.1)
        manifest = blindmatch.Manifest.verify(response.statement, response.signature, operator)
        delta = blindmatch.DeltaDownload(held, manifest)
        stub = check.rpc.TableServiceStub(channel)
        request = check.pb.DownloadDeltaRequest(
            from_table_id=held.table_id(), to_table_id=manifest.table_id()
        )
        for chunk in stub.DownloadDelta(request):
            delta.push(chunk.indices, chunk.slots)
        v2 = delta.finish()
        assert v2.table_id() == manifest.table_id()
        with pytest.raises(blindmatch.BlindmatchError.State):
            delta.finish()
        accepted = history.check(manifest)
        history.record(accepted)
        with pytest.raises(blindmatch.BlindmatchError.Rollback) as e:
            history.check(v1)
        assert (e.value.offered, e.value.seen) == (1, 2)
        # The core's words, as every binding shows them.
        assert "older than version 2 seen before: refused (rollback)" in str(e.value)
        (kind, value), = server.listed("listed-v2.txt")
        assert check.submit(channel, v2, [item(kind, value, b"new in v2")], 64) == 1
    assert [m["associated_data"] for m in server.matches(1)] == ["new in v2"]


def test_a_quorum_of_pinned_organisations_must_have_co_signed(server):
    """SPEC 15.6: hotlines a and b audited version 1 with blindmatch-audit
    and co-signed it; c did not. A manifest below the quorum raises Quorum
    with the core's words."""
    operator = blindmatch.OperatorKey.from_hex(server.operator_hex)
    org = {
        n: blindmatch.OperatorKey.from_hex(
            (server.dir / f"org-{n}.sign.pub").read_text().strip()
        )
        for n in "abc"
    }
    target = server.url.removeprefix("http://")
    with grpc.insecure_channel(target) as channel:
        response = check.rpc.TableServiceStub(channel).GetManifest(check.pb.GetManifestRequest())
    manifest = blindmatch.Manifest.verify(response.statement, response.signature, operator)
    cosignatures = [
        blindmatch.CoSignature(org_key=c.org_key, name=c.name, signature=c.signature)
        for c in response.cosignatures
    ]
    audited = manifest.require_quorum(blindmatch.Quorum([org["a"], org["b"]], 2), cosignatures)
    assert audited.cosigners() == ["Hotline a", "Hotline b"]
    with pytest.raises(blindmatch.BlindmatchError.Quorum) as e:
        manifest.require_quorum(blindmatch.Quorum([org["a"], org["b"], org["c"]], 3), cosignatures)
    assert (e.value.found, e.value.required) == (2, 3)
    assert "(Hotline a, Hotline b), 3 required" in str(e.value)
    with pytest.raises(blindmatch.BlindmatchError.Input):
        blindmatch.Quorum([org["a"], org["a"]], 2)


def test_the_manifest_must_be_in_the_operators_transparency_log(server):
    """SPEC 16.6: the server logs versions 1 and 2; a manifest whose entry
    the proof places in the log's checkpoint passes, and one checked against
    another log's key raises Log with the core's words."""
    operator = blindmatch.OperatorKey.from_hex(server.operator_hex)
    policy = blindmatch.LogPolicy.parse((server.dir / "log.policy").read_text())
    other = blindmatch.LogPolicy.parse((server.dir / "log-other.policy").read_text())
    history = blindmatch.History(operator)
    with grpc.insecure_channel(server.url.removeprefix("http://")) as channel:
        response = check.rpc.TableServiceStub(channel).GetManifest(
            check.pb.GetManifestRequest(log_size=history.log_size())
        )
    cosignatures = [
        blindmatch.CoSignature(org_key=c.org_key, name=c.name, signature=c.signature)
        for c in response.cosignatures
    ]
    manifest = blindmatch.Manifest.verify(response.statement, response.signature, operator)
    logged = manifest.require_logged(
        policy, response.log_proof, list(response.log_consistency), cosignatures
    )
    assert logged.log_size() == 2 and logged.log_witnesses() == []
    history.record(history.check(logged))
    assert history.log_size() == 2
    with pytest.raises(blindmatch.BlindmatchError.Log) as e:
        manifest.require_logged(other, response.log_proof, [], cosignatures)
    assert "no valid signature by the pinned log key" in str(e.value)
    # The entry is the statement with its co-signatures: without them it is
    # not the one logged.
    with pytest.raises(blindmatch.BlindmatchError.Log) as e:
        manifest.require_logged(policy, response.log_proof, [], [])
    assert "inclusion proof" in str(e.value)
    # A history that accepted a logged version refuses one that is not.
    with pytest.raises(blindmatch.BlindmatchError.Log):
        history.check(manifest)
    with pytest.raises(blindmatch.BlindmatchError.Log) as e:
        manifest.require_logged(policy, "", [], cosignatures)
    assert "no log proof" in str(e.value)
