"""A real blindmatch server per test module (bindings/testkit/server.sh).
The gRPC stubs are the installed package's (blindmatch.v1)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
TESTKIT = ROOT / "bindings" / "testkit" / "server.sh"


def pytest_configure(config):
    # The examples are imported as modules (the README's snippets are theirs).
    sys.path.insert(0, str(ROOT / "bindings" / "python" / "examples"))


class Server:
    def __init__(self, path, threshold=None, serve_args=None):
        """`threshold`: "T:S" for a table in threshold mode; `serve_args`:
        more of `serve`'s flags (as one string)."""
        self.dir = path
        env = dict(os.environ)
        if threshold:
            env["BLINDMATCH_THRESHOLD"] = threshold
        if serve_args:
            env["BLINDMATCH_SERVE_ARGS"] = serve_args
        subprocess.run([TESTKIT, "start", path], check=True, env=env)
        self.url = (path / "url").read_text().strip()
        self.operator_hex = (path / "operator.sign.pub").read_text().strip()

    def listed(self, name="listed.txt"):
        """The listed test items, as (type, hex)."""
        lines = (self.dir / name).read_text().split("\n")
        return [tuple(line.split()) for line in lines if line]

    def publish(self):
        subprocess.run([TESTKIT, "publish", self.dir], check=True)

    def matches(self, n):
        out = subprocess.run(
            [TESTKIT, "matches", self.dir, str(n)], check=True, capture_output=True
        ).stdout
        return json.loads(out)

    def accounts(self, n):
        out = subprocess.run(
            [TESTKIT, "accounts", self.dir, str(n)], check=True, capture_output=True
        ).stdout
        return json.loads(out)

    def stop(self):
        subprocess.run([TESTKIT, "stop", self.dir], check=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("server"))
    yield s
    s.stop()


@pytest.fixture(scope="session")
def vectors():
    return json.loads((ROOT / "protocol" / "vectors" / "blindmatch-v1.json").read_text())
