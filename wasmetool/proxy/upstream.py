"""Upstream HTTP/1.1 connections with a LIFO keep-alive pool.

One request at a time per connection. The caller (a proxied request or an http_call)
is an :class:`UpstreamSink`; it gets the response as ``headers`` (with ``:status``),
``data`` and ``trailers`` events, or one failure. Events are batched per socket read,
so a small response arrives as headers + one data(end_stream=True).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Protocol

import httptools

from wasmetool.host.plugin_file import HttpTarget
from wasmetool.proxy.http1 import (
    HOP_BY_HOP,
    STATUS_BYTES,
    HeaderInjection,
    _wire,
    chunk,
    trailer_block,
)
from wasmetool.proxy.stats import ServerStats

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]
CONNECT_TIMEOUT_S = 5.0
MAX_IDLE = 128
REPLAY_LIMIT = 64 * 1024
_SKIP_REQUEST_HEADERS = (HOP_BY_HOP - {b"te"}) | {b"host"}   # Envoy forwards te: trailers
# names request_head() handles itself: the pseudo-headers it reads, and what it skips
_REQUEST_SPECIAL = _SKIP_REQUEST_HEADERS | {b":method", b":path", b":authority", b":scheme",
                                            b"content-length"}
_FRAMING_OR_HOP = HOP_BY_HOP | {b"content-length"}


class UpstreamSink(Protocol):
    """Gets one upstream response. ``on_upstream_last_data(data)`` is the body's last data
    and the end of the stream at once (Envoy's codec gives them as two events: data, then
    an empty end-of-stream frame; a sink whose filters see body events splits it so)."""

    def on_upstream_headers(self, headers: Headers, end_stream: bool) -> None: ...
    def on_upstream_data(self, data: bytes, end_stream: bool) -> None: ...
    def on_upstream_last_data(self, data: bytes) -> None: ...
    def on_upstream_trailers(self, trailers: Headers) -> None: ...
    def on_upstream_failure(self, reason: str, response_started: bool) -> None: ...
    def on_upstream_flush(self) -> None: ...
    def internal_error(self) -> None: ...


class UpstreamRequest(Protocol):
    """What a sink holds while its request is in flight (socket or in-process echo)."""

    def send_headers(self, headers: Headers, end_stream: bool) -> None: ...
    def send_data(self, data: bytes, end_stream: bool) -> None: ...
    def send_trailers(self, trailers: Headers) -> None: ...
    def abandon(self, sink: UpstreamSink) -> None: ...


def request_head(headers: Headers, end_stream: bool, prefix: bytes) -> tuple[bytes, bool, bool]:
    """Serialise request headers → (head bytes, chunked body?, HEAD request?)."""
    if _wire is not None:
        head = _wire.request_head(headers, end_stream, prefix, _SKIP_REQUEST_HEADERS)
        if head is None:
            raise HeaderInjection("CR or LF inside a request header")
        if head is not NotImplemented:
            return head  # type: ignore[no-any-return]
    return request_head_py(headers, end_stream, prefix)


def request_head_py(headers: Headers, end_stream: bool,
                    prefix: bytes) -> tuple[bytes, bool, bool]:
    """:func:`request_head` in Python: the reference, and the fallback."""
    method = b"GET"
    path = b"/"
    authority = b""
    lines: list[bytes] = []
    append = lines.append
    has_length = False
    special = _REQUEST_SPECIAL
    for name, value in headers:
        if name in special:
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            elif name == b"content-length":
                has_length = True
                append(name + b": " + value)
            continue                    # :scheme, hop-by-hop and host are not sent
        if name[:1] != b":":            # other pseudo-headers are not sent either
            append(name + b": " + value)
    chunked = not end_stream and not has_length
    if chunked:
        append(b"transfer-encoding: chunked")
    count = len(lines)
    append(b"\r\n")
    data = b"%s %s%s HTTP/1.1\r\nhost: %s\r\n" % (method, prefix, path, authority) + \
        b"\r\n".join(lines)
    if data.count(b"\n") != count + 3:
        raise HeaderInjection("CR or LF inside a request header")
    return data, chunked, method == b"HEAD"


def response_head(raw: Headers, status: bytes) -> tuple[Headers, bool]:
    """A response head as httptools gave it → ([(:status, status), lower-cased headers
    without hop-by-hop ones (content-length kept)], framed: content-length or
    transfer-encoding was there)."""
    if _wire is not None:
        head = _wire.response_head(raw, status, HOP_BY_HOP)
        if head is not NotImplemented:
            return head  # type: ignore[no-any-return]
    return response_head_py(raw, status)


def response_head_py(raw: Headers, status: bytes) -> tuple[Headers, bool]:
    """:func:`response_head` in Python: the reference, and the fallback."""
    headers = [(b":status", status)]
    framed = False
    for name, value in raw:
        name = name.lower()
        if name in _FRAMING_OR_HOP:
            if name == b"content-length":
                framed = True
            elif name == b"transfer-encoding":
                framed = True
                continue
            else:
                continue              # hop-by-hop
        headers.append((name, value))
    return headers, framed


class UpstreamConnection(asyncio.Protocol):
    """One pooled connection to an upstream; serves one sink at a time."""

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.sink: UpstreamSink | None = None
        self.closed = False
        self.reused = False
        self.pending: list[bytes] = []      # written before the socket connected
        self.replay: list[bytes] | None = []  # what was sent, for one retry on a stale socket
        self.replay_size = 0
        self.chunked = False
        self.head_request = False
        self.request_done = False
        self.response_started = False
        self.delivered_headers = False
        self.keep_alive = True
        self.connect_timer: asyncio.TimerHandle | None = None
        self.peer: tuple[str, int] | None = None
        self.read_paused = False
        self.local: tuple[str, int] | None = None
        # per-read event batch
        self._headers: Headers | None = None
        self._status = 0
        self._body: list[bytes] = []
        self._trailers: Headers | None = None
        self._complete = False
        self._interim = False
        self._pending_headers: Headers = []
        self._in_head = False         # between message begin and headers complete
        self._framed = False
        self._eof_body = False       # body delimited by the connection closing

    # ---------------------------------------------------------------- request side
    def attach(self, sink: UpstreamSink) -> None:
        self.sink = sink
        self.request_done = False
        self.response_started = False
        self.delivered_headers = False
        self.replay = [] if self.reused else None
        self.replay_size = 0

    def _write(self, data: bytes) -> None:
        if self.replay is not None:
            self.replay_size += len(data)
            if self.replay_size > REPLAY_LIMIT:
                self.replay = None
            else:
                self.replay.append(data)
        transport = self.transport
        if transport is not None:
            transport.write(data)
        else:
            self.pending.append(data)

    def send_headers(self, headers: Headers, end_stream: bool) -> None:
        head, self.chunked, self.head_request = request_head(headers, end_stream,
                                                             self.pool.prefix)
        self._write(head)
        if end_stream:
            self.request_done = True

    def send_data(self, data: bytes, end_stream: bool) -> None:
        if self.chunked:
            if data:
                self._write(chunk(data))
            if end_stream:
                self._write(b"0\r\n\r\n")
        elif data:
            self._write(data)
        if end_stream:
            self.request_done = True

    def send_trailers(self, trailers: Headers) -> None:
        if self.chunked:
            self._write(trailer_block(trailers))
        self.request_done = True

    def abandon(self, sink: UpstreamSink) -> None:
        """The sink no longer wants this response: the connection cannot be reused."""
        if self.sink is sink:
            self.sink = None
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    # ---------------------------------------------------------------- asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.peer = (peer[0], peer[1]) if peer else None
        self.local = (local[0], local[1]) if local else None
        if self.connect_timer is not None:
            self.connect_timer.cancel()
            self.connect_timer = None
        if self.closed:
            transport.close()
            return
        if self.pending:
            transport.write(b"".join(self.pending))
            self.pending = []

    def set_reading(self, reading: bool) -> None:
        """Backpressure from the client side: pause or resume reading this upstream."""
        transport = self.transport
        if transport is None or transport.is_closing() or self.read_paused != reading:
            return
        self.read_paused = not reading
        if reading:
            transport.resume_reading()
        else:
            transport.pause_reading()

    def pause_writing(self) -> None:
        writable = getattr(self.sink, "upstream_writable", None)
        if writable is not None:
            writable(False)

    def resume_writing(self) -> None:
        writable = getattr(self.sink, "upstream_writable", None)
        if writable is not None:
            writable(True)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        self.pool.forget(self)
        sink = self.sink
        if sink is None:
            return
        self.sink = None
        if self._complete and self.delivered_headers:
            return
        if self.delivered_headers and self._eof_body:
            sink.on_upstream_data(b"", True)  # the close ended a length-less body
            return
        if (self.reused and not self.response_started and self.request_done
                and self.replay is not None):
            self.pool.stats.upstream_rq_retry += 1
            self.pool.replay(self.replay, sink, self.head_request)
            return
        self.pool.stats.upstream_rq_reset += 1
        sink.on_upstream_failure("connection termination", self.response_started)

    def connect_failed(self, reason: str) -> None:
        self.closed = True
        self.pool.stats.upstream_cx_connect_fail += 1
        sink = self.sink
        self.sink = None
        if sink is not None:
            sink.on_upstream_failure(reason, False)

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is None:  # bytes while idle: the upstream is confused, drop it
            self.close()
            return
        self.response_started = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.keep_alive = False
            self.sink = None
            self.close()
            self.pool.stats.upstream_rq_reset += 1
            log.debug("bad response from %s: %s", self.pool.target.address, exc)
            sink.on_upstream_failure("protocol error", self.delivered_headers)
            return
        try:
            self._flush(sink)
            sink.on_upstream_flush()
        except Exception:
            log.exception("internal error while delivering an upstream response")
            self.sink = None
            self.close()
            sink.internal_error()

    def _flush(self, sink: UpstreamSink) -> None:
        complete = self._complete
        headers = self._headers
        body = self._body
        trailers = self._trailers
        if complete:
            self.sink = None
            if self.read_paused:
                self.set_reading(True)
            if self.keep_alive and self.request_done and not self.head_request and not self.closed:
                self.pool.release(self)
            else:
                self.close()
        if headers is not None:
            self._headers = None
            self.delivered_headers = True
            if complete and not body and trailers is None:
                sink.on_upstream_headers(headers, True)
                return
            sink.on_upstream_headers(headers, False)
        if body:
            self._body = []
            data = body[0] if len(body) == 1 else b"".join(body)
            if complete and trailers is None:
                sink.on_upstream_last_data(data)    # the sink splits it when a filter sees it
                return
            # As Envoy's HTTP/1 codec: body data, then end of stream as its own empty frame.
            sink.on_upstream_data(data, False)
        if complete:
            if trailers is not None:
                self._trailers = None
                sink.on_upstream_trailers(trailers)
            else:
                sink.on_upstream_data(b"", True)

    # ---------------------------------------------------------------- httptools
    def on_message_begin(self) -> None:
        self._complete = False
        self._interim = False
        self._headers = None
        self._trailers = None
        self._framed = False
        self._in_head = True
        self._pending_headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_head:           # the head as sent; sorted out once it is complete
            self._pending_headers.append((name, value))
        else:
            if self._trailers is None:
                self._trailers = []
            self._trailers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self._interim = True
            return
        headers, self._framed = response_head(
            self._pending_headers, STATUS_BYTES.get(status) or str(status).encode())
        self._headers = headers
        self._eof_body = not self._framed and status not in (204, 304)
        self.keep_alive = self.parser.should_keep_alive()
        if self.head_request:
            self._complete = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self._complete = True


class UpstreamPool:
    """Connections to one upstream address, idle ones reused last-in first-out."""

    def __init__(self, loop: asyncio.AbstractEventLoop, target: HttpTarget, stats: ServerStats,
                 name: str = "upstream", ssl_context: ssl.SSLContext | None = None) -> None:
        self.loop = loop
        self.target = target
        # https upstreams: verified against the system CAs (or SSL_CERT_FILE / SSL_CERT_DIR)
        self.ssl_context = ssl_context if ssl_context is not None or not target.tls else \
            ssl.create_default_context()
        self.name = name
        self.prefix = target.path_prefix.encode()
        self.stats = stats
        self.idle: list[UpstreamConnection] = []
        self.all: set[UpstreamConnection] = set()

    def acquire(self, sink: UpstreamSink) -> UpstreamConnection:
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.reused = True
                conn.attach(sink)
                self.stats.upstream_rq_total += 1
                return conn
        conn = self._new()
        conn.attach(sink)
        self.stats.upstream_rq_total += 1
        return conn

    def _new(self) -> UpstreamConnection:
        conn = UpstreamConnection(self)
        self.all.add(conn)
        self.stats.upstream_cx_total += 1
        target = self.target
        if target.tls:
            connecting = self.loop.create_connection(lambda: conn, target.host, target.port,
                                                     ssl=self.ssl_context,
                                                     server_hostname=target.host)
        else:
            connecting = self.loop.create_connection(lambda: conn, target.host, target.port)
        future = asyncio.ensure_future(connecting, loop=self.loop)
        conn.connect_timer = self.loop.call_later(CONNECT_TIMEOUT_S, future.cancel)

        def done(fut: asyncio.Future[object]) -> None:
            if conn.connect_timer is not None:
                conn.connect_timer.cancel()
                conn.connect_timer = None
            if fut.cancelled():
                self.all.discard(conn)
                conn.connect_failed("connection timeout")
            elif fut.exception() is not None:
                self.all.discard(conn)
                exc = fut.exception()
                if isinstance(exc, ssl.SSLError):
                    log.warning("TLS to %s failed: %s", self.target.address, exc)
                else:
                    log.debug("connecting to %s failed: %s", self.target.address, exc)
                conn.connect_failed("remote connection failure")   # Envoy's reset reason

        future.add_done_callback(done)
        return conn

    def replay(self, pieces: list[bytes], sink: UpstreamSink, head_request: bool) -> None:
        """Resend a request whose reused connection died before any response byte."""
        conn = self._new()
        conn.attach(sink)
        conn.replay = None
        conn.head_request = head_request
        conn.request_done = True
        conn.pending = list(pieces)
        # The sink keeps talking to the old connection object only to abandon it; point it here.
        rebind = getattr(sink, "rebind_upstream", None)
        if rebind is not None:
            rebind(conn)

    def release(self, conn: UpstreamConnection) -> None:
        if len(self.idle) < MAX_IDLE:
            self.idle.append(conn)
        else:
            conn.close()

    def forget(self, conn: UpstreamConnection) -> None:
        self.all.discard(conn)
        try:
            self.idle.remove(conn)
        except ValueError:
            pass

    def close(self) -> None:
        for conn in list(self.all):
            conn.close()
        self.idle.clear()
