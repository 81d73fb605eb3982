"""The HTTP/1.1 proxy itself (no filters): framing, keep-alive, pipelining, upstream errors.

The proxy runs on its own event loop in a thread; clients and upstreams are plain sockets
on 127.0.0.1, so what is tested is the bytes on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wasmetool.host.dispatch import HttpCallResponse
from wasmetool.host.plugin_file import parse_http_url
from wasmetool.proxy.app import new_event_loop
from wasmetool.proxy.dispatcher import AsyncioDispatcher
from wasmetool.proxy.echo import EchoUpstream
from wasmetool.proxy.http import HttpProxyServer, PassthroughStream
from wasmetool.proxy.stats import ServerStats
from wasmetool.proxy.upstream import UpstreamPool


class LoopThread:
    def __init__(self) -> None:
        self.loop = new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def call(self, fn: Callable[[], Any]) -> Any:
        async def wrapper() -> Any:
            return fn()
        return self.run(wrapper())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.stop()


def start_proxy(lt: LoopThread, upstream_url: str | None) -> tuple[int, ServerStats]:
    stats = ServerStats()
    if upstream_url is None:
        upstream: Any = EchoUpstream(lt.loop, stats)
    else:
        upstream = UpstreamPool(lt.loop, parse_http_url(upstream_url, "u"), stats)
    server = HttpProxyServer(lt.loop, PassthroughStream, upstream, stats)
    _, port = lt.run(server.listen("127.0.0.1", 0))
    return port, stats


def exchange(port: int, raw: bytes, until: Callable[[bytes], bool] | None = None,
             timeout: float = 5.0) -> bytes:
    """Send raw bytes; read until `until(data)` or the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until is not None and until(data):
                break
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
        return data


def split_response(data: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, body


@contextlib.contextmanager
def raw_upstream(responder: Callable[[bytes], bytes | None]) -> Iterator[tuple[int, list[bytes]]]:
    """A scripted upstream: after each complete request head (+ body), send responder(request)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    received: list[bytes] = []
    stopping = threading.Event()

    def handle(conn: socket.socket) -> None:
        buf = b""
        conn.settimeout(0.1)
        with conn:
            while not stopping.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b"\r\n\r\n" in buf:
                    head, _, rest = buf.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    if b"transfer-encoding: chunked" in head.lower():
                        end = rest.find(b"0\r\n\r\n")
                        if end < 0:
                            break
                        body_len = end + 5
                    else:
                        body_len = length
                    if len(rest) < body_len:
                        break
                    request = head + b"\r\n\r\n" + rest[:body_len]
                    buf = rest[body_len:]
                    received.append(request)
                    answer = responder(request)
                    if answer is None:
                        return
                    conn.settimeout(30)       # the proxy may hold us back (backpressure)
                    conn.sendall(answer)
                    conn.settimeout(0.1)

    def serve() -> None:
        while not stopping.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], received
    finally:
        stopping.set()
        thread.join(5)
        server.close()


def dechunk(body: bytes) -> bytes:
    out = b""
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return out
        out += body[:size]
        body = body[size + 2:]


def complete_response(data: bytes) -> bool:
    if b"\r\n\r\n" not in data:
        return False
    _, headers, body = split_response(data)
    if "content-length" in headers:
        return len(body) >= int(headers["content-length"])
    return body.endswith(b"0\r\n\r\n")


def test_echo_get_and_post(loop_thread: LoopThread) -> None:
    port, stats = start_proxy(loop_thread, None)
    data = exchange(port, b"POST /p?q=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                          b"Connection: close\r\n\r\nabc")
    status, headers, body = split_response(data)
    assert status == "HTTP/1.1 200 OK"
    assert headers["connection"] == "close"
    echoed = json.loads(body)
    assert (echoed["method"], echoed["path"], echoed["body"]) == ("POST", "/p?q=1", "abc")
    assert echoed["headers"][0] == ["host", "h"]
    assert stats.downstream_rq_2xx == 1


def test_pipelined_requests_answered_in_order(loop_thread: LoopThread) -> None:
    port, _ = start_proxy(loop_thread, None)
    raw = b"".join(b"GET /%d HTTP/1.1\r\nHost: h\r\n\r\n" % i for i in range(5))
    data = exchange(port, raw + b"GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    paths = [json.loads(part.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in part else part)["path"]
             for part in data.split(b"HTTP/1.1 200 OK")[1:]]
    assert paths == ["/0", "/1", "/2", "/3", "/4", "/last"]


def test_chunked_request_and_hop_by_hop_headers(loop_thread: LoopThread) -> None:
    with raw_upstream(lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") as (up, got):
        port, _ = start_proxy(loop_thread, f"http://127.0.0.1:{up}")
        data = exchange(port, b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                              b"Connection: keep-alive, x-private\r\nX-Private: secret\r\n"
                              b"Keep-Alive: timeout=5\r\nX-Kept: yes\r\n\r\n"
                              b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", until=complete_response)
        assert split_response(data)[2] == b"ok"
    head, _, body = got[0].partition(b"\r\n\r\n")
    lower = head.lower()
    assert lower.startswith(b"post /c http/1.1\r\nhost: h\r\n")
    assert b"x-kept: yes" in lower
    assert b"x-private" not in lower and b"keep-alive" not in lower
    assert b"transfer-encoding: chunked" in lower        # re-chunked towards the upstream
    assert dechunk(body) == b"abcde"


def test_upstream_chunked_response_and_trailers(loop_thread: LoopThread) -> None:
    response = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Up: 1\r\n\r\n"
                b"4\r\nwasm\r\n3\r\nety\r\n0\r\nX-Trailer: t\r\n\r\n")
    with raw_upstream(lambda req: response) as (up, _):
        port, _ = start_proxy(loop_thread, f"http://127.0.0.1:{up}")
        data = exchange(port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
                        until=lambda d: d.endswith(b"\r\n\r\n") and b"0\r\n" in d)
    status, headers, body = split_response(data)
    assert headers["x-up"] == "1" and headers["transfer-encoding"] == "chunked"
    assert dechunk(body) == b"wasmety"
    assert body.endswith(b"0\r\nx-trailer: t\r\n\r\n")


def test_head_204_and_keep_alive_reuse(loop_thread: LoopThread) -> None:
    def respond(req: bytes) -> bytes:
        if req.startswith(b"HEAD"):
            return b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
        if b"/empty" in req:
            return b"HTTP/1.1 204 No Content\r\n\r\n"
        return b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"

    with raw_upstream(respond) as (up, got):
        port, stats = start_proxy(loop_thread, f"http://127.0.0.1:{up}")
        data = exchange(port, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"
                              b"GET /empty HTTP/1.1\r\nHost: h\r\n\r\n"
                              b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                              b"GET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    parts = data.split(b"HTTP/1.1 ")[1:]
    assert parts[0].startswith(b"200") and b"content-length: 10" in parts[0].lower()
    assert parts[0].endswith(b"\r\n\r\n")                  # no body for HEAD
    assert parts[1].startswith(b"204") and parts[1].endswith(b"\r\n\r\n")
    assert parts[2].endswith(b"\r\n\r\nx") and parts[3].endswith(b"\r\n\r\nx")
    assert len(got) == 4
    assert stats.upstream_cx_total <= 2                    # keep-alive reuse (HEAD closes one)


def test_expect_100_continue(loop_thread: LoopThread) -> None:
    port, _ = start_proxy(loop_thread, None)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"body")
        data = b""
        while not complete_response(data):
            data += sock.recv(65536)
    echoed = json.loads(split_response(data)[2])
    assert echoed["body"] == "body"
    assert "expect" not in [name for name, _ in echoed["headers"]]


def test_bad_request_and_upstream_failures(loop_thread: LoopThread) -> None:
    port, stats = start_proxy(loop_thread, None)
    data = exchange(port, b"NOT HTTP AT ALL\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400 Bad Request")
    assert stats.downstream_cx_protocol_error == 1

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = closed.getsockname()[1]
    port, stats = start_proxy(loop_thread, f"http://127.0.0.1:{dead}")
    status, _, body = split_response(exchange(port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
                                              until=complete_response))
    assert status.startswith("HTTP/1.1 503")
    assert body.endswith(b"reset reason: remote connection failure")
    assert stats.upstream_cx_connect_fail == 1

    with raw_upstream(lambda req: None) as (up, _):       # closes without answering
        port, _ = start_proxy(loop_thread, f"http://127.0.0.1:{up}")
        status, _, body = split_response(exchange(port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
                                                  until=complete_response))
    assert status.startswith("HTTP/1.1 503")
    assert b"connection termination" in body


def test_large_body_streams_through(loop_thread: LoopThread) -> None:
    payload = bytes(range(256)) * 8192   # 2 MiB
    response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload
    with raw_upstream(lambda req: response) as (up, got):
        port, _ = start_proxy(loop_thread, f"http://127.0.0.1:{up}")
        data = exchange(port, b"PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n"
                        % len(payload) + payload, until=complete_response, timeout=20)
    assert split_response(data)[2] == payload
    assert got[0].endswith(payload)


def test_dispatcher_http_call_success_timeout_and_unknown_cluster(
        loop_thread: LoopThread) -> None:
    results: dict[str, HttpCallResponse | None] = {}
    done = threading.Event()

    def collector(key: str) -> Callable[[HttpCallResponse | None], None]:
        def on_done(resp: HttpCallResponse | None) -> None:
            results[key] = resp
            if len(results) == 3:
                done.set()
        return on_done

    def respond(req: bytes) -> bytes:
        if b"/slow" in req:
            time.sleep(1.0)
        return b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\nX-Auth: ok\r\n\r\nauth"

    with raw_upstream(respond) as (up, got):
        stats = ServerStats()
        pool = UpstreamPool(loop_thread.loop, parse_http_url(f"http://127.0.0.1:{up}", "c"),
                            stats, "auth")
        dispatcher = AsyncioDispatcher(loop_thread.loop, {"auth": pool}, stats)
        assert dispatcher.has_cluster("auth") and not dispatcher.has_cluster("nope")
        headers = [(b":method", b"POST"), (b":path", b"/check"), (b":authority", b"auth")]
        loop_thread.call(lambda: dispatcher.http_call("auth", headers, b"hi", [], 2000,
                                                      collector("ok")))
        slow = [(b":method", b"GET"), (b":path", b"/slow"), (b":authority", b"auth")]
        loop_thread.call(lambda: dispatcher.http_call("auth", slow, b"", [], 100,
                                                      collector("slow")))
        loop_thread.call(lambda: dispatcher.http_call("nope", headers, b"", [], 100,
                                                      collector("nope")))
        assert done.wait(10)
    ok = results["ok"]
    assert ok is not None and ok.body == b"auth"
    assert (b":status", b"201") in ok.headers and (b"x-auth", b"ok") in ok.headers
    slow_reply = results["slow"]       # as Envoy: the timeout is a 504 reply, not a failure
    assert slow_reply is not None and slow_reply.body == b"upstream request timeout"
    assert slow_reply.headers[0] == (b":status", b"504")
    assert results["nope"] is None
    [check] = [r for r in got if r.startswith(b"POST /check ")]   # calls race each other
    assert check.startswith(b"POST /check HTTP/1.1\r\nhost: auth\r\n") and check.endswith(b"hi")
    # as Envoy's async client: its own request headers, and the upstream time in the answer
    assert b"\r\nx-envoy-internal: true\r\nx-envoy-expected-rq-timeout-ms: 2000\r\n" in check
    assert ok.headers[-1][0] == b"x-envoy-upstream-service-time"
    assert stats.http_call_total == 3 and stats.http_call_failure == 2


def test_client_half_close_still_gets_its_answer(loop_thread: LoopThread) -> None:
    port, _ = start_proxy(loop_thread, None)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /half HTTP/1.1\r\nHost: h\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status, _, body = split_response(data)
    assert status == "HTTP/1.1 200 OK"   # and the proxy closed the connection after it
    assert json.loads(body)["path"] == "/half"


def test_route_timeout_answers_504(loop_thread: LoopThread,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import wasmetool.proxy.http as http_module

    monkeypatch.setattr(http_module, "ROUTE_TIMEOUT_S", 0.3)

    def slow(req: bytes) -> bytes:
        time.sleep(2.0)
        return b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    with raw_upstream(slow) as (up, _):
        port, stats = start_proxy(loop_thread, f"http://127.0.0.1:{up}")
        data = exchange(port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", until=complete_response)
    status, _, body = split_response(data)
    assert status.startswith("HTTP/1.1 504") and body == b"upstream request timeout"
    assert stats.upstream_rq_timeout == 1


def test_slow_client_large_download_with_backpressure(loop_thread: LoopThread) -> None:
    payload = bytes(range(251)) * (8 * 4096)      # ~8 MiB, not a multiple of 64 KiB
    response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload
    with raw_upstream(lambda req: response) as (up, _):
        port, _ = start_proxy(loop_thread, f"http://127.0.0.1:{up}")
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            sock.sendall(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\nGET /again HTTP/1.1\r\nHost: h\r\n"
                         b"Connection: close\r\n\r\n")
            received = bytearray()
            while chunk := sock.recv(16384):
                received += chunk
                time.sleep(0.0005)
    data = bytes(received)
    first, _, rest = data.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 OK")
    assert rest[:len(payload)] == payload
    assert rest[len(payload):].startswith(b"HTTP/1.1 200 OK")          # the pipelined one too
    assert rest.endswith(payload)


def test_oversized_request_head_is_refused(loop_thread: LoopThread) -> None:
    port, _ = start_proxy(loop_thread, None)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n")
        for _ in range(80):
            try:
                sock.sendall(b"x-filler: " + b"a" * 1000 + b"\r\n")
            except OSError:
                break
        data = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                data += chunk
    assert data.startswith(b"HTTP/1.1 431 Request Header Fields Too Large")


def test_https_upstream(loop_thread: LoopThread, tmp_path: Path) -> None:
    import http.server
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            body = b"secure " + self.path.encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"https://localhost:{server.server_address[1]}"
        for trusted, expected in ((True, b"secure /tls"), (False, b"remote connection failure")):
            client_ctx = ssl.create_default_context(cafile=str(cert)) if trusted else \
                ssl.create_default_context()
            stats = ServerStats()
            pool = UpstreamPool(loop_thread.loop, parse_http_url(url, "u"), stats,
                                ssl_context=client_ctx)
            proxy = HttpProxyServer(loop_thread.loop, PassthroughStream, pool, stats)
            _, port = loop_thread.run(proxy.listen("127.0.0.1", 0))
            data = exchange(port, b"GET /tls HTTP/1.1\r\nHost: h\r\n\r\n",
                            until=complete_response)
            assert split_response(data)[2].endswith(expected)   # untrusted cert: refused
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("bind", ["127.0.0.1", "0.0.0.0"])
def test_request_without_host_gets_the_connections_local_address(loop_thread: LoopThread,
                                                                  bind: str) -> None:
    """A concrete listener address is taken and formatted once; a wildcard
    one is resolved per connection. Either way :authority is the address the client hit."""
    stats = ServerStats()
    server = HttpProxyServer(loop_thread.loop, PassthroughStream,
                             EchoUpstream(loop_thread.loop, stats), stats)
    _, port = loop_thread.run(server.listen(bind, 0))
    assert (server.fixed_local is not None) == (bind == "127.0.0.1")
    for close in (b"Connection: close\r\n", b""):
        data = exchange(port, b"GET /x HTTP/1.0\r\n" + close + b"\r\n")
        echoed = json.loads(split_response(data)[2])
        assert echoed["headers"][0] == ["host", f"127.0.0.1:{port}"]
