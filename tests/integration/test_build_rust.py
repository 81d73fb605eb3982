"""Rust: `wasmetool init` -> `wasmetool build rust` (local toolchain) -> real Envoy 1.40.

The first build in a fresh WASMETOOL_HOME is a cold one: crates come from
crates.io and, on the Debian route, cargo compiles the standard library for
wasm32-wasip1 (about a minute on two cores). Later builds in the same home reuse
both from wasmetool's cache directory.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.hello import hello_through_envoy, hello_through_run
from tests.support.wasmetool_run import wasmetool_command

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wasmetool-home")


def wasmetool(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WASMETOOL_HOME": str(home)}
    return subprocess.run([*wasmetool_command(), *args], capture_output=True, text=True,
                          env=env, timeout=600, check=False)


def init_project(home: Path, directory: Path) -> None:
    done = wasmetool(home, "init", str(directory), "--language", "rust", "--disable-prompt")
    assert done.returncode == 0, done.stderr


def build(home: Path, directory: Path, tag: str, out: Path) -> subprocess.CompletedProcess[str]:
    return wasmetool(home, "build", "rust", str(directory), "-t", tag, "--out", str(out))


def test_template_builds_and_adds_hello_header_in_envoy(home: Path, tmp_path: Path) -> None:
    project = tmp_path / "rust-hello"
    init_project(home, project)
    cargo_toml = (project / "Cargo.toml").read_text()
    assert 'name = "rust-hello"' in cargo_toml and 'crate-type = ["cdylib"]' in cargo_toml
    assert 'name = "rust-hello"' in (project / "Cargo.lock").read_text()
    assert json.loads((project / "runtime-config.json").read_text())["config"]["rootIds"] == ["hello_root"]

    wasm = tmp_path / "hello.wasm"
    done = build(home, project, "test/rust:v1", wasm)
    assert done.returncode == 0, done.stderr
    assert "stored test/rust:v1" in done.stdout
    # Cargo's caches live outside the project (in wasmetool's cache directory
    # unless CARGO_HOME / CARGO_TARGET_DIR say otherwise).
    cargo_home = Path(os.environ.get("CARGO_HOME") or home / "cache" / "rust" / "cargo-home")
    assert (cargo_home / "registry").is_dir()
    assert not (project / "target").exists()

    reply = hello_through_envoy(wasm, tmp_path / "envoy-default")
    assert (reply.status, reply.hello) == (200, ["world"])
    assert "GET /greet?x=1" in reply.logs  # the per-request info log
    reply = hello_through_envoy(wasm, tmp_path / "envoy-config", "from-config")
    assert (reply.status, reply.hello) == (200, ["from-config"])

    # Cargo may rewrite the template's Cargo.lock on the first build (it sorts the
    # packages by name); the cache keys the result by the inputs after the build
    # too, so the very next unchanged build is answered from the cache.
    again = build(home, project, "test/rust:v1", wasm)
    assert again.returncode == 0, again.stderr
    assert "cached" in again.stdout


def test_template_through_wasmetool_run(home: Path, tmp_path: Path) -> None:
    project = tmp_path / "rust-run"
    init_project(home, project)
    done = build(home, project, "test/rust-run:v1", tmp_path / "run.wasm")
    assert done.returncode == 0, done.stderr
    # The stored image's runtime config gives run its root id (hello_root).
    reply = hello_through_run("test/rust-run:v1", tmp_path / "default", home=home)
    assert (reply.status, reply.hello) == (200, ["world"])
    reply = hello_through_run("test/rust-run:v1", tmp_path / "config", "--config", "from-run", home=home)
    assert (reply.status, reply.hello) == (200, ["from-run"])


def test_compile_error_is_shown_as_rustc_printed_it(home: Path, tmp_path: Path) -> None:
    project = tmp_path / "broken"
    init_project(home, project)
    lib = project / "src" / "lib.rs"
    lib.write_text(lib.read_text() + "\nfn broken() -> u32 { undeclared_name }\n")
    done = build(home, project, "test/broken:v1", tmp_path / "broken.wasm")
    assert done.returncode == 1
    assert "undeclared_name" in done.stderr and "src/lib.rs" in done.stderr
    assert "error:" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "broken.wasm").exists()
