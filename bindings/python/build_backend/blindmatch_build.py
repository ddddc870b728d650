"""The PEP 517 backend of the `blindmatch` package: maturin's, with one step
before it.

maturin makes the Python module by running uniffi's generator over the
library it built. When the Cargo workspace has a binary named
`uniffi-bindgen` it runs it with `cargo run`, which is a debug build of the
generator and all its dependencies, shared with nothing else (most of a
first build's time on two cores); otherwise it runs `uniffi-bindgen` from
PATH. So this workspace's generator is called `blindmatch-uniffi-bindgen`
(the uniffi version of the library, as it must be), and this backend builds
it in the wheel's own Cargo profile, where it shares its dependencies with
the library, and puts it on PATH as `uniffi-bindgen` for maturin.
Everything else is maturin's: `pip install ./bindings/python`,
`pip wheel ./bindings/python` and `python -m build` all come here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from typing import Any, Mapping

import maturin
from maturin import (  # noqa: F401  (re-exported: the rest of PEP 517 is maturin's)
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_wheel,
)

_GENERATOR = "blindmatch-uniffi-bindgen"


def _profile(config_settings: Mapping[str, Any] | None) -> str:
    """The Cargo profile maturin builds the library in: `--profile` of the
    build's arguments (MATURIN_PEP517_ARGS or the `build-args` setting),
    else pyproject.toml's [tool.maturin] profile."""
    args = maturin.get_maturin_pep517_args(config_settings)
    for i, arg in enumerate(args):
        if arg == "--release" or arg == "-r":
            return "release"
        if arg == "--profile" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--profile="):
            return arg.split("=", 1)[1]
    return maturin.get_config().get("profile", "dev")


def _with_generator(config_settings: Mapping[str, Any] | None, build):
    if shutil.which("cargo") is None:
        raise RuntimeError(
            "building the blindmatch package needs a Rust toolchain: cargo was not found on "
            "PATH (install it with rustup, https://rustup.rs)"
        )
    # PEP 517 runs the hooks in the project's directory, where maturin reads
    # pyproject.toml: the library's crate is its manifest-path, and cargo
    # finds the workspace (and the generator's crate) from there.
    manifest = os.path.abspath(maturin.get_config()["manifest-path"])
    profile = _profile(config_settings)
    print(f"blindmatch: building uniffi's generator ({_GENERATOR}, profile {profile})", flush=True)
    subprocess.run(
        ["cargo", "build", "--quiet", "--profile", profile, "-p", _GENERATOR, "--manifest-path", manifest],
        check=True,
    )
    metadata = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--manifest-path", manifest],
        check=True,
        stdout=subprocess.PIPE,
    )
    target = json.loads(metadata.stdout)["target_directory"]
    # `cargo build --profile dev` writes to target/debug.
    built = os.path.join(target, "debug" if profile == "dev" else profile, _GENERATOR)
    with tempfile.TemporaryDirectory(prefix="blindmatch-build-") as bin_dir:
        os.symlink(built, os.path.join(bin_dir, "uniffi-bindgen"))
        path = os.environ.get("PATH", "")
        os.environ["PATH"] = bin_dir + os.pathsep + path
        try:
            return build()
        finally:
            os.environ["PATH"] = path


def build_wheel(
    wheel_directory: str,
    config_settings: Mapping[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    return _with_generator(
        config_settings,
        lambda: maturin.build_wheel(wheel_directory, config_settings, metadata_directory),
    )


def build_sdist(sdist_directory: str, config_settings: Mapping[str, Any] | None = None) -> str:
    # maturin's source distribution holds the library's crates but not the
    # generator's, so a wheel built from it could not make the module.
    raise RuntimeError(
        "blindmatch has no source distribution: build the wheel from the repository "
        "(pip install ./bindings/python, pip wheel ./bindings/python, python -m build --wheel)"
    )


def build_editable(
    wheel_directory: str,
    config_settings: Mapping[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    return _with_generator(
        config_settings,
        lambda: maturin.build_editable(wheel_directory, config_settings, metadata_directory),
    )
