"""The distribution client's retry, error and scheme rules, against tiny local servers.

These servers stand in for a *misbehaving* registry (5xx, dropped connections,
403) — states the real docker-registry cannot be asked to produce on demand.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from wasmetool.errors import WasmetoolError
from wasmetool.registry.client import RegistryClient, TransportOptions, is_loopback
from wasmetool.registry.credentials import Credentials


class Script:
    """What the server does for each successive request: an int status, or "drop"."""

    def __init__(self, steps: list[object]) -> None:
        self.steps = steps
        self.seen: list[tuple[str, str, str | None]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script([])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

        def _answer(self) -> None:
            script.seen.append((self.command, self.path, self.headers.get("Authorization")))
            step = script.steps.pop(0) if script.steps else 200
            if step == "drop":
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if step == "short":  # announce 2 bytes, send 1, hang up
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{")
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            status = int(step)  # type: ignore[arg-type]
            body = b"{}" if status == 200 else (
                b'{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}')
            self.send_response(status)
            if status == 503:
                self.send_header("Retry-After", "0")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_POST = do_PUT = _answer  # noqa: N815

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()
    httpd.server_close()


def _client(host: str, **kw: object) -> RegistryClient:
    return RegistryClient(host, transport=TransportOptions(plain_http=True, backoff=0.01, **kw),
                          credentials=Credentials("me", "top-secret-pw"))


def test_retries_5xx_then_succeeds(server: tuple[str, Script]) -> None:
    host, script = server
    script.steps = [503, 502, 500]
    client = _client(host)
    assert client.ping().status_code == 200
    assert client.stats.retries == 3 and len(script.seen) == 4


def test_retries_a_dropped_connection(server: tuple[str, Script]) -> None:
    host, script = server
    script.steps = ["drop", 200]
    client = _client(host)
    assert client.blob_exists("a/b", "sha256:" + "0" * 64, "repository:a/b:pull") is True
    assert client.stats.retries == 1


def test_gives_up_after_the_retry_budget(server: tuple[str, Script]) -> None:
    host, script = server
    script.steps = [503] * 10
    client = _client(host, retries=2)
    response = client.ping()
    assert response.status_code == 503 and len(script.seen) == 3
    error = client.fail(response, "the registry API")
    assert "HTTP 503" in str(error) and "try again later" in str(error)


def test_403_names_the_permission(server: tuple[str, Script]) -> None:
    host, script = server
    script.steps = [403]
    client = _client(host)
    with pytest.raises(WasmetoolError, match="denied access") as caught:
        client.blob_exists("team/f", "sha256:" + "1" * 64, "repository:team/f:pull,push")
    assert "permission to push to repository team/f" in str(caught.value)
    assert "top-secret-pw" not in str(caught.value)


def test_refused_connection_is_not_retried() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = _client(f"127.0.0.1:{port}")
    with pytest.raises(WasmetoolError, match="connection refused"):
        client.ping()
    assert client.stats.retries == 0


def test_basic_credentials_answer_a_basic_challenge_only_after_401(server: tuple[str, Script]) -> None:
    host, script = server
    client = _client(host)
    assert client.ping().status_code == 200
    assert script.seen[0][2] is None  # nothing is sent before the registry asks


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost:5000", True), ("127.0.0.1:5000", True), ("127.1.2.3", True), ("[::1]:5000", True),
    ("registry.localhost:80", True), ("ghcr.io", False), ("10.0.0.1:5000", False),
    ("localhost.example.com", False),
])
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_scheme_rules() -> None:
    assert RegistryClient("ghcr.io").scheme == "https"
    assert RegistryClient("ghcr.io", transport=TransportOptions(plain_http=True)).scheme == "http"
    assert RegistryClient("docker.io").host == "registry-1.docker.io"
    local = RegistryClient("localhost:5000")
    assert local._scheme is None  # decided by the first request: TLS if it speaks it, else HTTP
    assert RegistryClient("localhost:5000", transport=TransportOptions(insecure=True))._scheme == "https"


def test_loopback_plain_http_is_found_even_if_the_server_ignores_tls(server: tuple[str, Script]) -> None:
    """Python's http.server answers a TLS ClientHello with a 400 or silence; either way
    a loopback registry falls back to plain HTTP and the request succeeds."""
    host, script = server
    client = RegistryClient(host, transport=TransportOptions(backoff=0.01))
    assert client.ping().status_code == 200
    assert client.scheme == "http"


def test_a_download_cut_short_is_retried_and_verified(server: tuple[str, Script]) -> None:
    import hashlib

    host, script = server
    script.steps = ["short", 200]
    client = _client(host)
    digest = "sha256:" + hashlib.sha256(b"{}").hexdigest()
    assert client.get_blob("a/b", digest, 2, "repository:a/b:pull") == b"{}"
    assert client.stats.retries == 1 and client.stats.downloaded == 1


def test_a_download_with_the_wrong_content_is_refused(server: tuple[str, Script]) -> None:
    host, _ = server
    client = _client(host)
    with pytest.raises(WasmetoolError, match="does not match its digest"):
        client.get_blob("a/b", "sha256:" + "2" * 64, 2, "repository:a/b:pull")


def test_insufficient_scope_reads_as_a_permission_problem() -> None:
    import requests

    response = requests.Response()
    response.status_code = 401
    response.headers["WWW-Authenticate"] = (
        'Bearer realm="https://auth.example/token",service="r",'
        'scope="repository:team/f:pull,push",error="insufficient_scope"')
    response._content = b""
    client = RegistryClient("registry.example", credentials=Credentials("me", "pw"))
    error = client.fail(response, "uploading blob sha256:abc to team/f", "team/f", push=True)
    assert "denied access" in str(error) and "permission to push to repository team/f" in str(error)
