"""A ready client over grpcio: fetch the manifest, verify it, bring the table
up to date, submit, retry.

It drives the sans-IO core below it (`Manifest`, `History`, `TableDownload`,
`DeltaDownload`, `Table`, `Backoff`: the same in every binding) the way the
Rust client (`blindmatch-client`) does: the manifest is verified against the
pinned operator key, then the organisations' quorum and the transparency log
if the app pins them, then the history (no rollback, no equivocation); the
table comes from the cache, a delta from the table held, or a download that
checks every chunk and resumes where a broken stream stopped (across
restarts too, with a cache directory); every submission is retried
unchanged, under its id, as the core's `Backoff` allows, so the server
stores it once.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Literal, Optional, Sequence, Union

import grpc

from . import _native as core
from .v1 import blindmatch_pb2 as pb
from .v1 import blindmatch_pb2_grpc as rpc

__all__ = ["Client", "Incomplete", "Refreshed"]


@dataclass(frozen=True)
class Refreshed:
    """What `Client.refresh` did: the version now held, and how it came."""

    version: int
    """The table version now held."""
    how: Literal["held", "cached", "delta", "download"]
    """`"held"` (already up to date), `"cached"` (from the cache
    directory), `"delta"` or `"download"`."""
    delta_refused: Optional[str] = None
    """Why the delta from the table held was not used, when one was tried
    and the table was downloaded in full instead: the core's refusal or the
    server's status. None otherwise."""


class Incomplete(Exception):
    """A `check` or `check_account` that failed after submitting began.

    Earlier batches were acknowledged (`acknowledged` vouchers) and are
    stored; `remaining` are the items (or uploads) of the call that were
    not, in the order given. Retry with `remaining` only: calling `check`
    again with every item would submit the acknowledged ones again under new
    submission ids, and a version-1 server would store them twice. The
    failure itself is `__cause__` (a `grpc.RpcError` once the retries are
    spent, or a `BlindmatchError` from a refresh the server asked for).
    """

    def __init__(self, acknowledged: int, remaining: list, total: int, cause: BaseException) -> None:
        self.acknowledged = acknowledged
        self.remaining = remaining
        # As every client words it: the status's name and the server's
        # message, or the core's message.
        detail = f"{cause.code().name}: {cause.details()}" if isinstance(cause, grpc.RpcError) else str(cause)
        super().__init__(f"{acknowledged} of {total} acknowledged; the rest failed: {detail}")


class Client:
    """Checks items against a blindmatch server.

    `target` is `http://HOST[:PORT]` (plaintext, for a loopback or a
    trusted network) or `https://HOST[:PORT]` (TLS with the system's roots,
    or `credentials`): HOST a name, an IPv4 address or a bracketed IPv6
    one, no path. An app that makes its own channel (a proxy, its own TLS
    setup) passes it as `channel` and `None` as `target`; `interceptors`
    (`grpc.UnaryUnaryClientInterceptor` and its kin) wrap either, for
    instance to add the metadata that authenticates an account. `operator_key` is the operator's verifying key: an
    `OperatorKey`, 32 bytes, or 64 hex digits. With `cache_dir` the history
    and the table persist across restarts (one directory per operator key;
    created if missing); without it they live as long as this object.

    `quorum` (a `Quorum` of organisation keys) and `log_policy` (a
    `LogPolicy`) make it refuse a table not co-signed by enough of the
    organisations, or not in the operator's transparency log, as SPEC
    Sections 15.6 and 16.6 say. `max_age_seconds` refuses a stale list.

    Every call has a deadline (`timeout` seconds; `download_timeout` for
    each attempt at a table or a delta), and a transient failure is retried
    up to `attempts` times, the first after `first_delay_ms`, with the
    backoff the core computes. Errors are the core's `BlindmatchError` kinds
    (bindings/ERRORS.md), `grpc.RpcError` once the retries are spent, or
    `Incomplete` for a check that failed after some batches were
    acknowledged.

    One client may be shared between threads (its calls take turns). A
    cache directory is for one client at a time: two processes that write
    one directory can set each other's history back.
    """

    def __init__(
        self,
        target: Optional[str],
        operator_key: Union["core.OperatorKey", bytes, str],
        *,
        cache_dir: Optional[Union[str, os.PathLike]] = None,
        quorum: Optional["core.Quorum"] = None,
        log_policy: Optional["core.LogPolicy"] = None,
        max_age_seconds: Optional[int] = None,
        timeout: float = 30.0,
        download_timeout: float = 600.0,
        attempts: int = 5,
        first_delay_ms: int = 200,
        credentials: Optional[grpc.ChannelCredentials] = None,
        channel: Optional[grpc.Channel] = None,
        interceptors: Sequence[object] = (),
    ) -> None:
        self._operator = _operator(operator_key)
        if channel is not None:
            if target is not None or credentials is not None:
                raise ValueError("channel was given with a target or credentials: give one or the other")
        elif target is None:
            raise ValueError("no target: give http://HOST[:PORT], https://HOST[:PORT] or a channel")
        else:
            secure, address = _parse_target(target)
            if not secure and credentials is not None:
                raise ValueError("credentials were given for a plaintext http:// target")
            if secure:
                channel = grpc.secure_channel(address, credentials or grpc.ssl_channel_credentials())
            else:
                channel = grpc.insecure_channel(address)
        self._channel = channel
        # A channel the app passed in is the app's to close.
        self._owns_channel = target is not None
        if interceptors:
            channel = grpc.intercept_channel(channel, *interceptors)
        self._tables = rpc.TableServiceStub(channel)
        self._vouchers = rpc.VoucherServiceStub(channel)
        self._quorum = quorum
        self._log_policy = log_policy
        self._max_age = max_age_seconds
        self._timeout = timeout
        self._download_timeout = download_timeout
        self._attempts = attempts
        self._first_delay_ms = first_delay_ms
        self._dir: Optional[Path] = None
        if cache_dir is not None:
            self._dir = Path(cache_dir) / self._operator.to_hex()
            self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            # What a crash left between writing a file and renaming it.
            for tmp in self._dir.glob(".tmp-*"):
                tmp.unlink(missing_ok=True)
        self._history = self._load_history()
        self._table: Optional[core.Table] = None
        self._manifest: Optional[core.Manifest] = None
        self._max_batch = 0
        self._lock = threading.RLock()

    # -- the calls an app makes -------------------------------------------

    def refresh(self) -> Refreshed:
        """Fetches the manifest, verifies it and brings the table up to its
        version. Raises a `BlindmatchError` if the manifest is refused (the
        table held stays in use)."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> Refreshed:
        try:
            return self._refresh_once()
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            # The server moved to a newer table between the manifest and
            # its download (SPEC 13.5): once more, from the new manifest.
            return self._refresh_once()

    def _refresh_once(self) -> Refreshed:
        self._reload_history()  # the cache's record as it is now
        request = pb.GetManifestRequest(log_size=self._history.log_size())
        response = self._retried(lambda: self._tables.GetManifest(request, timeout=self._timeout))
        manifest = core.Manifest.verify(response.statement, response.signature, self._operator)
        cosignatures = [
            core.CoSignature(org_key=c.org_key, name=c.name, signature=c.signature)
            for c in response.cosignatures
        ]
        if self._quorum is not None:
            manifest = manifest.require_quorum(self._quorum, cosignatures)
        if self._log_policy is not None:
            manifest = manifest.require_logged(
                self._log_policy, response.log_proof, list(response.log_consistency), cosignatures
            )
        if self._max_age is not None:
            manifest.check_age(self._max_age, int(time.time()))
        accepted = self._history.check(manifest)
        previous = self._history.newest()
        table, how, delta_refused = self._table_for(manifest)
        # The table first, then the history that names it: a crash between
        # the two leaves a table the history does not need yet.
        if how in ("delta", "download"):
            self._write(_table_file(manifest.table_id()), table.encode())
        # `record` leaves a history that moved on (another client) alone.
        self._reload_history()
        self._history.record(accepted)
        self._save_history()
        # One version is kept.
        for old in (previous, self._manifest):
            if old is not None and old.table_id() != manifest.table_id():
                self._remove(_table_file(old.table_id()))
        # And no partial download: one of a version that was replaced
        # before it finished would stay forever.
        if self._dir is not None:
            for part in self._dir.glob("table-*.part"):
                part.unlink(missing_ok=True)
        self._table, self._manifest = table, manifest
        self._max_batch = response.max_batch
        return Refreshed(version=manifest.version(), how=how, delta_refused=delta_refused)

    def check(self, items: Iterable["core.ItemToCheck"]) -> int:
        """Submits `items` (version 1; `refresh` first if no table is held)
        in batches of the server's size; returns how many vouchers were
        acknowledged. The acknowledgement says nothing about matches.

        A table that changed meanwhile (the server refuses the old one's
        vouchers, SPEC 12.2) is fetched and the batch made again from it. A
        failure once submitting began raises `Incomplete`, which says what
        was acknowledged and what to submit again."""
        items = list(items)
        with self._lock:
            return self._submit_all(items, lambda table, chunk: table.submission(chunk))

    def check_account(self, account: "core.Account", uploads: Iterable["core.Upload"]) -> int:
        """Threshold mode: submits `uploads` under `account` (keep an
        upload's `voucher_id` across retries and restarts: the same upload
        counts once). Raises `Incomplete` as `check` does."""
        uploads = list(uploads)
        with self._lock:
            return self._submit_all(uploads, lambda table, chunk: table.account_submission(account, chunk))

    def manifest(self) -> Optional["core.Manifest"]:
        """The manifest of the table held, if any."""
        return self._manifest

    def close(self) -> None:
        """Closes the channel the client made (one passed as `channel` is
        the app's, left open)."""
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the table ----------------------------------------------------------

    def _table_for(self, manifest: "core.Manifest"):
        """The table for `manifest`, how it came, and why a delta was refused."""
        if self._table is not None and self._table.table_id() == manifest.table_id():
            return self._table, "held", None
        cached = self._read(_table_file(manifest.table_id()))
        if cached is not None:
            try:
                return core.Table.open(cached, manifest), "cached", None
            except core.BlindmatchError:
                self._remove(_table_file(manifest.table_id()))  # damaged: fetch again
        held, held_manifest = self._table, self._manifest
        newest = self._history.newest()
        if held is None and newest is not None:
            # After a restart: the cache's copy of the version held before.
            saved = self._read(_table_file(newest.table_id()))
            if saved is not None:
                try:
                    held, held_manifest = core.Table.open(saved, newest), newest
                except core.BlindmatchError:
                    pass
        refused = None
        if held is not None and held_manifest is not None and _same_shape(held_manifest, manifest):
            try:
                return self._delta(held, manifest), "delta", None
            except grpc.RpcError as e:
                refused = f"{e.code().name}: {e.details()}"  # no delta for this pair
            except (core.BlindmatchError.Invalid, core.BlindmatchError.Malformed) as e:
                refused = str(e)  # one that does not verify
            # Either way: download in full.
        return self._download(manifest), "download", refused

    def _delta(self, held: "core.Table", manifest: "core.Manifest") -> "core.Table":
        delta = core.DeltaDownload(held, manifest)
        request = pb.DownloadDeltaRequest(from_table_id=held.table_id(), to_table_id=manifest.table_id())
        for chunk in self._tables.DownloadDelta(request, timeout=self._download_timeout):
            delta.push(chunk.indices, chunk.slots)
        return delta.finish()

    def _download(self, manifest: "core.Manifest") -> "core.Table":
        part = _part_file(manifest.table_id())
        kept = self._read(part) or b""
        try:
            download = core.TableDownload.resume(manifest, kept)
        except core.BlindmatchError:
            self._remove(part)  # not a prefix of this table: start over
            download = core.TableDownload(manifest)
        # Only whole chunks were kept: new ones are appended after them.
        self._truncate(part, download.offset())
        backoff = core.Backoff(self._attempts, self._first_delay_ms)
        while True:
            request = pb.DownloadTableRequest(table_id=manifest.table_id(), offset=download.offset())
            try:
                for chunk in self._tables.DownloadTable(request, timeout=self._download_timeout):
                    # Raises for a chunk that does not verify; what was
                    # verified before it is kept, and a resume starts there.
                    download.push(chunk.offset, chunk.slots, list(chunk.proof))
                    self._append(part, chunk.slots)
                break
            except grpc.RpcError as e:
                _wait(backoff, e)
        try:
            table = download.finish()
        finally:
            self._remove(part)
        return table

    def _current(self) -> "core.Table":
        if self._table is None:
            self.refresh()
        assert self._table is not None
        return self._table

    # -- submitting ---------------------------------------------------------

    def _submit_all(self, items: list, make: Callable[["core.Table", list], "core.Submission"]) -> int:
        table = self._current()  # before any Submit: its errors are raised as they are
        acknowledged = 0
        batch = max(1, self._max_batch)
        start = 0
        begun = False  # until a Submit is sent, errors are raised as they are
        try:
            while start < len(items):
                chunk = items[start : start + batch]
                submission = make(table, chunk)  # a Mode or Input error: the app's
                begun = True
                try:
                    accepted = self._submit(submission)
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.FAILED_PRECONDITION:
                        raise
                    # The server moved to another table and stored nothing
                    # (SPEC 12.2): fetch it, make the batch again, once.
                    self._refresh()
                    table = self._current()
                    batch = max(1, self._max_batch)
                    chunk = items[start : start + batch]
                    accepted = self._submit(make(table, chunk))
                acknowledged += accepted
                start += len(chunk)
        except (grpc.RpcError, core.BlindmatchError) as e:
            if not begun:
                raise
            raise Incomplete(acknowledged, items[start:], len(items), e) from e
        return acknowledged

    def _submit(self, submission: "core.Submission") -> int:
        request = pb.SubmitRequest(
            table_id=submission.table_id,
            vouchers=submission.vouchers,
            submission_id=submission.id,
            account_id=submission.account_id,
        )
        # The same request on every try: the server stores it once.
        return self._retried(lambda: self._vouchers.Submit(request, timeout=self._timeout)).accepted

    def _retried(self, call):
        backoff = core.Backoff(self._attempts, self._first_delay_ms)
        while True:
            try:
                return call()
            except grpc.RpcError as e:
                _wait(backoff, e)

    # -- the cache directory ----------------------------------------------

    def _load_history(self) -> "core.History":
        saved = self._read("history")
        if saved is None:
            return core.History(self._operator)
        # Raises History if it does not verify: starting over silently
        # would drop the rollback protection it holds (bindings/ERRORS.md).
        return core.History.restore(self._operator, saved)

    def _reload_history(self) -> None:
        if self._dir is not None:
            self._history = self._load_history()

    def _save_history(self) -> None:
        self._write("history", self._history.encode())

    def _open(self, name: str, flags: int) -> int:
        """A file of the cache directory, never through a link: the client
        makes none, so one there was planted, and is removed (a link to a
        user's file must not be read, appended to or cut)."""
        path = self._dir / name
        try:
            return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            path.unlink()  # the link itself
            raise FileNotFoundError(errno.ENOENT, "a link, removed", str(path)) from None

    def _read(self, name: str) -> Optional[bytes]:
        if self._dir is None:
            return None
        try:
            with os.fdopen(self._open(name, os.O_RDONLY), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def _write(self, name: str, data: bytes) -> None:
        if self._dir is None:
            return
        # Whole or not at all: a crash leaves the old file. mkstemp opens
        # O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600.
        fd, tmp = tempfile.mkstemp(dir=self._dir, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._dir / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _append(self, name: str, data: bytes) -> None:
        if self._dir is not None:
            with os.fdopen(self._open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "ab") as f:
                f.write(data)

    def _truncate(self, name: str, length: int) -> None:
        if self._dir is None:
            return
        try:
            fd = self._open(name, os.O_WRONLY)
        except FileNotFoundError:
            return
        try:
            os.ftruncate(fd, length)
        finally:
            os.close(fd)

    def _remove(self, name: str) -> None:
        if self._dir is not None:
            (self._dir / name).unlink(missing_ok=True)


def _operator(key) -> "core.OperatorKey":
    if isinstance(key, core.OperatorKey):
        return key
    if isinstance(key, (bytes, bytearray)):
        return core.OperatorKey.from_bytes(bytes(key))
    if isinstance(key, str):
        return core.OperatorKey.from_hex(key.strip())
    raise TypeError(f"operator_key: expected OperatorKey, bytes or hex, got {type(key).__name__}")


_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?")


def _parse_target(target: str) -> tuple[bool, str]:
    """`http://HOST[:PORT]` or `https://HOST[:PORT]` as (TLS?, grpc's
    `HOST:PORT`), or ValueError naming what is wrong. By hand, as the other
    clients parse it (bindings/testkit/urls.txt holds the cases every
    client agrees on): urllib is lenient where a server address should not
    be (spaces, tabs, a scheme in capitals, text after `[::1]`)."""

    def refuse(why: str) -> ValueError:
        return ValueError(f"target {target!r}: {why} (expected http://HOST[:PORT] or https://HOST[:PORT])")

    scheme, sep, rest = target.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise refuse("the scheme must be http or https")
    for char, why in (("@", "no user info"), ("/", "no path (not even /)"), ("?", "no query"), ("#", "no fragment")):
        if char in rest:
            raise refuse(f"a server address has {why}")
    if rest.startswith("["):
        close = rest.find("]")
        if close < 0:
            raise refuse("an IPv6 address opened with [ is not closed")
        host, after = rest[: close + 1], rest[close + 1 :]
        if after and not after.startswith(":"):
            raise refuse("only :PORT may follow a bracketed IPv6 address")
        port_text = after[1:] if after else None
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise refuse(f"{host} is not an IPv6 address") from None
        if "%" in host:  # a zone id names an interface of this host only
            raise refuse(f"{host} is not an IPv6 address")
    else:
        host, colon, port_text = rest.rpartition(":")
        if not colon:
            host, port_text = rest, None
        if not host:
            raise refuse("no host")
        if not _HOST_NAME.fullmatch(host):
            raise refuse(f"{host!r} is not a host name or an IPv4 address")
        labels = host.rstrip(".").split(".")
        if all(label.isdigit() for label in labels) and (len(labels) != 4 or any(int(l) > 255 for l in labels)):
            raise refuse(f"{host} is not an IPv4 address")
    port = 443 if scheme == "https" else 80
    if port_text is not None:
        if not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5 and 1 <= int(port_text) <= 65535):
            raise refuse("the port must be a number from 1 to 65535")
        port = int(port_text)
    return scheme == "https", f"{host}:{port}"


def _same_shape(a: "core.Manifest", b: "core.Manifest") -> bool:
    # A delta is between tables of one shape; for any other the server has
    # none (NOT_FOUND, SPEC 13.4) and the table is downloaded in full.
    return a.k() == b.k() and a.n_slots() == b.n_slots()


def _wait(backoff: "core.Backoff", e: grpc.RpcError) -> None:
    """Sleeps as the core's backoff says for `e`, or re-raises it."""
    trailers = dict(e.trailing_metadata() or ())
    wait_ms = backoff.retry(e.code().value[0], trailers.get("grpc-retry-pushback-ms"))
    if wait_ms is None:
        raise e
    time.sleep(wait_ms / 1000)


def _table_file(table_id: bytes) -> str:
    return f"table-{table_id.hex()}"


def _part_file(table_id: bytes) -> str:
    return f"table-{table_id.hex()}.part"
