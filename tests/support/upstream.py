"""A threaded HTTP/1.1 echo upstream on 127.0.0.1 for comparisons (Envoy vs wasmetool).

Every request is answered 200 with ``application/json``::

    {"method": "POST", "path": "/x?y=1", "headers": [["host", "..."], ...], "body": "..."}

Header names are lower-cased and kept in arrival order; the trailers of a chunked
request body, if any, are added as ``"trailers": [[name, value], ...]``.  The response also
carries ``x-upstream-name: <name>`` so a filter can copy something from an
``http_call`` response, and ``x-echo-<h>`` for every request header named in the
request header ``x-echo-back`` (comma-separated).  ``x-echo-status: NNN`` on the
request sets the response status, ``x-echo-delay-ms: N`` delays the answer, and
``x-echo-trailer: V`` makes the answer chunked with the response trailer
``x-echo-trailer: V``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class EchoUpstream:
    """A running echo upstream; ``requests`` records what it received."""

    name: str
    port: int
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _read_body(handler: BaseHTTPRequestHandler) -> tuple[bytes, list[list[str]]]:
    """The request body, and the trailers of a chunked body (lower-cased names)."""
    trailers: list[list[str]] = []
    if handler.headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size_line = handler.rfile.readline()
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:
                    line = handler.rfile.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    trailers.append([name.strip().lower(), value.strip()])
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        return b"".join(chunks), trailers
    length = int(handler.headers.get("content-length") or 0)
    return (handler.rfile.read(length) if length else b""), trailers


def _make_handler(upstream: EchoUpstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _echo(self) -> None:
            body, trailers = _read_body(self)
            headers = [[k.lower(), v] for k, v in self.headers.items()]
            record: dict[str, Any] = {"method": self.command, "path": self.path,
                                      "headers": headers,
                                      "body": body.decode("utf-8", errors="replace")}
            if trailers:
                record["trailers"] = trailers
            upstream.requests.append(record)
            delay_ms = int(self.headers.get("x-echo-delay-ms") or 0)
            if delay_ms:
                time.sleep(delay_ms / 1000)
            payload = json.dumps(record, sort_keys=True).encode()
            status = int(self.headers.get("x-echo-status") or 200)
            trailer = self.headers.get("x-echo-trailer")
            self.send_response_only(status)
            self.send_header("content-type", "application/json")
            if trailer is None:
                self.send_header("content-length", str(len(payload)))
            else:
                self.send_header("transfer-encoding", "chunked")
            self.send_header("x-upstream-name", upstream.name)
            for name in (self.headers.get("x-echo-back") or "").split(","):
                name = name.strip().lower()
                if name and self.headers.get(name) is not None:
                    self.send_header(f"x-echo-{name}", self.headers[name])
            self.end_headers()
            if self.command == "HEAD":
                return
            if trailer is None:
                self.wfile.write(payload)
            else:
                self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n"
                                 + f"x-echo-trailer: {trailer}\r\n\r\n".encode())

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _echo

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            return

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A proxy resetting the upstream connection (e.g. after a local reply) is normal.
        return


@contextlib.contextmanager
def run_echo_upstream(name: str = "upstream") -> Iterator[EchoUpstream]:
    """Start an echo upstream on 127.0.0.1:<free port> in a thread; stop it on exit."""
    upstream = EchoUpstream(name=name, port=0)
    server = _QuietServer(("127.0.0.1", 0), _make_handler(upstream))
    upstream.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"echo-{name}", daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class TcpEchoUpstream:
    """A running TCP echo upstream: it sends back what it reads, closing after EOF."""

    port: int

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"


@contextlib.contextmanager
def run_tcp_echo_upstream() -> Iterator[TcpEchoUpstream]:
    """Start a threaded TCP echo server on 127.0.0.1:<free port>; stop it on exit.

    Each connection is read to EOF, then everything read is written back in one send
    and the connection is closed.
    """
    import socketserver

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            chunks = []
            while True:
                data = self.request.recv(65536)
                if not data:
                    break
                chunks.append(data)
            self.request.sendall(b"".join(chunks))

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

        def handle_error(self, request: object, client_address: object) -> None:
            return

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="tcp-echo", daemon=True)
    thread.start()
    try:
        yield TcpEchoUpstream(port=int(server.server_address[1]))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
