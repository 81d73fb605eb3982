"""HttpEmulator: run HTTP requests through HTTP filters with no sockets."""

from __future__ import annotations

from typing import Any

from wasmetool.host.stream_info import StreamInfo
from wasmetool.testing.root import HeaderInput, Headers, HostEmulator, _b, to_headers


class Exchange:
    """One stream: what the filters forwarded upstream and sent back downstream.

    Drive it step by step (``send_request_headers``, ``send_request_body``,
    ``send_response_headers``...) or let :meth:`HttpEmulator.request` do it all.
    """

    def __init__(self, emu: HttpEmulator, info: StreamInfo | None = None) -> None:
        self.emu = emu
        self.forwarded_headers: Headers | None = None
        self.forwarded_body = b""
        self.forwarded_trailers: Headers | None = None
        self.request_end = False
        self.response_headers: Headers | None = None
        self.response_body = b""
        self.response_trailers: Headers | None = None
        self.response_end = False
        self.local_reply: tuple[int, Headers, bytes] | None = None
        self.was_reset = False
        self.events: list[tuple[Any, ...]] = []
        self.info = info or StreamInfo(("127.0.0.1", 40000), ("127.0.0.1", 8080), 1)
        self.stream = emu.host.new_http_stream(self.info, self)

    # HttpStreamCallbacks -----------------------------------------------------------
    def forward_request_headers(self, headers: list[tuple[bytes, bytes]], end_stream: bool) -> None:
        self.events.append(("request_headers", end_stream))
        self.forwarded_headers = Headers(headers)
        self.request_end = end_stream

    def forward_request_data(self, data: bytes, end_stream: bool) -> None:
        self.events.append(("request_data", len(data), end_stream))
        self.forwarded_body += data
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
        self.response_body += data
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
        self.emu.dispatcher.run_pending()
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
        return self.local_reply[2] if self.local_reply is not None else self.response_body

    @property
    def headers(self) -> Headers | None:
        return self.local_reply[1] if self.local_reply is not None else self.response_headers


DEFAULT_REQUEST = {":method": "GET", ":path": "/", ":authority": "example.com",
                   ":scheme": "http"}


class HttpEmulator(HostEmulator):
    """HTTP filters on a real Host; requests never touch a socket.

    ``request()`` runs a whole exchange: request headers (+ body/trailers), then, unless a
    local reply was sent or the request is still paused, the upstream response you give
    (default ``200`` with no body), then completes the stream (log -> done -> delete).
    """

    kind = "http"

    def new_exchange(self, info: StreamInfo | None = None) -> Exchange:
        return Exchange(self, info)

    def request(self, headers: HeaderInput | None = None, body: bytes | str | None = None,
                trailers: HeaderInput | None = None, *,
                response_headers: HeaderInput | None = None,
                response_body: bytes | str | None = None,
                response_trailers: HeaderInput | None = None,
                complete: bool = True) -> Exchange:
        ex = Exchange(self)
        hdrs = headers if headers is not None else DEFAULT_REQUEST
        ex.send_request_headers(hdrs, end_stream=body is None and trailers is None)
        if body is not None:
            ex.send_request_body(body, end_stream=trailers is None)
        if trailers is not None:
            ex.send_request_trailers(trailers)
        if ex.local_reply is None and ex.request_end and not ex.was_reset:
            ex.send_response_headers_upstream(
                response_headers if response_headers is not None else {":status": "200"},
                end_stream=response_body is None and response_trailers is None)
            if response_body is not None:
                ex.send_response_body_upstream(response_body,
                                               end_stream=response_trailers is None)
            if response_trailers is not None:
                ex.send_response_trailers_upstream(response_trailers)
        if complete and (ex.local_reply is not None or ex.response_end or ex.was_reset):
            ex.complete()
        return ex
