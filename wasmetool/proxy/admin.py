"""The admin endpoint of `wasmetool run`: /stats/prometheus, /stats, /ready (plain HTTP/1.1)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httptools

from wasmetool.proxy.http1 import head_bytes, status_line

PATHS = "/stats/prometheus, /stats, /ready"


class AdminConnection(asyncio.Protocol):
    def __init__(self, server: AdminServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        path = self.url.split(b"?", 1)[0].decode("latin-1")
        status, content_type, body = self.server.answer(path)
        keep_alive = self.parser.should_keep_alive()
        extra = b"content-type: %s\r\ncontent-length: %d\r\n" % (content_type, len(body))
        if not keep_alive:
            extra += b"connection: close\r\n"
        if self.transport is None:
            return
        method = self.parser.get_method()
        self.transport.write(head_bytes(status_line(status), [], extra)
                             + (b"" if method == b"HEAD" else body))
        if not keep_alive:
            self.transport.close()


class AdminServer:
    def __init__(self, loop: asyncio.AbstractEventLoop, prometheus: Callable[[], str],
                 ready: Callable[[], bool]) -> None:
        self.loop = loop
        self.prometheus = prometheus
        self.ready = ready
        self.server: asyncio.base_events.Server | None = None

    def answer(self, path: str) -> tuple[int, bytes, bytes]:
        if path in ("/stats/prometheus", "/stats", "/metrics"):
            return 200, b"text/plain; version=0.0.4", self.prometheus().encode()
        if path == "/ready":
            if self.ready():
                return 200, b"text/plain", b"LIVE\n"
            return 503, b"text/plain", b"PRE_INITIALIZING\n"
        return 404, b"text/plain", f"not found; try {PATHS}\n".encode()

    async def listen(self, host: str, port: int) -> tuple[str, int]:
        self.server = await self.loop.create_server(lambda: AdminConnection(self), host, port,
                                                    reuse_address=True)
        sockname = self.server.sockets[0].getsockname()
        return sockname[0], sockname[1]

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
