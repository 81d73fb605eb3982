"""AssemblyScript: init -> build with local node/npm -> real Envoy 1.40.

Needs Node.js >= 20 with npm and the npm registry (install.sh --dev provides both).
The template must work with an EMPTY plugin configuration in Envoy (the classic
@solo-io/proxy-runtime sample crashes there).
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
TAG = "test/as-hello:v1"


@pytest.fixture(scope="module")
def installed_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated project, copied by the tests that edit or rebuild it."""
    project = tmp_path_factory.mktemp("as") / "as-hello"
    subprocess.run([*wasmetool_command(), "init", str(project), "--language", "assemblyscript",
                    "--disable-prompt"], check=True, capture_output=True, timeout=60)
    return project


@pytest.fixture
def as_project(installed_project: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(installed_project, tmp_path / "as-hello", symlinks=True))


def test_init_build_and_serve_through_envoy(cli_process, tmp_path: Path) -> None:
    project = tmp_path / "as-hello"
    init = cli_process("init", str(project), "--language", "as", "--platform", "envoy",
                       "--platform-version", "1.40", "--root-id", "as_root", "--disable-prompt")
    assert init.code == 0, init.err

    wasm = tmp_path / "filter.wasm"
    built = cli_process("build", str(project), "-t", TAG, "-o", "json", "--out", str(wasm),
                        timeout=600)
    assert built.code == 0, built.err
    report = json.loads(built.out)
    assert report["language"] == "assemblyscript" and report["toolchain"].startswith("local:node")
    assert report["cached"] is False and report["abiVersion"] == "v0.2.1"
    assert wasm.stat().st_size == report["size"]
    assert (project / "node_modules" / "assemblyscript").is_dir()  # npm ci ran

    reply = hello_through_envoy(wasm, tmp_path / "envoy-default", root_id="as_root")
    assert (reply.status, reply.hello) == (200, ["world"])
    assert "request GET /greet?x=1" in reply.logs

    reply = hello_through_envoy(wasm, tmp_path / "envoy-config", "from-config", root_id="as_root")
    assert (reply.status, reply.hello) == (200, ["from-config"])

    # The same image through `wasmetool run`, straight from the store.
    reply = hello_through_run(TAG, tmp_path / "run-default")
    assert (reply.status, reply.hello) == (200, ["world"])
    assert "request GET /greet?x=1" in reply.logs
    reply = hello_through_run(TAG, tmp_path / "run-config", "--config", "from-config")
    assert (reply.status, reply.hello) == (200, ["from-config"])


def test_unchanged_rebuild_is_a_cache_hit(cli_process, as_project: Path) -> None:
    first = cli_process("build", str(as_project), "-t", TAG, "-o", "json", timeout=600)
    assert first.code == 0, first.err
    again = cli_process("build", "assemblyscript", str(as_project), "-t", "test/as-hello:v2",
                        "-o", "json")
    assert again.code == 0, again.err
    assert json.loads(again.out)["cached"] is True
    assert json.loads(again.out)["wasmDigest"] == json.loads(first.out)["wasmDigest"]


def test_compile_error_is_shown_as_asc_printed_it(cli_process, as_project: Path) -> None:
    source = as_project / "assembly" / "index.ts"
    source.write_text(source.read_text() + '\nconst broken: i32 = "not a number";\n')
    result = cli_process("build", str(as_project), "-t", "test/as-hello:bad", timeout=600)
    assert result.code == 1
    assert "TS2322" in result.err  # asc's own diagnostic code
    assert "assembly/index.ts" in result.err
    assert result.err.rstrip().splitlines()[-1].startswith("error: asc exited with status 1")
    assert "Traceback" not in result.err
