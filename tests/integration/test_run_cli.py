"""`wasmetool run` as a user runs it: a child process, real sockets on 127.0.0.1, real filters."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration import run_filters

pytestmark = pytest.mark.integration

READY = re.compile(r"listening on (http|tcp)://([\d.]+):(\d+) \(upstream: (.*?)(?:, admin: http://([\d.]+):(\d+))?\)")


def command() -> list[str]:
    exe = Path(sys.executable).parent / "wasmetool"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "wasmetool.cli.main"]


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    port: int
    admin_port: int | None
    stderr_path: Path
    ready_line: str

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def _read_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    box: list[bytes] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: box.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0].decode() if box else ""


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            return process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    return process.returncode


@contextlib.contextmanager
def wasmetool_run(tmp_path: Path, *args: str, admin: bool = False) -> Iterator[Running]:
    """Start `wasmetool run ARGS --listen 127.0.0.1:0`; wait for its ready line; SIGINT it."""
    stderr_path = tmp_path / f"run-{time.monotonic_ns()}.log"
    argv = [*command(), "run", *args, "--listen", "127.0.0.1:0",
            "--admin", "127.0.0.1:0" if admin else "off"]
    with open(stderr_path, "wb") as err:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err,
                                   stdin=subprocess.DEVNULL, cwd=tmp_path)
    try:
        line = _read_line(process, 60)
        match = READY.search(line)
        if not match:
            stop(process)
            pytest.fail(f"no ready line from {argv}: {line!r}\n{stderr_path.read_text()}")
        admin_port = int(match.group(6)) if match.group(6) else None
        yield Running(process, int(match.group(3)), admin_port, stderr_path, line)
    finally:
        stop(process)
        if process.stdout is not None:
            process.stdout.close()


def request(port: int, method: str = "GET", path: str = "/", body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def echo_headers(body: bytes) -> list[list[str]]:
    return json.loads(body)["headers"]


@pytest.fixture
def wasm_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "hdr": run_filters.header_filter(("x-from-filter", "yes"), ("x-wasmetool", "hello")),
        "a": run_filters.header_filter(("x-a", "1"), ("x-resp-a", "1"), metric="a_seen"),
        "b": run_filters.header_filter(("x-b", "2"), ("x-resp-b", "2"), metric="b_seen"),
        "config": run_filters.config_filter(),
        "call": run_filters.http_call_filter("auth"),
        "net": run_filters.network_filter(),
        "count": run_filters.network_filter(prefix=b""),
        "root": run_filters.root_id_filter(),
    }
    paths = {}
    for name, data in files.items():
        path = tmp_path / f"{name}.wasm"
        path.write_bytes(data)
        paths[name] = path
    return paths


@dataclass
class RecordingServer:
    port: int
    paths: list[str] = field(default_factory=list)


@contextlib.contextmanager
def recording_server(directory: Path | None = None) -> Iterator[RecordingServer]:
    """A local HTTP server: serves files from `directory`, or answers 200 "checked"."""
    state = RecordingServer(0)

    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, directory=str(directory or Path.cwd()), **kw)

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            state.paths.append(self.path)
            if directory is not None:
                super().do_GET()
                return
            body = b"checked"
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_header_filter_with_echo_upstream_and_logs(tmp_path: Path,
                                                   wasm_files: dict[str, Path]) -> None:
    with wasmetool_run(tmp_path, str(wasm_files["hdr"]), "--log-level", "info") as run:
        assert "upstream: built-in echo" in run.ready_line
        status, headers, body = request(run.port, "POST", "/items?x=1", b"payload",
                                        {"Host": "example.test", "X-Client": "c"})
        assert status == 200
        assert headers["x-wasmetool"] == "hello"
        assert headers["content-type"] == "application/json"
        echoed = json.loads(body)
        assert (echoed["method"], echoed["path"], echoed["body"]) == ("POST", "/items?x=1",
                                                                      "payload")
        assert ["host", "example.test"] in echoed["headers"]
        assert ["x-client", "c"] in echoed["headers"]
        assert ["x-from-filter", "yes"] in echoed["headers"]
        # keep-alive + pipelining: two requests on one connection, answered in order
        with socket.create_connection(("127.0.0.1", run.port), timeout=10) as sock:
            sock.sendall(b"GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
                         b"GET /two HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.count(b"HTTP/1.1 200 OK") == 2
        assert data.index(b'"path": "/one"') < data.index(b'"path": "/two"')
    log = run.stderr()
    assert re.search(r"\[info\] \[hdr\] \[ctx \d+\] request seen", log), log


def test_log_level_filters_plugin_logs(tmp_path: Path, wasm_files: dict[str, Path]) -> None:
    with wasmetool_run(tmp_path, str(wasm_files["hdr"]), "--log-level", "error") as run:
        assert request(run.port)[0] == 200
    assert "request seen" not in run.stderr()


def test_config_flag_string_and_file(tmp_path: Path, wasm_files: dict[str, Path]) -> None:
    with wasmetool_run(tmp_path, str(wasm_files["config"]), "--config", "colour=blue") as run:
        _, _, body = request(run.port)
        assert ["x-config", "colour=blue"] in echo_headers(body)
    (tmp_path / "conf.txt").write_text("from-a-file")
    with wasmetool_run(tmp_path, str(wasm_files["config"]), "--config", "@conf.txt") as run:
        _, _, body = request(run.port)
        assert ["x-config", "from-a-file"] in echo_headers(body)


def test_plugin_file_with_two_filters_in_a_chain(tmp_path: Path,
                                                 wasm_files: dict[str, Path]) -> None:
    plugins = tmp_path / "plugins.yaml"
    plugins.write_text(yaml.safe_dump({"http_filters": [
        {"name": "first", "vm_config": {"code": {"local": {"filename": "a.wasm"}}}},
        {"name": "envoy.filters.http.wasm", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {"name": "second", "vm_config": {
                "runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": "b.wasm"}}}}}},
    ]}))
    with wasmetool_run(tmp_path, "--plugins", str(plugins)) as run:
        status, headers, body = request(run.port)
        assert status == 200
        names = [name for name, _ in echo_headers(body)]
        assert names.index("x-a") < names.index("x-b")          # request: chain order
        assert headers["x-resp-a"] == "1" and headers["x-resp-b"] == "2"


def test_http_call_to_a_cluster(tmp_path: Path, wasm_files: dict[str, Path]) -> None:
    with recording_server() as auth:
        with wasmetool_run(tmp_path, str(wasm_files["call"]),
                           "--cluster", f"auth=http://127.0.0.1:{auth.port}") as run:
            status, _, body = request(run.port, path="/guarded")
            assert status == 200
            assert ["x-called", "200"] in echo_headers(body)
            assert json.loads(body)["path"] == "/guarded"
        assert auth.paths == ["/check"]


def test_proxy_to_a_real_upstream(tmp_path: Path, wasm_files: dict[str, Path]) -> None:
    with recording_server() as upstream:
        with wasmetool_run(tmp_path, str(wasm_files["hdr"]),
                           "--upstream", f"http://127.0.0.1:{upstream.port}") as run:
            for _ in range(3):
                status, headers, body = request(run.port, path="/up")
                assert (status, body, headers["x-wasmetool"]) == (200, b"checked", "hello")
        assert upstream.paths == ["/up"] * 3
    with wasmetool_run(tmp_path, str(wasm_files["hdr"]),
                       "--upstream", f"http://127.0.0.1:{_closed_port()}") as run:
        status, headers, body = request(run.port)
        assert status == 503
        assert b"upstream connect error" in body
        assert headers["x-wasmetool"] == "hello"   # the error reply passes the encode path


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def tcp_echo_server() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stopping = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stopping.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stopping.set()
        thread.join(5)
        server.close()


def test_tcp_proxy_with_a_network_filter(tmp_path: Path, wasm_files: dict[str, Path]) -> None:
    with tcp_echo_server() as port:
        with wasmetool_run(tmp_path, str(wasm_files["net"]), "--tcp",
                           "--upstream", f"127.0.0.1:{port}", admin=True) as run:
            assert run.ready_line.startswith("listening on tcp://")
            with socket.create_connection(("127.0.0.1", run.port), timeout=10) as sock:
                sock.sendall(b"hello")
                sock.shutdown(socket.SHUT_WR)
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            assert data == b"wasm:hello"
            assert run.admin_port is not None
            stats = _get(run.admin_port, "/stats/prometheus")
            assert re.search(r"tcp_connections\S* 1\b", stats), stats
        assert re.search(r"\[info\] \[net\] \[ctx \d+\] downstream closed", run.stderr())


def test_network_filter_in_front_of_http(tmp_path: Path, wasm_files: dict[str, Path]) -> None:
    plugins = tmp_path / "both.json"
    plugins.write_text(json.dumps({
        "network_filters": [{"name": "count", "vm_config": {
            "code": {"local": {"filename": "count.wasm"}}}}],
        "http_filters": [{"name": "hdr", "vm_config": {
            "code": {"local": {"filename": "hdr.wasm"}}}}],
    }))
    with wasmetool_run(tmp_path, "--plugins", str(plugins), admin=True) as run:
        status, headers, body = request(run.port, "POST", "/n", b"data")
        assert (status, headers["x-wasmetool"], json.loads(body)["body"]) == (200, "hello", "data")
        assert run.admin_port is not None
        time.sleep(0.2)   # the client connection has closed; its filter chain ends
        stats = _get(run.admin_port, "/stats/prometheus")
        assert re.search(r"tcp_connections\S* 1\b", stats), stats
    assert re.search(r"\[info\] \[count\] \[ctx \d+\] downstream closed", run.stderr())


def _get(port: int, path: str) -> str:
    status, _, body = request(port, path=path)
    assert status == 200, (path, status)
    return body.decode()


def test_stats_endpoint_shows_plugin_metric_and_counters(tmp_path: Path,
                                                         wasm_files: dict[str, Path]) -> None:
    with wasmetool_run(tmp_path, str(wasm_files["hdr"]), admin=True) as run:
        assert run.admin_port is not None
        for _ in range(3):
            assert request(run.port)[0] == 200
        assert _get(run.admin_port, "/ready").strip() == "LIVE"
        stats = _get(run.admin_port, "/stats/prometheus")
        assert re.search(r"requests_seen\S* 3\b", stats), stats
        assert "wasmetool_downstream_rq_2xx 3" in stats


def test_busy_port_is_a_clear_error(tmp_path: Path, wasm_files: dict[str, Path]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([*command(), "run", str(wasm_files["hdr"]), "--listen",
                               f"127.0.0.1:{port}", "--admin", "off"],
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: 127.0.0.1:{port} is already in use (")
    assert "Traceback" not in proc.stderr


def test_sigint_and_sigterm_stop_cleanly(tmp_path: Path, wasm_files: dict[str, Path]) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        with wasmetool_run(tmp_path, str(wasm_files["hdr"])) as run:
            assert request(run.port)[0] == 200
            run.process.send_signal(sig)
            assert run.process.wait(timeout=10) == 0
        assert "Traceback" not in run.stderr()
    for _ in range(3):   # the moment the ready line appears (once a missed signal)
        with wasmetool_run(tmp_path, str(wasm_files["hdr"])) as run:
            run.process.send_signal(signal.SIGINT)
            assert run.process.wait(timeout=10) == 0


def test_remote_code_sha256_is_enforced(tmp_path: Path, wasm_files: dict[str, Path]) -> None:
    module = wasm_files["hdr"]
    good = hashlib.sha256(module.read_bytes()).hexdigest()

    def plugin_file(sha: str) -> Path:
        path = tmp_path / f"remote-{sha[:8]}.yaml"
        path.write_text(yaml.safe_dump({"http_filters": [{"name": "remote", "vm_config": {
            "code": {"remote": {"http_uri": {"uri": f"http://127.0.0.1:{files.port}/hdr.wasm",
                                             "timeout": "5s"}, "sha256": sha}}}}]}))
        return path

    with recording_server(tmp_path) as files:
        proc = subprocess.run([*command(), "run", "--plugins", str(plugin_file("0" * 64)),
                               "--listen", "127.0.0.1:0", "--admin", "off"],
                              capture_output=True, text=True, timeout=60, env=os.environ.copy())
        assert proc.returncode == 1
        assert "sha256: mismatch" in proc.stderr and good in proc.stderr
        assert "Traceback" not in proc.stderr
        with wasmetool_run(tmp_path, "--plugins", str(plugin_file(good))) as run:
            assert request(run.port)[1]["x-wasmetool"] == "hello"
        assert files.paths == ["/hdr.wasm", "/hdr.wasm"]


def test_store_ref_uses_the_image_root_id(tmp_path: Path, wasm_files: dict[str, Path]) -> None:
    from wasmetool.oci.runtime_config import RuntimeConfig
    from wasmetool.store import Store

    Store.open().add_image(wasm_files["root"].read_bytes(),
                           RuntimeConfig(abi_versions=["v0.2.1"], root_ids=["image_root"]),
                           "me/rooted:v1")
    with wasmetool_run(tmp_path, "me/rooted:v1") as run:
        assert ["x-root-id", "image_root"] in echo_headers(request(run.port)[2])
    with wasmetool_run(tmp_path, "me/rooted:v1", "--root-id", "other") as run:
        assert ["x-root-id", "other"] in echo_headers(request(run.port)[2])
    proc = subprocess.run([*command(), "run", "me/absent:v1", "--admin", "off"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr
