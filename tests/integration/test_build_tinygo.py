"""Go (language key tinygo): init -> build with the local Go -> real Envoy 1.40.

Needs Go >= 1.24 and the Go module proxy (install.sh --dev provides both).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import wasmetool_command
from tests.support.hello import hello_through_envoy, hello_through_run

pytestmark = pytest.mark.integration
TAG = "test/go-hello:v1"


@pytest.fixture(scope="module")
def pristine_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("go") / "go-hello"
    subprocess.run([*wasmetool_command(), "init", str(project), "--language", "tinygo",
                    "--disable-prompt"], check=True, capture_output=True, timeout=60)
    return project


@pytest.fixture
def go_project(pristine_project: Path, tmp_path: Path) -> Path:
    """A fresh copy of the generated project for each test (tests edit sources)."""
    return Path(shutil.copytree(pristine_project, tmp_path / "go-hello"))


def test_init_build_and_serve_through_envoy(cli_process, tmp_path: Path) -> None:
    go_project = tmp_path / "go-hello"
    init = cli_process("init", str(go_project), "--language", "go", "--platform", "envoy",
                       "--platform-version", "1.40", "--disable-prompt")
    assert init.code == 0, init.err

    wasm = tmp_path / "filter.wasm"
    built = cli_process("build", str(go_project), "-t", TAG, "-o", "json", "--out", str(wasm),
                        timeout=600)
    assert built.code == 0, built.err
    report = json.loads(built.out)
    assert report["language"] == "tinygo" and report["toolchain"].startswith("local:go1.")
    assert report["cached"] is False and report["abiVersion"] == "v0.2.0"
    assert wasm.stat().st_size == report["size"]

    reply = hello_through_envoy(wasm, tmp_path / "envoy-default", root_id="hello_root")
    assert (reply.status, reply.hello) == (200, ["world"])
    assert "request GET /greet?x=1" in reply.logs

    reply = hello_through_envoy(wasm, tmp_path / "envoy-config", "from-config", root_id="hello_root")
    assert (reply.status, reply.hello) == (200, ["from-config"])

    # The same image through `wasmetool run`, straight from the store.
    reply = hello_through_run(TAG, tmp_path / "run-default")
    assert (reply.status, reply.hello) == (200, ["world"])
    assert "request GET /greet?x=1" in reply.logs
    reply = hello_through_run(TAG, tmp_path / "run-config", "--config", "from-config")
    assert (reply.status, reply.hello) == (200, ["from-config"])

    # The stored image carries the template's runtime config.
    listed = cli_process("inspect", TAG, "-o", "json")
    assert listed.code == 0, listed.err
    assert "hello_root" in listed.out


def test_unchanged_rebuild_is_a_cache_hit_and_edits_are_not(cli_process, go_project: Path) -> None:
    first = cli_process("build", str(go_project), "-t", TAG, "-o", "json", timeout=600)
    assert first.code == 0, first.err
    again = cli_process("build", "go", str(go_project), "-t", "test/go-hello:v2", "-o", "json")
    assert again.code == 0, again.err
    assert json.loads(again.out)["cached"] is True
    assert json.loads(again.out)["wasmDigest"] == json.loads(first.out)["wasmDigest"]

    main = go_project / "main.go"
    main.write_text(main.read_text().replace('"world"', '"planet"'))
    changed = cli_process("build", str(go_project), "-t", "test/go-hello:v3", "-o", "json",
                          timeout=600)
    assert changed.code == 0, changed.err
    assert json.loads(changed.out)["cached"] is False
    assert json.loads(changed.out)["wasmDigest"] != json.loads(first.out)["wasmDigest"]


def test_compile_error_is_shown_as_go_printed_it(cli_process, go_project: Path) -> None:
    main = go_project / "main.go"
    main.write_text(main.read_text() + "\nfunc broken() { undefinedThing() }\n")
    result = cli_process("build", str(go_project), "-t", "test/go-hello:bad", timeout=600)
    assert result.code == 1
    assert "undefined: undefinedThing" in result.err
    assert "./main.go:" in result.err
    assert result.err.rstrip().splitlines()[-1].startswith("error: go exited with status 1")
    assert "Traceback" not in result.err
