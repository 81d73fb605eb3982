"""The check every language template must pass: one GET through a proxy with the
filter, reading back the `hello` response header it adds.

The same helpers drive real Envoy 1.40 and `wasmetool run` (a store ref), so each
template test says only what is particular to its language.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.envoy import run_envoy
from tests.support.plugins import ProxySetup, WasmPlugin
from tests.support.ports import wait_until
from tests.support.upstream import run_echo_upstream
from tests.support.wasmetool_run import READY_LINE, wasmetool_command

GREETING_PATH = "/greet?x=1"


@dataclass
class HelloReply:
    status: int
    hello: list[str]  # every value of the `hello` response header
    logs: str         # what the proxy logged (the filter's info lines among it)


def http_get(url: str, path: str = "/", method: str = "GET", body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def hello_through_envoy(wasm: Path, workdir: Path, configuration: str | None = None,
                        root_id: str = "hello_root") -> HelloReply:
    """One GET through real Envoy with ``wasm`` as its only HTTP filter."""
    with run_echo_upstream() as upstream:
        plugin = WasmPlugin("hello", wasm, root_id=root_id, configuration=configuration)
        with run_envoy(ProxySetup(upstream=upstream.url, http_filters=[plugin]), workdir) as envoy:
            status, headers, _ = http_get(envoy.url, GREETING_PATH)
            return HelloReply(status, headers.get_all("hello") or [], envoy.logs())


@contextlib.contextmanager
def running(ref: str, workdir: Path, *args: str, home: Path | None = None) -> Iterator[tuple[str, Path]]:
    """`wasmetool run REF ARGS` as a child (built-in echo upstream): yields (url, log path)."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "run.log"
    env = {**os.environ, **({"WASMETOOL_HOME": str(home)} if home else {})}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*wasmetool_command(), "run", ref, "--listen", "127.0.0.1:0", "--admin", "off", *args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        try:
            def ready() -> bool:
                output = log_path.read_text(errors="replace")
                assert process.poll() is None, f"wasmetool run exited:\n{output}"
                return READY_LINE.search(output) is not None
            wait_until(ready, 30, what="wasmetool run")
            port = READY_LINE.search(log_path.read_text(errors="replace")).group(1)
            yield f"http://127.0.0.1:{port}", log_path
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def hello_through_run(ref: str, workdir: Path, *args: str, home: Path | None = None) -> HelloReply:
    """One GET through `wasmetool run REF ARGS` (e.g. ``--config VALUE``)."""
    with running(ref, workdir, *args, home=home) as (url, log_path):
        status, headers, _ = http_get(url, GREETING_PATH)
    return HelloReply(status, headers.get_all("hello") or [], log_path.read_text(errors="replace"))
