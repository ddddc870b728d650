"""The examples as a user runs them: copied into a project of their own
(a scratch directory outside the source tree) and run with the Python of
the environment the package is installed in, against a real server."""

import shutil
import stat
import subprocess
import sys

import pytest

from conftest import ROOT, Server

EXAMPLES = ROOT / "bindings" / "python" / "examples"


@pytest.fixture()
def project(tmp_path):
    """A scratch project holding copies of the examples."""
    for example in EXAMPLES.glob("*.py"):
        shutil.copy(example, tmp_path)
    return tmp_path


def run(project, *args):
    return subprocess.run(
        [sys.executable, *map(str, args)], cwd=project, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def threshold_server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("examples-threshold"), threshold="3:2")
    yield s
    s.stop()


def test_quickstart(server, project):
    kind, value = server.listed()[1]
    out = run(project, "quickstart.py", server.url, server.operator_hex, project / "cache",
              f"{kind}:{value}:copied-quickstart", "sha256:" + "cd" * 32)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "2 vouchers acknowledged\n"
    assert ("copied-quickstart", value) in {(m["associated_data"], m["item_hex"]) for m in server.matches(1)}


def test_threshold(threshold_server, project):
    server = threshold_server
    listed = server.listed()
    args = [f"{k}:{v}:copied-threshold-{i}" for i, (k, v) in enumerate(listed)]
    account = project / "account.secret"
    for _ in range(2):  # the second run restores the account: the same uploads count once
        out = run(project, "threshold.py", server.url, server.operator_hex, project / "cache", account, 100, *args)
        assert out.returncode == 0, out.stderr
        assert out.stdout == f"t = 3, s = 2: {len(listed)} vouchers acknowledged\n"
    assert stat.S_IMODE(account.stat().st_mode) == 0o600
    # Sent twice, counted once: the account holds six vouchers, not twelve.
    (held,) = server.accounts(1)
    assert held["account_hex"] == b"account-1".hex()
    assert held["unrevealed"] + held.get("real", 0) + held.get("synthetic", 0) + held.get("rejected", 0) == len(listed)
    # Six listed uploads at a synthetic rate of 2 / 200: t = 3 real ones
    # among them unless four or more were synthetic (about 1.5e-7).
    notes = {m["associated_data"] for m in server.matches(3)}
    assert len(notes & {f"copied-threshold-{i}" for i in range(len(listed))}) >= 3


def test_threshold_refuses_a_version_1_table(server, project):
    out = run(project, "threshold.py", server.url, server.operator_hex, project / "cache",
              project / "account.secret", 100, "sha256:" + "ab" * 32)
    assert out.returncode == 1 and "version 1: use quickstart.py" in out.stderr


def test_refused(server, project):
    wrong = (server.dir / "org-a.sign.pub").read_text().strip()  # not the operator's key
    out = run(project, "refused.py", server.url, wrong, project / "cache", "sha256:" + "ab" * 32)
    assert out.returncode == 3, out.stderr
    assert "refused a table (BadSignature): manifest signature does not verify" in out.stderr
    assert out.stdout == "no verified table: uploads are not checked until one verifies\n"
    out = run(project, "refused.py", server.url, server.operator_hex, project / "cache", "sha256:" + "ab" * 32)
    assert (out.returncode, out.stdout) == (0, "1 vouchers acknowledged\n"), out.stderr
