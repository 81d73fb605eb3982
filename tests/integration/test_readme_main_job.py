"""The README's main job, as a user runs it: store the example filter, list it, run it."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
from pathlib import Path

import pytest
import wasmtime

from tests.conftest import wasmetool_command
from tests.support.wasmetool_run import READY_LINE

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_example_module_is_built_from_its_source() -> None:
    assert (EXAMPLES / "hello.wasm").read_bytes() == wasmtime.wat2wasm((EXAMPLES / "hello.wat").read_text())


def test_build_list_and_run_the_example(cli_process) -> None:
    built = cli_process("build", "precompiled", str(EXAMPLES / "hello.wasm"), "-t", "me/hello:v1")
    assert built.code == 0, built.err
    assert "me/hello" in cli_process("list").out

    process = subprocess.Popen(
        [*wasmetool_command(), "run", "me/hello:v1", "--listen", "127.0.0.1:0", "--admin", "off"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        line = process.stdout.readline()
        match = READY_LINE.search(line)
        assert match, line + process.stderr.read() if process.poll() is not None else line
        connection = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=10)
        connection.request("GET", "/readme")
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200
        assert response.getheader("hello") == "world"
        assert b'"/readme"' in body  # the built-in echo upstream shows what it received
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
