"""blindmatch.Client, the ready client over grpcio, against a real server:
a download into the cache, the cache on the next start, a delta to
version 2, the quorum and the log refusing as the core does, and a damaged
partial download started over."""

import hashlib
import time

import pytest

import blindmatch


def item(kind, hex_value, ad=b""):
    t = getattr(blindmatch.ItemType, kind.upper())
    return blindmatch.ItemToCheck(
        item_type=t, value=blindmatch.item_from_hex(t, hex_value), associated_data=ad
    )


def org(server, name):
    return blindmatch.OperatorKey.from_hex((server.dir / f"org-{name}.sign.pub").read_text().strip())


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory):
    """A server of its own: this test publishes version 2."""
    from conftest import Server

    s = Server(tmp_path_factory.mktemp("client"))
    yield s
    s.stop()


def test_check_records_exactly_the_listed_items_then_the_cache_and_a_delta(fresh_server, tmp_path):
    server = fresh_server
    cache = tmp_path / "cache"
    listed = server.listed()
    items = [item(k, v, f"client-{i}".encode()) for i, (k, v) in enumerate(listed)]
    items += [item("sha256", hashlib.sha256(f"no-{i}".encode()).hexdigest()) for i in range(70)]
    with blindmatch.Client(server.url, server.operator_hex, cache_dir=cache) as client:
        assert client.refresh() == blindmatch.Refreshed(version=1, how="download")
        # More than one batch (the server's max_batch is 64), all acknowledged.
        assert client.check(items) == len(items)
        assert client.refresh().how == "held"
    got = sorted((m["item_type"], m["item_hex"], m["associated_data"]) for m in server.matches(len(listed)))
    assert got == sorted((k, v, f"client-{i}") for i, (k, v) in enumerate(listed))

    # The next start: the history and the table come from the cache.
    client = blindmatch.Client(server.url, server.operator_hex, cache_dir=cache)
    assert client.refresh() == blindmatch.Refreshed(version=1, how="cached")
    server.publish()
    for _ in range(100):  # until the server has swapped (SIGHUP)
        refreshed = client.refresh()
        if refreshed.version == 2:
            break
        time.sleep(0.1)
    assert refreshed == blindmatch.Refreshed(version=2, how="delta")
    client.close()
    with blindmatch.Client(server.url, server.operator_hex, cache_dir=cache) as again:
        assert again.refresh() == blindmatch.Refreshed(version=2, how="cached")
    # One version is kept: version 1's table is gone.
    tables = sorted(p.name for p in (cache / server.operator_hex).iterdir() if p.name.startswith("table-"))
    assert len(tables) == 1


def test_a_quorum_and_a_log_refuse_as_the_core_does(server):
    below = blindmatch.Quorum([org(server, "a"), org(server, "b"), org(server, "c")], 3)
    with blindmatch.Client(server.url, server.operator_hex, quorum=below) as client:
        with pytest.raises(blindmatch.BlindmatchError.Quorum) as e:
            client.refresh()
        assert (e.value.found, e.value.required) == (2, 3)
        assert str(e.value) == e.value.reason and "3 required" in str(e.value)
        assert client.manifest() is None
    enough = blindmatch.Quorum([org(server, "a"), org(server, "b")], 2)
    logged = blindmatch.LogPolicy.parse((server.dir / "log.policy").read_text())
    with blindmatch.Client(server.url, server.operator_hex, quorum=enough, log_policy=logged) as client:
        client.refresh()
        assert client.manifest().cosigners() == ["Hotline a", "Hotline b"]
        assert client.manifest().log_size() == 2
    other = blindmatch.LogPolicy.parse((server.dir / "log-other.policy").read_text())
    with blindmatch.Client(server.url, server.operator_hex, log_policy=other) as client:
        with pytest.raises(blindmatch.BlindmatchError.Log):
            client.refresh()


def test_another_operator_key_is_refused_with_a_message(server):
    with blindmatch.Client(server.url, org(server, "a").to_hex()) as client:
        with pytest.raises(blindmatch.BlindmatchError.BadSignature) as e:
            client.refresh()
    assert str(e.value) == "manifest signature does not verify under the pinned operator key"


def test_a_damaged_partial_download_is_started_over(server, tmp_path):
    cache = tmp_path / "cache"
    with blindmatch.Client(server.url, server.operator_hex, cache_dir=cache) as client:
        client.refresh()
        table_id = client.manifest().table_id()
    # A part of a download of that table, not the table's bytes, and no
    # finished copy: the resumed download does not verify, and is dropped.
    directory = cache / server.operator_hex
    for p in directory.glob("table-*"):
        p.unlink()
    (directory / f"table-{table_id.hex()}.part").write_bytes(b"\x01" * (32 * 4096))
    with blindmatch.Client(server.url, server.operator_hex, cache_dir=cache) as client:
        with pytest.raises(blindmatch.BlindmatchError.Invalid):
            client.refresh()
        assert not (directory / f"table-{table_id.hex()}.part").exists()
        assert client.refresh().how == "download"


def _url_cases():
    """bindings/testkit/urls.txt: the addresses every ready client accepts
    and refuses."""
    from conftest import ROOT

    cases = []
    for line in (ROOT / "bindings" / "testkit" / "urls.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            verdict, url = line.split(" ", 1)
            cases.append((verdict, url.replace("\\s", " ").replace("\\t", "\t")))
    return cases


@pytest.mark.parametrize("verdict, target", _url_cases())
def test_server_addresses_as_every_client_reads_them(server, verdict, target):
    if verdict == "ok":
        blindmatch.Client(target, server.operator_hex).close()  # channels connect lazily
    else:
        with pytest.raises(ValueError, match="expected http://HOST\\[:PORT\\]") as e:
            blindmatch.Client(target, server.operator_hex)
        assert repr(target) in str(e.value)


def test_a_refused_address_says_why(server):
    for target, why in [
        ("http://127.0.0.1:5000/", "no path"),
        ("http://user@h:1", "no user info"),
        ("http://127.0.0.1:0", "from 1 to 65535"),
        ("http://[::1]x", "only :PORT may follow"),
        ("http://256.1.1.1:1", "not an IPv4 address"),
    ]:
        with pytest.raises(ValueError, match=why):
            blindmatch.Client(target, server.operator_hex)


def test_a_channel_excludes_a_target(server):
    import grpc

    with pytest.raises(ValueError, match="one or the other"):
        blindmatch.Client(server.url, server.operator_hex, channel=grpc.insecure_channel("127.0.0.1:1"))
    with pytest.raises(ValueError, match="no target"):
        blindmatch.Client(None, server.operator_hex)


def test_a_channel_of_the_app_is_used_and_left_open(server):
    import grpc

    channel = grpc.insecure_channel(server.url.removeprefix("http://"))
    with blindmatch.Client(None, server.operator_hex, channel=channel) as client:
        assert client.refresh().version == 1
    # Closed by the app, not by the client: still usable here.
    with blindmatch.Client(None, server.operator_hex, channel=channel) as client:
        assert client.refresh().how == "download"
    channel.close()


class _Refused(Exception):
    """What grpcio raises for a failed call, as the client reads it."""

    def __init__(self, code):
        super().__init__(code)
        self._code = code

    def code(self):
        return self._code

    def details(self):
        return "refused by the test's interceptor"

    def trailing_metadata(self):
        return ()


def _interceptor(method, fail_calls, code):
    """Fails the calls of `method` numbered in `fail_calls` (from 1) with `code`."""
    import grpc

    class Refused(_Refused, grpc.RpcError):
        pass

    class Interceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
        calls = 0

        def _intercept(self, continuation, details, request):
            if details.method.endswith("/" + method):
                Interceptor.calls += 1
                if Interceptor.calls in fail_calls:
                    raise Refused(code)
            return continuation(details, request)

        intercept_unary_unary = _intercept
        intercept_unary_stream = _intercept

    return Interceptor()


def test_a_failure_midway_says_what_was_acknowledged_and_the_rest_is_stored_once(server):
    import grpc

    listed = server.listed()
    # 64 unlisted items fill the first batch (the server's max_batch); the
    # listed ones are in the second, which fails.
    items = [item("sha256", hashlib.sha256(f"midway-{i}".encode()).hexdigest()) for i in range(64)]
    items += [item(k, v, f"midway-{i}".encode()) for i, (k, v) in enumerate(listed)]
    failing = _interceptor("Submit", {2}, grpc.StatusCode.UNAVAILABLE)
    with blindmatch.Client(server.url, server.operator_hex, attempts=1, interceptors=[failing]) as client:
        with pytest.raises(blindmatch.Incomplete) as e:
            client.check(items)
        assert e.value.acknowledged == 64
        assert e.value.remaining == items[64:]
        assert isinstance(e.value.__cause__, grpc.RpcError)
        assert str(e.value) == (
            f"64 of {len(items)} acknowledged; the rest failed: UNAVAILABLE: refused by the test's interceptor"
        )
        assert client.check(e.value.remaining) == len(listed)
    midway = [m for m in server.matches(len(listed)) if m["associated_data"].startswith("midway-")]
    # Each listed item once: nothing was submitted twice.
    assert sorted(m["associated_data"] for m in midway) == sorted(f"midway-{i}" for i in range(len(listed)))


def test_a_refused_delta_is_reported_and_the_table_downloaded(tmp_path_factory, tmp_path):
    import grpc

    from conftest import Server

    server = Server(tmp_path_factory.mktemp("delta-refused"))
    try:
        cache = tmp_path / "cache"
        with blindmatch.Client(server.url, server.operator_hex, cache_dir=cache) as client:
            client.refresh()
        server.publish()
        no_delta = _interceptor("DownloadDelta", range(1, 1000), grpc.StatusCode.NOT_FOUND)
        for _ in range(100):
            with blindmatch.Client(server.url, server.operator_hex, cache_dir=cache, interceptors=[no_delta]) as c:
                refreshed = c.refresh()
            if refreshed.version == 2:
                break
            time.sleep(0.1)
        assert refreshed == blindmatch.Refreshed(
            version=2, how="download", delta_refused="NOT_FOUND: refused by the test's interceptor"
        )
    finally:
        server.stop()


def test_a_table_replaced_midway_is_fetched_and_the_batch_made_again(tmp_path_factory):
    """With no grace period the server refuses vouchers for the table it
    replaced (FAILED_PRECONDITION): the client fetches the new one and
    submits the batch again, made from it."""
    from conftest import Server

    server = Server(tmp_path_factory.mktemp("replaced"), serve_args="--grace 0s")
    try:
        client = blindmatch.Client(server.url, server.operator_hex)
        assert client.refresh().version == 1
        server.publish()
        for _ in range(100):
            with blindmatch.Client(server.url, server.operator_hex) as other:
                if other.refresh().version == 2:
                    break
            time.sleep(0.1)
        (kind, value), = server.listed("listed-v2.txt")
        assert client.check([item(kind, value, b"replaced")]) == 1
        assert client.manifest().version() == 2
        assert [m["associated_data"] for m in server.matches(1)] == ["replaced"]
        client.close()
    finally:
        server.stop()


def test_a_planted_link_in_the_cache_is_never_followed(server, tmp_path):
    """A `.part` that is a link to a file of the user's: not read, not cut,
    not appended to. The link is removed and the table downloaded."""
    cache = tmp_path / "cache"
    with blindmatch.Client(server.url, server.operator_hex) as client:
        table_id = client.refresh() and client.manifest().table_id()
    directory = cache / server.operator_hex
    directory.mkdir(parents=True)
    precious = tmp_path / "precious"
    precious.write_bytes(bytes(range(256)) * 400)
    (directory / f"table-{table_id.hex()}.part").symlink_to(precious)
    with blindmatch.Client(server.url, server.operator_hex, cache_dir=cache) as client:
        assert client.refresh().how == "download"
    assert precious.read_bytes() == bytes(range(256)) * 400
    assert not any(p.is_symlink() for p in directory.iterdir())


def test_partial_downloads_of_other_versions_are_removed(server, tmp_path):
    directory = tmp_path / "cache" / server.operator_hex
    directory.mkdir(parents=True)
    (directory / f"table-{'ab' * 32}.part").write_bytes(b"\x01" * 64)
    with blindmatch.Client(server.url, server.operator_hex, cache_dir=tmp_path / "cache") as client:
        client.refresh()
    assert not list(directory.glob("*.part"))


def test_leftover_temporary_files_are_removed(server, tmp_path):
    directory = tmp_path / "cache" / server.operator_hex
    directory.mkdir(parents=True)
    (directory / ".tmp-crashed").write_bytes(b"half a table")
    (directory / "unrelated").write_bytes(b"kept")
    blindmatch.Client(server.url, server.operator_hex, cache_dir=tmp_path / "cache").close()
    assert sorted(p.name for p in directory.iterdir()) == ["unrelated"]


def test_the_quickstart_example_runs_as_written(server, tmp_path):
    import quickstart

    kind, value = server.listed()[0]
    items = [quickstart.parse_item(f"{kind}:{value}:quickstart"), quickstart.parse_item("sha256:" + "ab" * 32)]
    assert quickstart.check_items(server.url, server.operator_hex, tmp_path, items) == 2
    assert ("quickstart", value) in {(m["associated_data"], m["item_hex"]) for m in server.matches(1)}


def test_after_a_restart_the_cached_table_is_the_delta_base_and_one_version_is_kept(tmp_path_factory, tmp_path):
    """A process that starts after the operator published a new version
    brings the cache's copy up to date with a delta, and removes it."""
    from conftest import Server

    server = Server(tmp_path_factory.mktemp("restart"))
    try:
        cache = tmp_path / "cache"
        with blindmatch.Client(server.url, server.operator_hex, cache_dir=cache) as client:
            assert client.refresh().how == "download"
        server.publish()
        for _ in range(100):
            with blindmatch.Client(server.url, server.operator_hex, cache_dir=cache) as client:
                refreshed = client.refresh()
            if refreshed.version == 2:
                break
            time.sleep(0.1)
        assert refreshed == blindmatch.Refreshed(version=2, how="delta")
        files = sorted(p.name for p in (cache / server.operator_hex).iterdir())
        assert len([f for f in files if f.startswith("table-")]) == 1, files
    finally:
        server.stop()
