"""The test harness on real filters: each of the four templates, as `wasmetool init` makes
it, built with the local toolchain, then tested with no Envoy three ways - a bare
`wasmetool test` in the project, the Python API, and the pytest plugin - and made to fail
by editing the default header value in the source.

One wasmetool home for the module, so each language's build is shared by its tests
(`wasmetool test` builds through the build cache; the plugin's build is a cache hit).
Rust's crates and std build are kept under ~/.cache keyed by the rustc version.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import wasmetool_command

pytestmark = pytest.mark.integration

SOURCES = {"rust": "src/lib.rs", "cpp": "filter.cc", "tinygo": "main.go",
           "assemblyscript": "assembly/index.ts"}
PLUGIN_TEST = '''
def test_hello_world(http_filter):
    ex = http_filter.request({":method": "GET", ":path": "/greet", ":authority": "x"})
    assert ex.status == 200
    assert ex.headers["hello"] == "world"
    assert any("GET /greet" in line for line in http_filter.log_messages("info"))
'''


def rust_cache_env() -> dict[str, str]:
    if os.environ.get("CARGO_HOME") or os.environ.get("CARGO_TARGET_DIR"):
        return {}
    try:
        version = subprocess.run(["rustc", "--version"], capture_output=True, text=True,
                                 timeout=60, check=True).stdout.split()[1]
    except (OSError, subprocess.SubprocessError, IndexError):
        return {}
    base = Path.home() / ".cache" / "wasmetool-tests" / f"rust-{version}"
    return {"CARGO_HOME": str(base / "cargo-home"), "CARGO_TARGET_DIR": str(base / "target")}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wasmetool-home")


def run(home: Path, *args: str, cwd: Path | None = None,
        command: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WASMETOOL_HOME": str(home), **rust_cache_env()}
    env = {k: v for k, v in env.items() if not k.startswith("PYTEST_")}
    return subprocess.run([*(command or wasmetool_command()), *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=1200, check=False)


@pytest.mark.parametrize("language", list(SOURCES))
def test_template_tests_pass_then_fail_when_the_source_breaks(
        language: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / f"{language}-hello"
    done = run(home, "init", str(project), "--language", language, "--disable-prompt")
    assert done.returncode == 0, done.stderr
    assert (project / "tests" / "hello.test.yaml").is_file()

    # a bare `wasmetool test` in the fresh project: builds it, runs the starter file
    report = tmp_path / "pass.xml"
    done = run(home, "test", "--junit-xml", str(report), cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 cases: 2 passed, 0 failed" in done.stdout
    assert re.search(r"built (docker.io/)?wasmetool-test/\S+-hello:latest", done.stderr)
    assert ET.parse(report).getroot().get("failures") == "0"

    # the same build through the Python API (a store ref)
    monkeypatch.setenv("WASMETOOL_HOME", str(home))
    from wasmetool.testing import HttpEmulator

    ref = f"wasmetool-test/{language}-hello:latest"
    with HttpEmulator.load(ref, strict=True) as emu:
        ex = emu.request({":method": "GET", ":path": "/greet", ":authority": "x"})
        assert ex.status == 200 and ex.headers.all("hello") == ["world"]
        assert ex.actions[0] == ("proxy_on_request_headers", "Continue")
    with HttpEmulator.load(ref, configuration="from-api") as emu:
        assert emu.request().headers["hello"] == "from-api"

    # and through the pytest plugin, pointed at the project (a build-cache hit)
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "test_hello.py").write_text(PLUGIN_TEST)
    done = run(home, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
               f"--wasmetool-filter={project}", cwd=tmp_path / "plugin",
               command=[sys.executable])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout

    # break the filter: the default value edited in the source
    source = project / SOURCES[language]
    text = source.read_text()
    assert text.count('= "world"') == 1          # the default value's definition
    source.write_text(text.replace('= "world"', '= "wrld"'))
    report = tmp_path / "fail.xml"
    done = run(home, "test", "--junit-xml", str(report), cwd=project)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL" in done.stdout and "header hello: expected 'world', got 'wrld'" in done.stdout
    assert "-hello: world" in done.stdout and "+hello: wrld" in done.stdout
    assert "2 cases: 1 passed, 1 failed" in done.stdout
    suites = ET.parse(report).getroot()
    assert suites.get("failures") == "1"
    failure = suites.find("testsuite/testcase/failure")
    assert failure is not None and "expected 'world', got 'wrld'" in failure.get("message", "")
