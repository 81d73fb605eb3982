"""HttpEmulator: run HTTP requests through HTTP filters with no sockets."""

from __future__ import annotations

from typing import Any

from wasmetool.host import abi
from wasmetool.host.stream_info import StreamInfo
from wasmetool.testing.root import Body, HeaderInput, Headers, HostEmulator, _b, to_headers
from wasmetool.testing.trace import TraceEvent


class Exchange:
    """One stream: what the filters forwarded upstream and sent back downstream.

    Drive it step by step (``send_request_headers``, ``send_request_body``,
    ``send_response_headers``...) or let :meth:`HttpEmulator.request` do it all.
    """

    def __init__(self, emu: HttpEmulator, info: StreamInfo | None = None) -> None:
        self.emu = emu
        self.forwarded_headers: Headers | None = None
        self.forwarded_body = Body()
        self.forwarded_trailers: Headers | None = None
        self.request_end = False
        self.response_headers: Headers | None = None
        self.response_body = Body()
        self.response_trailers: Headers | None = None
        self.response_end = False
        self.local_reply: tuple[int, Headers, bytes] | None = None
        self.was_reset = False
        self.events: list[tuple[Any, ...]] = []
        self.info = info or StreamInfo(("127.0.0.1", 40000), ("127.0.0.1", 8080), 1,
                                       start_time_ns=emu.time.wall_ns())
        if emu.properties and self.info.filter_state is None:
            self.info.filter_state = dict(emu.properties)
        self.stream = emu.host.new_http_stream(self.info, self)

    # HttpStreamCallbacks -----------------------------------------------------------
    def forward_request_headers(self, headers: list[tuple[bytes, bytes]], end_stream: bool) -> None:
        self.events.append(("request_headers", end_stream))
        self.forwarded_headers = Headers(headers)
        self.request_end = end_stream

    def forward_request_data(self, data: bytes, end_stream: bool) -> None:
        self.events.append(("request_data", len(data), end_stream))
        self.forwarded_body = Body(self.forwarded_body + data)
        self.request_end = end_stream

    def forward_request_trailers(self, trailers: list[tuple[bytes, bytes]]) -> None:
        self.events.append(("request_trailers",))
        self.forwarded_trailers = Headers(trailers)
        self.request_end = True

    def send_response_headers(self, headers: list[tuple[bytes, bytes]], end_stream: bool) -> None:
        self.events.append(("response_headers", end_stream))
        self.response_headers = Headers(headers)
        self.response_end = end_stream

    def send_response_data(self, data: bytes, end_stream: bool) -> None:
        self.events.append(("response_data", len(data), end_stream))
        self.response_body = Body(self.response_body + data)
        self.response_end = end_stream

    def send_response_trailers(self, trailers: list[tuple[bytes, bytes]]) -> None:
        self.events.append(("response_trailers",))
        self.response_trailers = Headers(trailers)
        self.response_end = True

    def send_local_reply(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.events.append(("local_reply", status))
        self.local_reply = (status, Headers(headers), body)

    def reset_stream(self) -> None:
        self.events.append(("reset",))
        self.was_reset = True

    # driving -------------------------------------------------------------------------
    def _pump(self) -> Exchange:
        self.emu.pump()
        return self

    def send_request_headers(self, headers: HeaderInput, end_stream: bool = False) -> Exchange:
        self.stream.decode_headers(to_headers(headers), end_stream)
        return self._pump()

    def send_request_body(self, data: bytes | str, end_stream: bool = True) -> Exchange:
        self.stream.decode_data(_b(data), end_stream)
        return self._pump()

    def send_request_trailers(self, trailers: HeaderInput) -> Exchange:
        self.stream.decode_trailers(to_headers(trailers))
        return self._pump()

    def send_response_headers_upstream(self, headers: HeaderInput,
                                       end_stream: bool = False) -> Exchange:
        self.stream.encode_headers(to_headers(headers), end_stream)
        return self._pump()

    def send_response_body_upstream(self, data: bytes | str, end_stream: bool = True) -> Exchange:
        self.stream.encode_data(_b(data), end_stream)
        return self._pump()

    def send_response_trailers_upstream(self, trailers: HeaderInput) -> Exchange:
        self.stream.encode_trailers(to_headers(trailers))
        return self._pump()

    def complete(self) -> Exchange:
        self.stream.complete()
        return self._pump()

    # pausing ---------------------------------------------------------------------------
    @property
    def request_paused(self) -> bool:
        """A filter stopped the request (headers, body or trailers) and has not resumed it."""
        return not self.stream.finished and self.stream.req.stop >= 0

    @property
    def response_paused(self) -> bool:
        return not self.stream.finished and self.stream.resp.stop >= 0

    @property
    def paused(self) -> bool:
        return self.request_paused or self.response_paused

    def resume(self, direction: str = "request") -> Exchange:
        """Continue a paused direction (``request`` or ``response``) as if the filter that
        stopped it called proxy_continue_stream."""
        if direction not in ("request", "response"):
            raise ValueError("direction is 'request' or 'response'")
        d = self.stream.req if direction == "request" else self.stream.resp
        if self.stream.finished or d.stop < 0:
            raise AssertionError(f"the {direction} is not paused")
        f = d.chain[d.stop]
        if f.ctx is None:
            raise AssertionError(f"the {direction} is held by a failed plugin")
        self.stream.continue_stream(f.ctx, abi.STREAM_HTTP_REQUEST if direction == "request"
                                    else abi.STREAM_HTTP_RESPONSE)
        return self._pump()

    # what the host holds now (a paused stream's state; proxytest's GetCurrent*) --------
    @property
    def current_request_headers(self) -> Headers | None:
        """The request headers as the filters see them now (including a paused request's
        changes not yet forwarded)."""
        h = self.stream.req_headers
        return Headers(h) if h is not None else None

    @property
    def current_response_headers(self) -> Headers | None:
        h = self.stream.resp_headers
        return Headers(h) if h is not None else None

    @property
    def current_request_body(self) -> bytes:
        """The request body a filter holds buffered now (empty when nothing is held)."""
        buf = self.stream.get_buffer(abi.BUF_HTTP_REQUEST_BODY)
        return bytes(buf) if buf is not None else b""

    @property
    def current_response_body(self) -> bytes:
        buf = self.stream.get_buffer(abi.BUF_HTTP_RESPONSE_BODY)
        return bytes(buf) if buf is not None else b""

    # what the filters did --------------------------------------------------------------
    @property
    def context_ids(self) -> list[int]:
        """This stream's context id in each filter of the chain."""
        return [f.id for f in self.stream.filters]

    @property
    def trace(self) -> list[TraceEvent]:
        """The trace events of this stream's contexts (needs trace=True, the default)."""
        tracer = self.emu.tracer
        return [] if tracer is None else tracer.of_filters(self.stream.filters)

    @property
    def actions(self) -> list[tuple[str, str]]:
        """(callback, action) for each stream callback that returned one, in order, e.g.
        ``[("proxy_on_request_headers", "Continue"), ("proxy_on_response_headers", "Pause")]``."""
        return [(e.name, e.action) for e in self.trace if e.action is not None]

    def action(self, callback: str) -> str | None:
        """The action the last ``callback`` (``request_headers``, ``proxy_on_response_body``...)
        returned, None if it was not called."""
        name = callback if callback.startswith("proxy_on_") else "proxy_on_" + callback
        found = [a for n, a in self.actions if n == name]
        return found[-1] if found else None

    def get_property(self, path: str | list[str], index: int = 0) -> bytes | None:
        """A property as the index-th filter of the chain would read it now
        (``"request.path"`` or ``["request", "path"]``)."""
        from wasmetool.host.attributes import get_property

        ctx = self.stream.filters[index].ctx
        if ctx is None:
            return None
        parts = path if isinstance(path, list) else path.split(".")
        value = get_property(ctx, b"\0".join(p.encode() for p in parts))
        return value if isinstance(value, bytes) else None

    def set_property(self, path: str | list[str], value: bytes | str, index: int = 0) -> None:
        """Set a property on this stream as proxy_set_property would (the filters read it
        back with proxy_get_property)."""
        from wasmetool.host.attributes import set_property

        ctx = self.stream.filters[index].ctx
        if ctx is None:
            raise AssertionError("the plugin of this filter failed")
        parts = path if isinstance(path, list) else path.split(".")
        set_property(ctx, b"\0".join(p.encode() for p in parts), _b(value))

    # convenience -----------------------------------------------------------------------
    @property
    def status(self) -> int | None:
        if self.local_reply is not None:
            return self.local_reply[0]
        if self.response_headers is not None:
            s = self.response_headers.get(":status")
            return int(s) if s else None
        return None

    @property
    def body(self) -> bytes:
        return Body(self.local_reply[2]) if self.local_reply is not None else self.response_body

    @property
    def headers(self) -> Headers | None:
        return self.local_reply[1] if self.local_reply is not None else self.response_headers


DEFAULT_REQUEST = {":method": "GET", ":path": "/", ":authority": "example.com",
                   ":scheme": "http"}
_DEFAULT_REQUEST_PAIRS = tuple(to_headers(DEFAULT_REQUEST))
_OK_PAIRS = ((b":status", b"200"),)


class HttpEmulator(HostEmulator):
    """HTTP filters on a real Host; requests never touch a socket.

    ``request()`` runs a whole exchange: request headers (+ body/trailers), then, unless a
    local reply was sent or the request is still paused, the upstream response you give
    (default ``200`` with no body), then completes the stream (log -> done -> delete).
    """

    kind = "http"

    def new_exchange(self, info: StreamInfo | None = None) -> Exchange:
        """A fresh stream to drive step by step."""
        return Exchange(self, info)

    def request(self, headers: HeaderInput | None = None, body: bytes | str | None = None,
                trailers: HeaderInput | None = None, *,
                response_headers: HeaderInput | None = None,
                response_body: bytes | str | None = None,
                response_trailers: HeaderInput | None = None,
                complete: bool = True) -> Exchange:
        ex = Exchange(self)
        # the steps of send_request_headers & co, inlined: this is the harness's hot path
        pump = self.pump
        ex.stream.decode_headers(to_headers(headers) if headers is not None
                                 else list(_DEFAULT_REQUEST_PAIRS),
                                 body is None and trailers is None)
        pump()
        if body is not None:
            ex.send_request_body(body, end_stream=trailers is None)
        if trailers is not None:
            ex.send_request_trailers(trailers)
        if ex.local_reply is None and ex.request_end and not ex.was_reset:
            ex.stream.encode_headers(to_headers(response_headers)
                                     if response_headers is not None else list(_OK_PAIRS),
                                     response_body is None and response_trailers is None)
            pump()
            if response_body is not None:
                ex.send_response_body_upstream(response_body,
                                               end_stream=response_trailers is None)
            if response_trailers is not None:
                ex.send_response_trailers_upstream(response_trailers)
        if complete and (ex.local_reply is not None or ex.response_end or ex.was_reset):
            ex.stream.complete()
            pump()
        return ex
