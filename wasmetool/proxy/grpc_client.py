"""gRPC over HTTP/2 (h2c, or h2 over TLS for https clusters) for the plugins' gRPC callouts.

One :class:`GrpcClient` per cluster holds one HTTP/2 connection (opened on first use,
reopened after it closes) and multiplexes every call and stream on it.  The HTTP/2
framing, HPACK and flow control are the ``h2`` library's; this module adds the gRPC
layer (length-prefixed messages, ``grpc-status``/``grpc-message`` trailers) and what
Envoy 1.40's async gRPC client does around it, as recorded with real Envoy:

* request headers: ``:authority`` is the cluster name, ``te: trailers``,
  ``content-type: application/grpc``, ``grpc-timeout`` for a call with a timeout (a
  timeout of 0 is sent as a deadline of 0), the plugin's metadata, then
  ``x-envoy-internal: true`` and ``x-envoy-expected-rq-timeout-ms``;
* the initial metadata the plugin sees is the response headers (``:status`` included)
  plus ``x-envoy-upstream-service-time``; a trailers-only answer is empty initial
  metadata, then those headers (with the service time) as trailing metadata;
* the close message is ``<grpc-message>{<details>}``, or just ``<details>`` when the
  peer sent none: ``via_upstream`` for an answer from the peer;
* a call past its timeout closes with 14 ``upstream request timeout{response_timeout}``;
* a peer that cannot be reached answers like Envoy's router: empty initial metadata,
  trailing metadata ``:status, content-type, grpc-status, grpc-message``, then 14 with
  ``upstream connect error or disconnect/reset before headers. reset reason: ...``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import struct
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from wasmetool.host.dispatch import GrpcEvents, GrpcRequest, Headers

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
GRPC_UNKNOWN = 2
GRPC_INTERNAL = 13
GRPC_UNAVAILABLE = 14
UPSTREAM_FAILURE = "upstream connect error or disconnect/reset before headers. reset reason: "
_PREFIX = struct.Struct(">BI")

# https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md
_HTTP_TO_GRPC = {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}


def close_message(message: bytes, details: str) -> bytes:
    """Envoy's gRPC close message: ``message{details}``, or ``details`` alone."""
    return message + b"{" + details.encode() + b"}" if message else details.encode()


def _percent_decode(value: bytes) -> bytes:
    return urllib.parse.unquote_to_bytes(value) if b"%" in value else value


def _connect_reason(exc: BaseException | None) -> tuple[str, str]:
    """(reset reason, Envoy's transport failure detail) for a failed connect."""
    if exc is None:
        return "connection timeout", "connection_timeout"
    err = getattr(exc, "errno", None)
    text = os.strerror(err) if isinstance(err, int) and err else str(exc)
    return "remote connection failure", \
        "remote_connection_failure|delayed_connect_error:_" + text.replace(" ", "_")


class GrpcStream:
    """One call or stream on a :class:`GrpcClient` (the runtime's GrpcStreamHandle)."""

    def __init__(self, client: GrpcClient, request: GrpcRequest, events: GrpcEvents) -> None:
        self.client = client
        self.request = request
        self.events = events
        self.conn: _Connection | None = None
        self.stream_id: int | None = None
        self.out = bytearray()          # framed messages not yet given to h2
        self.end_wanted = False
        self.end_sent = False
        self.done = False               # closed, failed or cancelled: no more events
        self.response_headers: Headers | None = None
        self.trailers: Headers | None = None
        self.inbound = bytearray()
        self.started_ns = time.monotonic_ns()
        self.timer: asyncio.TimerHandle | None = None
        timeout = request.timeout_ms
        if timeout:
            self.timer = client.loop.call_later(timeout / 1000.0, self._timed_out)

    # ------------------------------------------------------------ GrpcStreamHandle
    def send(self, message: bytes, end_stream: bool) -> None:
        if self.done or self.end_wanted:
            return
        self.out += _PREFIX.pack(0, len(message))
        self.out += message
        if end_stream:
            self.end_wanted = True
        if self.conn is not None:
            self.conn.flush(self)

    def half_close(self) -> None:
        if self.done or self.end_wanted:
            return
        self.end_wanted = True
        if self.conn is not None:
            self.conn.flush(self)

    def cancel(self) -> None:
        if self.done:
            return
        self._finish()
        if self.conn is not None:
            self.conn.reset(self)

    # ------------------------------------------------------------ request headers
    def headers(self, scheme: str) -> Headers:
        r = self.request
        out: Headers = [(b":method", b"POST"), (b":scheme", scheme.encode()),
                        (b":path", r.path.encode()),
                        (b":authority", (r.authority or r.cluster).encode()),
                        (b"content-type", b"application/grpc"), (b"te", b"trailers")]
        if r.timeout_ms is not None:
            out.append((b"grpc-timeout", f"{r.timeout_ms}m".encode()))
        out.extend(r.metadata)
        out.append((b"x-envoy-internal", b"true"))
        if r.timeout_ms:
            out.append((b"x-envoy-expected-rq-timeout-ms", str(r.timeout_ms).encode()))
        return out

    # ------------------------------------------------------------ events from the wire
    def _finish(self) -> None:
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _close(self, status: int, message: bytes) -> None:
        if self.done:
            return
        self._finish()
        self.events.on_close(status, message)

    def on_response(self, headers: Headers, ended: bool) -> None:
        if self.done:
            return
        elapsed_ms = (time.monotonic_ns() - self.started_ns) // 1_000_000
        headers = [*headers, (b"x-envoy-upstream-service-time", str(elapsed_ms).encode())]
        if ended:                       # trailers-only: everything is in these headers
            self.events.on_initial_metadata([])
            if self.done:
                return
            self.trailers = headers
            self.on_end()
            return
        self.response_headers = headers
        self.events.on_initial_metadata(headers)

    def on_data(self, data: bytes) -> None:
        if self.done:
            return
        buf = self.inbound
        buf += data
        while len(buf) >= 5 and not self.done:
            flags, size = _PREFIX.unpack_from(buf)
            if len(buf) < 5 + size:
                break
            message = bytes(buf[5:5 + size])
            del buf[:5 + size]
            if flags & 1:               # we never offer compression
                self.cancel_with(GRPC_INTERNAL, b"compressed message without grpc-encoding")
                return
            self.events.on_message(message)

    def on_trailers(self, trailers: Headers) -> None:
        self.trailers = trailers

    def on_end(self) -> None:
        if self.done:
            return
        trailers = self.trailers
        if trailers is None:            # ended with neither trailers nor grpc-status
            status = self._http_status()
            self._close(status if status is not None else GRPC_INTERNAL,
                        close_message(b"", "via_upstream"))
            return
        self.events.on_trailing_metadata(trailers)
        if self.done:
            return
        values = dict(trailers)
        raw_status = values.get(b"grpc-status")
        status = GRPC_UNKNOWN
        if raw_status is not None and raw_status.isdigit():
            status = int(raw_status)
        elif raw_status is None:
            status = self._http_status() or GRPC_UNKNOWN
        message = _percent_decode(values.get(b"grpc-message", b""))
        self._close(status, close_message(message, "via_upstream"))

    def _http_status(self) -> int | None:
        headers = self.response_headers or self.trailers or []
        for k, v in headers:
            if k == b":status" and v.isdigit():
                code = int(v)
                return None if code == 200 else _HTTP_TO_GRPC.get(code, GRPC_UNKNOWN)
        return None

    def cancel_with(self, status: int, message: bytes) -> None:
        """End the stream locally with a status (reset on the wire)."""
        conn = self.conn
        self._close(status, message)
        if conn is not None:
            conn.reset(self)

    def upstream_failed(self, reason: str, details: str) -> None:
        """The peer is unreachable or went away: Envoy's router's local gRPC reply."""
        if self.done:
            return
        started = self.response_headers is not None
        body = UPSTREAM_FAILURE + reason
        where = "upstream_reset_after_response_started" if started else \
            "upstream_reset_before_response_started"
        message = close_message(body.encode(), f"{where}{{{details}}}")
        if not started:
            self.events.on_initial_metadata([])
            if self.done:
                return
            self.events.on_trailing_metadata([
                (b":status", b"200"), (b"content-type", b"application/grpc"),
                (b"grpc-status", str(GRPC_UNAVAILABLE).encode()),
                (b"grpc-message", urllib.parse.quote(body, safe=" ").encode())])
        self._close(GRPC_UNAVAILABLE, message)

    def _timed_out(self) -> None:
        self.timer = None
        self.cancel_with(GRPC_UNAVAILABLE, b"upstream request timeout{response_timeout}")


class _Connection(asyncio.Protocol):
    """One HTTP/2 connection of a GrpcClient."""

    def __init__(self, client: GrpcClient) -> None:
        self.client = client
        self.h2 = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.transport: asyncio.Transport | None = None
        self.waiting: list[GrpcStream] = []       # opened before the connection was up
        self.streams: dict[int, GrpcStream] = {}
        self.usable = True                        # False after GOAWAY / close
        self.connect_timer: asyncio.TimerHandle | None = None
        self.bytes_in = 0                         # what the peer sent ...
        self.frames_in = False                    # ... and whether any of it was HTTP/2

    # ------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self.h2.initiate_connection()
        self._write()
        waiting, self.waiting = self.waiting, []
        for stream in waiting:
            if not stream.done:
                self.start(stream)

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            log.debug("gRPC cluster %s: HTTP/2 protocol error: %s", self.client.cluster, exc)
            self._write()
            self._lost("protocol error", "protocol_error")
            if self.transport is not None:
                self.transport.close()
            return
        if events:
            self.frames_in = True
        for event in events:
            self._event(event)
        self._write()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.bytes_in and not self.frames_in:
            # the peer answered, but not in HTTP/2 (say, an HTTP/1.1 server): as Envoy
            self._lost("protocol error", "protocol_error")
            return
        self._lost("connection termination", "connection_termination")

    # ------------------------------------------------------------ streams
    def open(self, stream: GrpcStream) -> None:
        stream.conn = self
        if self.transport is None:
            self.waiting.append(stream)
        else:
            self.start(stream)

    def start(self, stream: GrpcStream) -> None:
        h2c = self.h2
        sid = h2c.get_next_available_stream_id()
        scheme = "https" if self.client.tls else "http"
        try:
            h2c.send_headers(sid, stream.headers(scheme), end_stream=False)
        except (h2.exceptions.ProtocolError, ValueError, TypeError) as exc:
            log.debug("gRPC cluster %s: cannot send the request headers: %s",
                      self.client.cluster, exc)
            self.client.loop.call_soon(stream._close, GRPC_INTERNAL,
                                       b"invalid request metadata")
            return
        stream.stream_id = sid
        self.streams[sid] = stream
        self.flush(stream)

    def flush(self, stream: GrpcStream) -> None:
        sid = stream.stream_id
        if sid is None or stream.end_sent or self.transport is None:
            return
        h2c = self.h2
        out = stream.out
        try:
            while out:
                room = min(h2c.local_flow_control_window(sid), h2c.max_outbound_frame_size)
                if room <= 0:
                    break
                chunk = bytes(out[:room])
                del out[:room]
                last = not out and stream.end_wanted
                h2c.send_data(sid, chunk, end_stream=last)
                if last:
                    stream.end_sent = True
            if not out and stream.end_wanted and not stream.end_sent:
                h2c.end_stream(sid)
                stream.end_sent = True
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            out.clear()
        self._write()

    def reset(self, stream: GrpcStream) -> None:
        sid = stream.stream_id
        if sid is None:
            if stream in self.waiting:
                self.waiting.remove(stream)
            return
        self.streams.pop(sid, None)
        try:
            self.h2.reset_stream(sid, error_code=h2.errors.ErrorCodes.CANCEL)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return
        self._write()

    # ------------------------------------------------------------ internals
    def _event(self, event: Any) -> None:
        sid = getattr(event, "stream_id", 0)
        stream = self.streams.get(sid) if sid else None
        if isinstance(event, h2.events.ResponseReceived):
            if stream is not None:
                stream.on_response(list(event.headers), event.stream_ended is not None)
                if event.stream_ended is not None:
                    self.streams.pop(sid, None)
        elif isinstance(event, h2.events.DataReceived):
            if event.flow_controlled_length:
                try:
                    self.h2.acknowledge_received_data(event.flow_controlled_length, sid)
                except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                    pass
            if stream is not None:
                stream.on_data(event.data)
        elif isinstance(event, h2.events.TrailersReceived):
            if stream is not None:
                stream.on_trailers(list(event.headers))
        elif isinstance(event, h2.events.StreamEnded):
            if stream is not None:
                self.streams.pop(sid, None)
                stream.on_end()
        elif isinstance(event, h2.events.StreamReset):
            if stream is not None:
                self.streams.pop(sid, None)
                stream.upstream_failed("remote reset", "remote_reset")
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            for s in list(self.streams.values()):
                if s.out or (s.end_wanted and not s.end_sent):
                    self.flush(s)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.usable = False

    def _write(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def connect_failed(self, exc: BaseException | None) -> None:
        reason, details = _connect_reason(exc)
        self.usable = False
        waiting, self.waiting = self.waiting, []
        for stream in waiting:
            stream.upstream_failed(reason, details)

    def _lost(self, reason: str, details: str) -> None:
        self.usable = False
        self.transport = None
        streams = list(self.streams.values()) + self.waiting
        self.streams.clear()
        self.waiting = []
        for stream in streams:
            stream.upstream_failed(reason, details)

    def close(self) -> None:
        self.usable = False
        for stream in list(self.streams.values()) + self.waiting:
            stream._finish()
        self.streams.clear()
        self.waiting = []
        if self.connect_timer is not None:
            self.connect_timer.cancel()
        if self.transport is not None:
            try:
                self.h2.close_connection()
                self._write()
            except h2.exceptions.ProtocolError:
                pass
            self.transport.close()
            self.transport = None


class GrpcClient:
    """The gRPC client of one cluster: one HTTP/2 connection, many streams."""

    def __init__(self, loop: asyncio.AbstractEventLoop, cluster: str, host: str, port: int,
                 tls: bool = False, connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self.loop = loop
        self.cluster = cluster
        self.host = host
        self.port = port
        self.tls = tls
        self.connect_timeout_s = connect_timeout_s
        self.conn: _Connection | None = None
        self.closed = False
        self.ssl_context: ssl.SSLContext | None = None
        if tls:
            self.ssl_context = ssl.create_default_context()
            self.ssl_context.set_alpn_protocols(["h2"])

    def open(self, request: GrpcRequest, events: GrpcEvents) -> GrpcStream:
        stream = GrpcStream(self, request, events)
        if self.closed:
            self.loop.call_soon(stream.upstream_failed, "connection termination",
                                "connection_termination")
            return stream
        conn = self.conn
        if conn is None or not conn.usable:
            conn = self.conn = self._connect()
        conn.open(stream)
        return stream

    def _connect(self) -> _Connection:
        conn = _Connection(self)
        factory: Callable[[], asyncio.Protocol] = lambda: conn  # noqa: E731
        if self.tls:
            connecting = self.loop.create_connection(factory, self.host, self.port,
                                                     ssl=self.ssl_context,
                                                     server_hostname=self.host)
        else:
            connecting = self.loop.create_connection(factory, self.host, self.port)
        future = asyncio.ensure_future(connecting, loop=self.loop)
        conn.connect_timer = self.loop.call_later(self.connect_timeout_s, future.cancel)

        def done(fut: asyncio.Future[Any]) -> None:
            if conn.connect_timer is not None:
                conn.connect_timer.cancel()
                conn.connect_timer = None
            if fut.cancelled():
                conn.connect_failed(None)
            elif fut.exception() is not None:
                log.debug("gRPC cluster %s: connecting to %s:%s failed: %s", self.cluster,
                          self.host, self.port, fut.exception())
                conn.connect_failed(fut.exception())

        future.add_done_callback(done)
        return conn

    def close(self) -> None:
        self.closed = True
        if self.conn is not None:
            self.conn.close()
            self.conn = None
