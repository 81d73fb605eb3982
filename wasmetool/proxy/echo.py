"""The built-in echo upstream: answers every request with the request it received, as JSON.

It is dispatched in-process (no socket): the proxy hands it the request as it would go
on the wire (``host`` first, then the headers after the filter chain), and the answer
comes back on the next loop iteration, like a real upstream's would::

    {"body": "...", "headers": [["host", "127.0.0.1:8080"], ...], "method": "GET", "path": "/"}

``x-echo-status: NNN`` on the request sets the response status.
"""

from __future__ import annotations

import asyncio
import json
import logging

from wasmetool.proxy.http1 import HOP_BY_HOP, STATUS_BYTES
from wasmetool.proxy.stats import ServerStats
from wasmetool.proxy.upstream import Headers, UpstreamSink

log = logging.getLogger(__name__)
ECHO_NAME = "built-in echo"


def echo_payload(method: str, path: str, headers: list[list[str]], body: bytes) -> bytes:
    record = {"method": method, "path": path, "headers": headers,
              "body": body.decode("utf-8", errors="replace")}
    return json.dumps(record, sort_keys=True).encode()


class EchoRequest:
    """One request to the echo upstream (implements UpstreamRequest)."""

    __slots__ = ("loop", "sink", "method", "path", "headers", "body", "scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop, sink: UpstreamSink) -> None:
        self.loop = loop
        self.sink: UpstreamSink | None = sink
        self.method = "GET"
        self.path = "/"
        self.headers: list[list[str]] = []
        self.body: list[bytes] = []
        self.scheduled = False

    def send_headers(self, headers: Headers, end_stream: bool) -> None:
        authority = b""
        rest: list[list[str]] = []
        for name, value in headers:
            if name[:1] == b":":
                if name == b":method":
                    self.method = value.decode("latin-1")
                elif name == b":path":
                    self.path = value.decode("latin-1")
                elif name == b":authority":
                    authority = value
            elif name not in HOP_BY_HOP and name != b"host":
                rest.append([name.decode("latin-1"), value.decode("latin-1")])
        self.headers = [["host", authority.decode("latin-1")], *rest]
        if end_stream:
            self._schedule()

    def send_data(self, data: bytes, end_stream: bool) -> None:
        if data:
            self.body.append(data)
        if end_stream:
            self._schedule()

    def send_trailers(self, trailers: Headers) -> None:
        self._schedule()

    def abandon(self, sink: UpstreamSink) -> None:
        if self.sink is sink:
            self.sink = None

    def _schedule(self) -> None:
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._respond)

    def _respond(self) -> None:
        sink = self.sink
        if sink is None:
            return
        self.sink = None
        try:
            self._answer(sink)
        except Exception:
            log.exception("internal error while delivering the echo response")
            sink.internal_error()

    def _answer(self, sink: UpstreamSink) -> None:
        status = 200
        for name, value in self.headers:
            if name == "x-echo-status" and value.strip().isdigit():
                status = int(value.strip())
        payload = echo_payload(self.method, self.path, self.headers, b"".join(self.body))
        headers: Headers = [(b":status", STATUS_BYTES.get(status, b"200")),
                            (b"content-type", b"application/json")]
        if status in (204, 304):
            sink.on_upstream_headers(headers, True)
            return
        headers.append((b"content-length", str(len(payload)).encode()))
        if self.method == "HEAD":
            sink.on_upstream_headers(headers, True)
            return
        sink.on_upstream_headers(headers, False)
        sink.on_upstream_data(payload, False)
        sink.on_upstream_data(b"", True)
        sink.on_upstream_flush()


class EchoUpstream:
    """A pool-shaped front for the echo upstream (``acquire`` like UpstreamPool)."""

    name = ECHO_NAME

    def __init__(self, loop: asyncio.AbstractEventLoop, stats: ServerStats) -> None:
        self.loop = loop
        self.stats = stats

    def acquire(self, sink: UpstreamSink) -> EchoRequest:
        self.stats.upstream_rq_total += 1
        return EchoRequest(self.loop, sink)

    def close(self) -> None:
        return None
