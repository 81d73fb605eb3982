"""The pytest plugin, as a filter author uses it: a test file and `pytest` in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

USER_TESTS = '''
import pytest


def test_header_added(http_filter):
    ex = http_filter.request({":method": "GET", ":path": "/", ":authority": "x"})
    assert ex.headers["x-added-resp"] == "yes"


def test_step_by_step(http_stream):
    http_stream.send_request_headers({":method": "GET", ":path": "/", ":authority": "x"})
    assert http_stream.forwarded_headers["x-added-req"] == "yes"


@pytest.mark.wasmetool(filter="config.wasm", configuration="from-mark")
def test_marker_options(http_filter):
    ex = http_filter.request({":method": "GET", ":path": "/", ":authority": "x"})
    assert ex.forwarded_headers["x-plugin-config"] == "from-mark"


def test_each_test_gets_a_fresh_vm(http_filter):
    assert http_filter.host.http_streams == 0


def test_headers_differ(http_filter):
    ex = http_filter.request({":method": "GET", ":path": "/", ":authority": "x"})
    assert ex.headers == {":status": "200", "x-added-resp": "no"}


def test_body_differs(http_filter):
    ex = http_filter.request({":method": "GET", ":path": "/", ":authority": "x"},
                             response_body="line one\\nline two\\n")
    assert ex.body == b"line one\\nline 2\\n"
'''


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "-o", "addopts=", *args], cwd=directory, capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def test_fixtures_diffs_and_trace_tail(tmp_path: Path, wat) -> None:
    shutil.copy(wat("headers"), tmp_path / "headers.wasm")
    shutil.copy(wat("config"), tmp_path / "config.wasm")
    (tmp_path / "test_filter.py").write_text(USER_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\nwasmetool_filter = headers.wasm\n")
    done = run_pytest(tmp_path)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "2 failed, 4 passed" in out
    assert "headers differ (- expected, + actual):" in out
    assert "-x-added-resp: no" in out and "+x-added-resp: yes" in out
    assert "bodies differ (- expected, + actual):" in out
    assert "-line 2" in out and "+line two" in out
    assert "wasmetool trace" in out
    assert "proxy_add_header_map_value(map=response_headers, key='x-added-resp', " \
           "value='yes') = OK" in out


def test_no_filter_configured_is_a_clear_failure(tmp_path: Path) -> None:
    (tmp_path / "test_filter.py").write_text("def test_x(http_filter):\n    pass\n")
    done = run_pytest(tmp_path)
    assert done.returncode == 1
    assert "no filter: pass --wasmetool-filter" in done.stdout
