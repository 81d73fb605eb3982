"""The HTTP/1.1 reverse proxy of `wasmetool run`: listener → filter chain → upstream → back.

Raw asyncio Protocols and httptools, no framework and no coroutine per request. Each
downstream connection parses requests as they arrive (pipelined ones queue up and are
served in order, one at a time); each request becomes an :class:`Exchange`, which is at
once the filter chain's HttpStreamCallbacks and the upstream's sink.

Framing: a message keeps its content-length when it has one; otherwise a body is sent
chunked, except that a response whose whole body is known when its headers go out gets a
content-length (one write). Hop-by-hop headers never cross the proxy.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import httptools

from wasmetool.host.stream_info import StreamInfo
from wasmetool.proxy.date_header import date_line
from wasmetool.proxy.http1 import (
    HOP_BY_HOP,
    NO_BODY_STATUSES,
    HeaderInjection,
    RequestIds,
    chunk,
    head_bytes,
    status_line,
    trailer_block,
)
from wasmetool.proxy.stats import ServerStats
from wasmetool.proxy.upstream import Headers, UpstreamRequest, UpstreamSink

log = logging.getLogger(__name__)

MAX_PIPELINED = 64
MAX_REQUEST_HEAD = 60 * 1024
LINGER_S = 1.0             # Envoy's delayed_close_timeout
ROUTE_TIMEOUT_S = 15.0     # Envoy's default route timeout: a complete upstream response in time
SWEEP_INTERVAL_S = 0.5
CONTINUE_100 = b"HTTP/1.1 100 Continue\r\n\r\n"
FORWARDED_PROTO = (b"x-forwarded-proto", b"http")
# Request headers the proxy consumes or rewrites instead of passing them on as they are.
SPECIAL_REQUEST_HEADERS = HOP_BY_HOP | {b"host", b"expect", b"x-forwarded-proto"}
_connection_ids = itertools.count(1)


class HttpStreamLike(Protocol):
    def decode_headers(self, headers: Headers, end_stream: bool) -> None: ...
    def decode_data(self, data: bytes, end_stream: bool) -> None: ...
    def decode_trailers(self, trailers: Headers) -> None: ...
    def encode_headers(self, headers: Headers, end_stream: bool) -> None: ...
    def encode_data(self, data: bytes, end_stream: bool) -> None: ...
    def encode_last_data(self, data: bytes) -> None: ...
    def encode_trailers(self, trailers: Headers) -> None: ...
    def complete(self) -> None: ...
    def reset(self) -> None: ...


StreamFactory = Callable[[StreamInfo, Any], HttpStreamLike]


class UpstreamPoolLike(Protocol):
    name: str

    def acquire(self, sink: UpstreamSink) -> UpstreamRequest: ...


class PassthroughStream:
    """The stream when no HTTP filter is configured: straight through."""

    __slots__ = ("cb",)

    def __init__(self, info: StreamInfo, callbacks: Any) -> None:
        self.cb = callbacks

    def decode_headers(self, headers: Headers, end_stream: bool) -> None:
        self.cb.forward_request_headers(headers, end_stream)

    def decode_data(self, data: bytes, end_stream: bool) -> None:
        self.cb.forward_request_data(data, end_stream)

    def decode_trailers(self, trailers: Headers) -> None:
        self.cb.forward_request_trailers(trailers)

    def encode_headers(self, headers: Headers, end_stream: bool) -> None:
        self.cb.send_response_headers(headers, end_stream)

    def encode_data(self, data: bytes, end_stream: bool) -> None:
        self.cb.send_response_data(data, end_stream)

    def encode_last_data(self, data: bytes) -> None:
        self.cb.send_response_data(data, True)

    def encode_trailers(self, trailers: Headers) -> None:
        self.cb.send_response_trailers(trailers)

    def complete(self) -> None:
        return None

    def reset(self) -> None:
        return None


_EXCHANGE_START = (b"", b"GET", True, False, False, None, False, False, None, None, None, False,
                   None, False, False, False, False, 0, False, False, False, False, False, b"",
                   None, 0.0)


class Exchange:
    """One request/response through the proxy (HttpStreamCallbacks + UpstreamSink)."""

    __slots__ = (
        "conn", "url", "raw_headers", "method", "keep_alive", "http10", "expect_continue",
        "body", "trailers", "request_complete", "started", "stream", "info", "upstream",
        "request_forwarded_end", "head_pending", "response_started", "response_chunked",
        "response_close", "done", "status", "upstream_headers_seen", "flush_scheduled",
        "headers_done", "end_delivered", "in_delivery", "authority", "dropped", "deadline",
    )

    url: bytes
    method: bytes
    keep_alive: bool
    http10: bool
    expect_continue: bool
    trailers: Headers | None
    request_complete: bool
    started: bool
    stream: HttpStreamLike | None
    info: StreamInfo | None
    upstream: UpstreamRequest | None
    request_forwarded_end: bool
    head_pending: tuple[int, Headers] | None
    response_started: bool
    response_chunked: bool
    response_close: bool
    done: bool
    status: int
    upstream_headers_seen: bool
    flush_scheduled: bool
    headers_done: bool
    end_delivered: bool
    in_delivery: bool
    authority: bytes
    dropped: set[bytes] | None
    deadline: float

    def __init__(self, conn: HttpServerConnection) -> None:
        self.conn = conn
        self.raw_headers: Headers = []
        self.body: list[bytes] = []
        # one unpack instead of a constant load per field (one Exchange per request)
        (self.url, self.method, self.keep_alive, self.http10, self.expect_continue,
         self.trailers, self.request_complete, self.started, self.stream, self.info,
         self.upstream, self.request_forwarded_end, self.head_pending, self.response_started,
         self.response_chunked, self.response_close, self.done, self.status,
         self.upstream_headers_seen, self.flush_scheduled, self.headers_done,
         self.end_delivered, self.in_delivery, self.authority, self.dropped,
         self.deadline) = _EXCHANGE_START

    # ----------------------------------------------------------- request (client → us)
    def special_header(self, name: bytes, value: bytes) -> None:
        """A request header the proxy consumes or rewrites (host, hop-by-hop, expect...)."""
        if name == b"host":
            self.authority = value
        elif name == b"expect":
            if value.lower() == b"100-continue":
                self.expect_continue = True
            else:
                self.raw_headers.append((name, value))
        elif name == b"connection":
            tokens = value.lower()
            if tokens == b"close":           # the common cases name no other header
                self.keep_alive = False
            elif tokens != b"keep-alive":
                if b"close" in tokens:
                    self.keep_alive = False
                self.dropped = _connection_named(tokens)
        elif name == b"te":
            # Envoy 1.40 keeps TE only as "te: trailers" (when trailers is one of its values)
            if b"trailers" in (t.strip() for t in value.lower().split(b",")):
                self.raw_headers.append((b"te", b"trailers"))
        # other hop-by-hop headers and x-forwarded-proto (set below) are dropped

    def start(self) -> None:
        """Headers are in: build the filter chain's view and start decoding."""
        self.started = True
        conn = self.conn
        server = conn.server
        url = self.url
        if url[:1] != b"/" and url != b"*" and b"://" in url:  # absolute-form
            rest = url.split(b"://", 1)[1]
            slash = rest.find(b"/")
            url = rest[slash:] if slash >= 0 else b"/"
        headers: Headers = [(b":authority", self.authority or conn.local_authority),
                            (b":path", url), (b":method", self.method), (b":scheme", b"http"),
                            *self.raw_headers, FORWARDED_PROTO]
        dropped = self.dropped
        if dropped:
            headers = [h for h in headers if h[0] not in dropped]
        if conn.server.generate_request_id:
            # Envoy's connection manager (generate_request_id, on by default): a request
            # without x-request-id gets a UUID4 one, after the headers it came with
            for k, _v in headers:
                if k == b"x-request-id":
                    break
            else:
                headers.append((b"x-request-id", server.request_ids.next()))
        self.raw_headers = []
        info = StreamInfo(conn.peer, conn.local, conn.connection_id,
                          "HTTP/1.0" if self.http10 else "HTTP/1.1")
        self.info = info
        stats = server.stats
        stats.downstream_rq_total += 1
        stats.downstream_rq_active += 1
        self.stream = stream = server.stream_factory(info, self)
        if self.expect_continue and not self.request_complete:
            conn.write(CONTINUE_100)
        body = self.body
        if self.request_complete and not body and self.trailers is None:
            self.end_delivered = True
            stream.decode_headers(headers, True)
            return
        stream.decode_headers(headers, False)
        self.pump_body()

    def pump_body(self) -> None:
        """Hand the request body read so far to the filter chain."""
        stream = self.stream
        if stream is None or self.done or self.end_delivered:
            return
        body = self.body
        complete = self.request_complete
        if complete:
            self.end_delivered = True
        if body:
            self.body = []
            data = body[0] if len(body) == 1 else b"".join(body)
            if self.info is not None:
                self.info.bytes_received += len(data)
            # As Envoy's HTTP/1 codec: body data, then end of stream as its own empty frame.
            stream.decode_data(data, False)
            if self.done:
                return
        if complete and self.trailers is None:
            stream.decode_data(b"", True)
            return
        if complete and self.trailers is not None:
            stream.decode_trailers(self.trailers)

    # ----------------------------------------------------------- HttpStreamCallbacks
    def forward_request_headers(self, headers: Headers, end_stream: bool) -> None:
        if self.done:
            return
        server = self.conn.server
        upstream = server.upstream.acquire(self)
        self.upstream = upstream
        self.deadline = server.loop.time() + ROUTE_TIMEOUT_S
        server.inflight.add(self)
        info = self.info
        if info is not None and not info.cluster_name:
            info.cluster_name = server.upstream.name
        try:
            upstream.send_headers(headers, end_stream)
        except HeaderInjection:
            upstream.abandon(self)
            self.upstream = None
            self.fail_locally(500, b"invalid request header set by a filter")
            return
        if end_stream:
            self.request_forwarded_end = True

    def forward_request_data(self, data: bytes, end_stream: bool) -> None:
        upstream = self.upstream
        if upstream is None or self.done:
            return
        upstream.send_data(data, end_stream)
        if end_stream:
            self.request_forwarded_end = True

    def forward_request_trailers(self, trailers: Headers) -> None:
        upstream = self.upstream
        if upstream is None or self.done:
            return
        upstream.send_trailers(trailers)
        self.request_forwarded_end = True

    def send_response_headers(self, headers: Headers, end_stream: bool) -> None:
        if self.done or self.response_started:
            return
        status = 200
        for name, value in headers:
            if name == b":status":
                try:
                    status = int(value)
                except ValueError:
                    status = 502
                break
        self.status = status
        if end_stream:
            extra = b""
            if (status not in NO_BODY_STATUSES and status >= 200
                    and not _has(headers, b"content-length")):
                extra = b"content-length: 0\r\n"
            self._write_head(status, headers, extra)
            self._finish()
            return
        self.head_pending = (status, headers)
        # Inside an upstream delivery the body usually follows at once (one write for both);
        # else flush on the next loop turn so a slow body does not hold the headers back.
        if not self.flush_scheduled and not self.in_delivery:
            self.flush_scheduled = True
            self.conn.loop.call_soon(self._flush_head)

    def _flush_head(self) -> None:
        self.flush_scheduled = False
        if self.head_pending is not None and not self.done:
            status, headers = self.head_pending
            self.head_pending = None
            self._write_head(status, headers, self._framing(headers))

    def _framing(self, headers: Headers) -> bytes:
        if _has(headers, b"content-length") or self.method == b"HEAD":
            return b""
        if self.status in NO_BODY_STATUSES or self.status < 200:
            return b""
        if self.http10:
            self.response_close = True
            return b""
        self.response_chunked = True
        return b"transfer-encoding: chunked\r\n"

    def _write_head(self, status: int, headers: Headers, extra: bytes, body: bytes = b"") -> None:
        self.response_started = True
        conn = self.conn
        extra += date_line(headers, self.stream)      # Envoy's `date`, when there is none
        # As Envoy: a response sent before the request was fully read closes the connection.
        if not self.keep_alive or self.response_close or conn.closing or not self.end_delivered:
            extra += b"connection: close\r\n"
            self.keep_alive = False
        try:
            head = head_bytes(status_line(status), headers, extra)
        except HeaderInjection:
            head = head_bytes(status_line(502), [], b"content-length: 0\r\nconnection: close\r\n")
            self.keep_alive = False
            body = b""
        if self.info is not None:
            self.info.response_code = status
            self.info.bytes_sent += len(body)
        conn.write(head + body if body else head)

    def send_response_data(self, data: bytes, end_stream: bool) -> None:
        if self.done:
            return
        pending = self.head_pending
        if pending is not None:
            self.head_pending = None
            status, headers = pending
            if self.method == b"HEAD" or status in NO_BODY_STATUSES:
                self._write_head(status, headers, b"")
            elif not _has(headers, b"content-length"):
                if end_stream:
                    self._write_head(status, headers, b"content-length: %d\r\n" % len(data),
                                     data)
                    self._finish()
                    return
                extra = self._framing(headers)
                self._write_head(status, headers, extra, chunk(data) if self.response_chunked
                                 and data else data)
                data = b""
            else:
                self._write_head(status, headers, b"", data)
                data = b""
        elif not self.response_started:
            return
        if data and self.method != b"HEAD" and self.status not in NO_BODY_STATUSES:
            if self.info is not None:
                self.info.bytes_sent += len(data)
            self.conn.write(chunk(data) if self.response_chunked else data)
        if end_stream:
            if self.response_chunked:
                self.conn.write(b"0\r\n\r\n")
            self._finish()

    def send_response_trailers(self, trailers: Headers) -> None:
        if self.done:
            return
        if self.head_pending is not None:
            self._flush_head()
        if self.response_chunked:
            self.conn.write(trailer_block(trailers))
        self._finish()

    def send_local_reply(self, status: int, headers: Headers, body: bytes) -> None:
        if self.done:
            return
        self._drop_upstream()
        if self.response_started:  # too late for a new response: reset
            self.reset_stream()
            return
        self.head_pending = None
        self.status = status
        extra = b""
        if not _has(headers, b"content-length") and status not in NO_BODY_STATUSES:
            extra = b"content-length: %d\r\n" % len(body)
        if self.method == b"HEAD" or status in NO_BODY_STATUSES:
            body = b""
        self._write_head(status, [h for h in headers if h[0] != b":status"], extra, body)
        self._finish()

    def reset_stream(self) -> None:
        if self.done:
            return
        self._drop_upstream()
        self.done = True
        self._account()
        self.conn.server.stats.downstream_rq_reset += 1
        stream = self.stream
        if stream is not None:
            self.stream = None    # no reference cycle with the filter chain's callbacks
            stream.reset()
        self.conn.abort()

    # ----------------------------------------------------------- UpstreamSink
    def rebind_upstream(self, upstream: UpstreamRequest) -> None:
        self.upstream = upstream

    def on_upstream_headers(self, headers: Headers, end_stream: bool) -> None:
        upstream = self.upstream
        info = self.info
        if info is not None:
            info.response_code_details = "via_upstream"
            peer = getattr(upstream, "peer", None)
            if peer is not None:
                info.upstream_address = peer
                info.upstream_local_address = upstream.local  # type: ignore[union-attr]
        if end_stream:
            self.upstream = None
            self.conn.server.inflight.discard(self)
        stream = self.stream
        if stream is None or self.done:
            return
        self.upstream_headers_seen = True
        if end_stream:
            stream.encode_headers(headers, True)
            return
        self.in_delivery = True
        stream.encode_headers(headers, False)

    def internal_error(self) -> None:
        """A bug while handling the upstream's answer: give up this connection only."""
        self.conn.abort()

    def upstream_writable(self, writable: bool) -> None:
        """The upstream reads slower than the client sends: stop reading the client."""
        conn = self.conn
        conn.backpressure = not writable
        _set_reading(conn.transport, writable)

    def on_upstream_flush(self) -> None:
        """The upstream delivered everything it read: send a head still waiting for a body."""
        self.in_delivery = False
        if self.head_pending is not None and not self.flush_scheduled:
            self._flush_head()

    def on_upstream_data(self, data: bytes, end_stream: bool) -> None:
        if end_stream:
            self.upstream = None
            self.conn.server.inflight.discard(self)
        stream = self.stream
        if stream is None or self.done:
            return
        stream.encode_data(data, end_stream)

    def on_upstream_last_data(self, data: bytes) -> None:
        self.upstream = None
        self.conn.server.inflight.discard(self)
        stream = self.stream
        if stream is None or self.done:
            return
        stream.encode_last_data(data)

    def on_upstream_trailers(self, trailers: Headers) -> None:
        self.upstream = None
        self.conn.server.inflight.discard(self)
        stream = self.stream
        if stream is None or self.done:
            return
        stream.encode_trailers(trailers)

    def on_upstream_failure(self, reason: str, response_started: bool) -> None:
        self.upstream = None
        self.conn.server.inflight.discard(self)
        if self.done:
            return
        if response_started or self.upstream_headers_seen:
            self.reset_stream()
            return
        text = b"upstream connect error or disconnect/reset before headers. reset reason: "
        self.fail_locally(503, text + reason.encode())

    # ----------------------------------------------------------- helpers
    def fail_locally(self, status: int, body: bytes) -> None:
        """An error of the proxy itself: it goes through the encode path, like Envoy's router."""
        stream = self.stream
        if stream is None or self.response_started or self.head_pending is not None:
            self.reset_stream()
            return
        headers = [(b":status", str(status).encode()),
                   (b"content-length", str(len(body)).encode()),
                   (b"content-type", b"text/plain")]
        stream.encode_headers(headers, False)
        if not self.done:
            stream.encode_data(body, True)

    def _drop_upstream(self) -> None:
        upstream = self.upstream
        if upstream is not None:
            self.upstream = None
            upstream.abandon(self)

    def _account(self) -> None:
        server = self.conn.server
        server.stats.downstream_rq_active -= 1
        server.inflight.discard(self)

    def route_timeout(self) -> None:
        """No complete upstream response within the route timeout: Envoy's 504 (or a reset)."""
        self.conn.server.inflight.discard(self)
        if self.done:
            return
        self.conn.server.stats.upstream_rq_timeout += 1
        self._drop_upstream()
        if self.upstream_headers_seen:
            self.reset_stream()
        else:
            self.fail_locally(504, b"upstream request timeout")

    def _finish(self) -> None:
        """The response is fully written."""
        if self.done:
            return
        self.done = True
        conn = self.conn
        server = conn.server
        stats = server.stats
        stats.downstream_rq_active -= 1          # _account(), inlined
        server.inflight.discard(self)
        status = self.status
        if 200 <= status < 300:                  # the common case of count_response()
            stats.downstream_rq_2xx += 1
        else:
            stats.count_response(status)
        if self.upstream is not None and not self.request_forwarded_end:
            self._drop_upstream()
        stream = self.stream
        if stream is not None:
            self.stream = None    # no reference cycle with the filter chain's callbacks
            stream.complete()
        conn.exchange_done(self)

    def client_gone(self) -> None:
        if self.done:
            return
        self.done = True
        self._drop_upstream()
        if self.started:
            self._account()
            self.conn.server.stats.downstream_rq_reset += 1
        stream = self.stream
        if stream is not None:
            self.stream = None    # no reference cycle with the filter chain's callbacks
            stream.reset()


def _set_reading(transport: Any, reading: bool) -> None:
    """Pause or resume reading a transport (backpressure); a closing one is left alone."""
    if transport is None or transport.is_closing():
        return
    if reading:
        transport.resume_reading()
    else:
        transport.pause_reading()


def _connection_named(tokens: bytes) -> set[bytes]:
    """Headers a Connection header names (besides close/keep-alive): hop-by-hop too."""
    names = {t.strip() for t in tokens.split(b",")}
    names -= {b"close", b"keep-alive", b"upgrade", b""}
    return names


def _has(headers: Headers, name: bytes) -> bool:
    for item in headers:
        if item[0] == name:
            return True
    return False


class HttpServerConnection(asyncio.Protocol):
    """One client connection: parse, queue, serve requests in order."""

    # one object per connection: no instance dict to make, fill and have the GC visit
    __slots__ = ("server", "loop", "transport", "parser", "queue", "parsing", "closing",
                 "paused", "peer", "local", "local_authority", "connection_id", "net",
                 "backpressure", "partial_head", "lingering")

    def __init__(self, server: HttpProxyServer) -> None:
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self.queue: deque[Exchange] = deque()
        self.parsing: Exchange | None = None
        self.closing = False
        self.paused = False
        self.peer: tuple[str, int] = ("", 0)
        self.local: tuple[str, int] = ("", 0)
        self.local_authority = b""
        self.connection_id = next(_connection_ids)
        self.net: Any = None          # the network filter chain, when there is one
        self.backpressure = False     # reading paused until the upstream drains
        self.partial_head = 0         # bytes read while a request head is incomplete
        self.lingering = False        # answered early; discarding input until the close

    # ----------------------------------------------------------- asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = (peer[0], peer[1])
        fixed = self.server.fixed_local
        if fixed is not None:   # the listener's own address, formatted once
            self.local, self.local_authority = fixed
        else:
            local = transport.get_extra_info("sockname")
            if local:
                self.local = (local[0], local[1])
                self.local_authority = f"{local[0]}:{local[1]}".encode()
        stats = self.server.stats
        stats.downstream_cx_total += 1
        stats.downstream_cx_active += 1
        self.server.connections.add(self)
        factory = self.server.connection_factory
        if factory is not None:  # network filters run on the raw bytes, before HTTP
            info = StreamInfo(self.peer, self.local, self.connection_id, "HTTP/1.1")
            self.net = factory(info, NetworkBridge(self))
            self._guard(self.net.on_new_connection)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.closing = True
        self.server.stats.downstream_cx_active -= 1
        self.server.connections.discard(self)
        queue = self.queue
        self.queue = deque()
        for exchange in queue:
            self._guard(exchange.client_gone)
        net = self.net
        if net is not None:
            self.net = None
            self._guard(net.downstream_closed)
        # The parser holds this protocol's bound callbacks: drop it, so the connection is
        # freed by its reference count now rather than by a cyclic GC pass later.
        self.parser = None
        self.parsing = None

    def eof_received(self) -> bool | None:
        """The client half-closed: answer what it sent, then close."""
        net = self.net
        if net is not None:
            self._guard(lambda: net.downstream_data(b"", True))
            return True
        return self.client_finished()

    def client_finished(self) -> bool | None:
        self.closing = True
        if self.queue:
            return True          # keep writing; exchange_done closes after the last answer
        return None

    def data_received(self, data: bytes) -> None:
        net = self.net
        if net is not None:
            self._guard(lambda: net.downstream_data(data, False))
            return
        self.http_received(data)

    def http_received(self, data: bytes) -> None:
        parser = self.parser
        if self.lingering or parser is None:  # answered already, or the connection is gone
            return
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(b"HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\n"
                         b"connection: close\r\n\r\n")
            return
        except httptools.HttpParserError:
            self.server.stats.downstream_cx_protocol_error += 1
            self._reject(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\n"
                         b"connection: close\r\n\r\nBad Request")
            return
        parsing = self.parsing
        if parsing is not None and not parsing.headers_done:
            self.partial_head += len(data)
            if self.partial_head > MAX_REQUEST_HEAD:   # Envoy's default limit is 60 KiB
                self.server.stats.downstream_cx_protocol_error += 1
                self._reject(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                             b"content-length: 31\r\nconnection: close\r\n\r\n"
                             b"Request Header Fields Too Large")
                return
        elif self.partial_head:
            self.partial_head = 0
        queue = self.queue
        if queue:
            exchange = queue[0]
            try:
                if exchange.started:
                    exchange.pump_body()
                else:
                    exchange.start()
            except Exception:
                log.exception("internal error while serving a request; closing the connection")
                self.abort()
            if len(queue) > MAX_PIPELINED and not self.paused and self.transport is not None:
                self.paused = True
                self.transport.pause_reading()

    def _reject(self, response: bytes) -> None:
        if self.queue and self.queue[0].response_started:
            self.abort()
            return
        self.closing = True
        self.write(response)
        if self.transport is not None:
            self.transport.close()

    def _guard(self, fn: Callable[[], None]) -> None:
        """Run filter-chain work; a bug there costs this connection, never the server."""
        try:
            fn()
        except Exception:
            log.exception("internal error while serving a request; closing the connection")
            self.abort()

    def pause_writing(self) -> None:
        """The client reads slower than the upstream sends: stop reading the upstream."""
        set_reading = getattr(self.queue[0].upstream, "set_reading", None) if self.queue else None
        if set_reading is not None:
            set_reading(False)

    def resume_writing(self) -> None:
        set_reading = getattr(self.queue[0].upstream, "set_reading", None) if self.queue else None
        if set_reading is not None:
            set_reading(True)

    # ----------------------------------------------------------- httptools
    def on_message_begin(self) -> None:
        self.parsing = Exchange(self)

    def on_url(self, url: bytes) -> None:
        exchange = self.parsing
        if exchange is not None:
            exchange.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        exchange = self.parsing
        if exchange is None:
            return
        name = name.lower()
        if exchange.headers_done:
            if exchange.trailers is None:
                exchange.trailers = []
            exchange.trailers.append((name, value))
        elif name in SPECIAL_REQUEST_HEADERS:
            exchange.special_header(name, value)
        else:
            exchange.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        exchange = self.parsing
        if exchange is None:
            return
        parser = self.parser
        assert parser is not None       # it is the parser calling
        exchange.method = parser.get_method()
        exchange.keep_alive = parser.should_keep_alive()
        exchange.http10 = parser.get_http_version() == "1.0"
        exchange.headers_done = True
        self.queue.append(exchange)

    def on_body(self, body: bytes) -> None:
        exchange = self.parsing
        if exchange is not None:
            exchange.body.append(body)

    def on_message_complete(self) -> None:
        exchange = self.parsing
        if exchange is not None:
            exchange.request_complete = True
            self.parsing = None

    # ----------------------------------------------------------- helpers
    def write(self, data: bytes) -> None:
        net = self.net
        if net is not None:
            self._guard(lambda: net.upstream_data(data, False))
            return
        transport = self.transport
        if transport is not None:
            transport.write(data)

    def abort(self) -> None:
        transport = self.transport
        self.closing = True
        if transport is not None:
            transport.abort()

    def exchange_done(self, exchange: Exchange) -> None:
        queue = self.queue
        if queue and queue[0] is exchange:
            queue.popleft()
        if not exchange.keep_alive or self.closing:
            self.closing = True
            transport = self.transport
            if transport is None:
                return
            if exchange.end_delivered or not transport.can_write_eof():
                transport.close()
                return
            # The client may still be sending the request: closing now could reset the
            # connection before it reads the answer. Send FIN, drain, close a little later.
            self.lingering = True
            transport.write_eof()
            self.loop.call_later(LINGER_S, transport.close)
            return
        if self.backpressure:
            self.backpressure = False
            if not self.paused:
                _set_reading(self.transport, True)
        if self.paused and len(queue) <= MAX_PIPELINED // 2 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        if queue:
            self.loop.call_soon(self._start_next)

    def _start_next(self) -> None:
        queue = self.queue
        if queue and not queue[0].started:
            self._guard(queue[0].start)


class NetworkBridge:
    """ConnectionCallbacks between the network filters and the HTTP codec of one connection:
    "upstream" of the network filters is the HTTP proxy itself, as Envoy's HCM is."""

    __slots__ = ("conn",)

    def __init__(self, conn: HttpServerConnection) -> None:
        self.conn = conn

    def write_upstream(self, data: bytes, end_stream: bool) -> None:
        conn = self.conn
        if data:
            conn.http_received(data)
        if end_stream and conn.client_finished() is None and conn.transport is not None:
            conn.transport.close()

    def write_downstream(self, data: bytes, end_stream: bool) -> None:
        transport = self.conn.transport
        if transport is None:
            return
        if data:
            transport.write(data)
        if end_stream:
            transport.close()

    def close(self) -> None:
        self.conn.abort()


class HttpProxyServer:
    """The listener: owns the stream factory, the upstream pool and the counters."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stream_factory: StreamFactory,
                 upstream: UpstreamPoolLike, stats: ServerStats) -> None:
        self.loop = loop
        self.stream_factory = stream_factory
        self.upstream = upstream
        self.stats = stats
        self.generate_request_id = True     # x-request-id on requests without one (Envoy)
        self.request_ids = RequestIds()
        self.connection_factory: Callable[[StreamInfo, Any], Any] | None = None
        self.connections: set[HttpServerConnection] = set()
        self.inflight: set[Exchange] = set()      # requests waiting for their upstream
        self.sweeper: asyncio.TimerHandle | None = None
        self.server: asyncio.base_events.Server | None = None
        # (local address, its authority bytes) when every connection has the same one
        self.fixed_local: tuple[tuple[str, int], bytes] | None = None

    def protocol(self) -> HttpServerConnection:
        return HttpServerConnection(self)

    async def listen(self, host: str, port: int, reuse_port: bool = False) -> tuple[str, int]:
        """Listen; with ``reuse_port`` beside the other workers' sockets on the same port."""
        self.server = await self.loop.create_server(self.protocol, host, port, backlog=1024,
                                                    reuse_address=True,
                                                    reuse_port=True if reuse_port else None)
        sockets = self.server.sockets
        sockname = sockets[0].getsockname()
        if len(sockets) == 1 and sockname[0] not in ("0.0.0.0", "::"):
            # one socket on one concrete address: a connection's local address is that
            self.fixed_local = ((sockname[0], sockname[1]),
                                f"{sockname[0]}:{sockname[1]}".encode())
        self.sweeper = self.loop.call_later(SWEEP_INTERVAL_S, self._sweep)
        return sockname[0], sockname[1]

    def _sweep(self) -> None:
        """One timer for all route timeouts (no timer per request on the hot path)."""
        now = self.loop.time()
        for exchange in [e for e in self.inflight if e.deadline <= now]:
            try:
                exchange.route_timeout()
            except Exception:
                log.exception("internal error on a route timeout; closing the connection")
                exchange.conn.abort()
        self.sweeper = self.loop.call_later(SWEEP_INTERVAL_S, self._sweep)

    def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
            self.sweeper = None
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.abort()
