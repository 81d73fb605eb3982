"""The HTTP filter manager: runs a request/response through the chain of HTTP plugins.

Requests go through the filters in chain order, responses in reverse order, as in Envoy.
A direction (request or response) is iterated event by event (headers, data, trailers);
when a filter stops, iteration is held at that filter until it continues:

* Pause from headers = Envoy's StopAllIterationAndWatermark: later data and trailers are
  held (not given to that filter) until proxy_continue_stream, then handed to it;
* Pause from a body callback = StopIterationAndBuffer: the data is buffered and the
  filter is called again with the cumulative body size as more arrives;
* Pause from trailers = StopIteration.

proxy_send_local_response forces the running callback's result to "stop" and, once the
VM call has returned, sends the reply: from the request path it goes through the encode
callbacks of the filters up to the one that sent it; from the response path (headers not
yet sent) it is sent directly; after the response started the stream is reset.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from wasmetool.host import abi
from wasmetool.host.attributes import HTTP_TO_GRPC
from wasmetool.host.contexts import GONE, StreamContext
from wasmetool.host.fastpath import GuestTrap

if TYPE_CHECKING:
    from wasmetool.host.plugin import PluginRuntime
    from wasmetool.host.state import HostServices
    from wasmetool.host.stream_info import StreamInfo

Headers = list[tuple[bytes, bytes]]

HDR, DATA, TRL = 1, 2, 3
FAIL_DETAILS = b"wasm_fail_stream"


class HttpStreamCallbacks(Protocol):
    def forward_request_headers(self, headers: Headers, end_stream: bool) -> None: ...
    def forward_request_data(self, data: bytes, end_stream: bool) -> None: ...
    def forward_request_trailers(self, trailers: Headers) -> None: ...
    def send_response_headers(self, headers: Headers, end_stream: bool) -> None: ...
    def send_response_data(self, data: bytes, end_stream: bool) -> None: ...
    def send_response_trailers(self, trailers: Headers) -> None: ...
    def send_local_reply(self, status: int, headers: Headers, body: bytes) -> None: ...
    def reset_stream(self) -> None: ...


class _Filter:
    """One plugin's place in one stream: its stream context (None = deny: VM failed)."""

    __slots__ = ("plugin", "vm", "ex", "ctx", "id", "bypass", "index", "created")

    def __init__(self, plugin: PluginRuntime, ctx: StreamContext | None, index: int) -> None:
        self.plugin = plugin
        self.ctx = ctx
        self.index = index
        self.bypass = False
        self.created = False
        if ctx is not None:
            self.vm = ctx.vm
            self.ex = ctx.vm.ex
            self.id = ctx.id
        else:
            self.vm = None
            self.ex = None
            self.id = 0


class _Dir:
    __slots__ = ("is_req", "chain", "stop", "kind", "buf", "buf_eos", "trl_held", "hdr_eos",
                 "cur", "cur_eos", "aborted", "emitted", "started", "added_trailers")
    is_req: bool
    chain: list[_Filter]
    stop: int
    kind: int
    buf: bytearray | None
    buf_eos: bool
    trl_held: bool
    hdr_eos: bool
    cur: bytearray | None
    cur_eos: bool
    aborted: bool
    emitted: bool
    started: bool
    added_trailers: Headers | None

    def __init__(self, is_req: bool, chain: list[_Filter]) -> None:
        self.is_req = is_req
        self.chain = chain
        # one unpack instead of a constant load per field (two per stream, hot path)
        (self.stop, self.kind, self.buf, self.buf_eos, self.trl_held, self.hdr_eos, self.cur,
         self.cur_eos, self.added_trailers, self.aborted, self.emitted,
         self.started) = _DIR_START


_DIR_START = (-1, 0, None, False, False, False, None, False, None, False, False, False)


_STREAM_START = (None, None, None, None, False, None, False, None, None, False, 0, 0, 0, False)


class HttpStream:
    __slots__ = ("host", "info", "cb", "filters", "req", "resp", "req_headers", "req_trailers",
                 "resp_headers", "resp_trailers", "finished", "pending_local", "local_mode",
                 "local_headers", "local_body", "local_sent", "request_body_bytes",
                 "response_body_bytes", "in_call", "close_after")
    req_headers: Headers | None
    req_trailers: Headers | None
    resp_headers: Headers | None
    resp_trailers: Headers | None
    finished: bool
    pending_local: tuple[Any, ...] | None
    local_mode: bool
    local_headers: Headers | None
    local_body: bytearray | None
    local_sent: bool
    request_body_bytes: int
    response_body_bytes: int
    in_call: int
    close_after: bool

    def __init__(self, host: HostServices, info: StreamInfo, callbacks: HttpStreamCallbacks,
                 filters: list[_Filter]) -> None:
        self.host = host
        self.info = info
        self.cb = callbacks
        self.filters = filters
        self.req = _Dir(True, filters)
        self.resp = _Dir(False, filters)   # chain reversed when the response starts
        # local_body: created by a local reply
        (self.req_headers, self.req_trailers, self.resp_headers, self.resp_trailers,
         self.finished, self.pending_local, self.local_mode, self.local_headers,
         self.local_body, self.local_sent, self.request_body_bytes, self.response_body_bytes,
         self.in_call, self.close_after) = _STREAM_START

    # ---------------------------------------------------------------- data for host calls
    def get_map(self, map_type: int, ctx: StreamContext | None = None,
                write: bool = False) -> Headers | None:
        """A header map as filter ``ctx`` sees it now (Envoy 1.40, recorded by the
        conformance case ``request_after_upstream``): the request (response) headers are
        gone for a filter once its headers callback returned Continue, and from on_log on
        every map is read-only (writes and the map size answer BAD_ARGUMENT)."""
        if self.finished:
            if write:
                return None
            if map_type == abi.MAP_REQUEST_HEADERS:
                return self.req_headers
            if map_type == abi.MAP_RESPONSE_HEADERS:
                return self.resp_headers
            if map_type == abi.MAP_REQUEST_TRAILERS:
                return []       # Envoy's access log has no request trailers: an empty map
            if map_type == abi.MAP_RESPONSE_TRAILERS:
                return self.resp_trailers if self.resp_trailers is not None else []
            return None
        if map_type == abi.MAP_REQUEST_HEADERS:
            return None if ctx is not None and ctx.req_released else self.req_headers
        if map_type == abi.MAP_RESPONSE_HEADERS:
            return None if ctx is not None and ctx.resp_released else self.resp_headers
        # trailers are only created for a write (Envoy's mutable map); a read of trailers
        # that do not exist is BAD_ARGUMENT
        if map_type == abi.MAP_REQUEST_TRAILERS:
            if ctx is not None and ctx.req_trl_released:
                return None
            if self.req_trailers is None:
                return self._add_trailers(self.req) if write else None
            return self.req_trailers
        if map_type == abi.MAP_RESPONSE_TRAILERS:
            if self.resp_trailers is None:
                return self._add_trailers(self.resp) if write else None
            return self.resp_trailers
        return None

    def _add_trailers(self, d: _Dir) -> Headers | None:
        """Envoy's add{De,En}codedTrailers: the last body callback may create trailers."""
        if d.cur is None or not d.cur_eos:
            return None
        if d.added_trailers is None:
            d.added_trailers = []
        return d.added_trailers

    def get_buffer(self, buf_type: int) -> bytearray | None:
        if buf_type == abi.BUF_HTTP_REQUEST_BODY:
            d = self.req
        elif buf_type == abi.BUF_HTTP_RESPONSE_BODY:
            d = self.resp
        else:
            return None
        return d.cur if d.cur is not None else d.buf

    # ---------------------------------------------------------------- server entry points
    def decode_headers(self, headers: Headers, end_stream: bool) -> None:
        d = self.req
        if d.started or self.finished:
            return
        d.started = True
        self.req_headers = headers
        d.hdr_eos = end_stream
        self._headers_from(d, 0)

    def decode_data(self, data: bytes, end_stream: bool) -> None:
        d = self.req
        if d.aborted or self.finished:
            return
        self.request_body_bytes += len(data)
        if d.stop < 0 and _passes_data(d.chain, True):
            self._emit_data(d, bytes(data), end_stream)
            return
        self._data_from(d, 0, bytearray(data), end_stream)

    def decode_trailers(self, trailers: Headers) -> None:
        d = self.req
        if d.aborted or self.finished:
            return
        self.req_trailers = trailers
        self._trailers_from(d, 0)

    def encode_headers(self, headers: Headers, end_stream: bool) -> None:
        d = self.resp
        if d.started or self.finished or self.local_mode or self.local_sent:
            return
        d.started = True
        filters = self.filters
        d.chain = filters[::-1] if len(filters) > 1 else filters
        info = self.info
        if not info.response_code_details:
            info.response_code_details = "via_upstream"
        self.resp_headers = headers
        d.hdr_eos = end_stream
        self._headers_from(d, 0)

    def encode_data(self, data: bytes, end_stream: bool) -> None:
        d = self.resp
        if d.aborted or self.finished or self.local_mode or self.local_sent:
            return
        self.response_body_bytes += len(data)
        if d.stop < 0 and _passes_data(d.chain, False):
            self._emit_data(d, bytes(data), end_stream)
            return
        self._data_from(d, 0, bytearray(data), end_stream)

    def encode_last_data(self, data: bytes) -> None:
        """The body's last data and the end of stream: one event when no filter sees body
        data, else Envoy's two (the data, then an empty end-of-stream frame)."""
        d = self.resp
        if d.aborted or self.finished or self.local_mode or self.local_sent:
            return
        self.response_body_bytes += len(data)
        if d.stop < 0 and _passes_data(d.chain, False):
            self._emit_data(d, bytes(data), True)
            return
        self._data_from(d, 0, bytearray(data), False)
        self.encode_data(b"", True)

    def encode_trailers(self, trailers: Headers) -> None:
        d = self.resp
        if d.aborted or self.finished or self.local_mode or self.local_sent:
            return
        self.resp_trailers = trailers
        self._trailers_from(d, 0)

    def complete(self) -> None:
        self._teardown()

    def reset(self) -> None:
        self._teardown()

    # ---------------------------------------------------------------- calling the guest
    def _call(self, f: _Filter, d: _Dir, kind: int, a: int, b: int) -> int:
        """Run one callback of filter f; returns CONTINUE (0) or non-zero for stop."""
        if not f.created and not self._create(f):
            return self._failed(f, d)
        fn = (f.ex.http_request if d.is_req else f.ex.http_response)[kind]
        if fn is None:
            return 0
        vm = f.vm
        if vm.failed:
            return self._failed(f, d)
        prev = vm.cur
        vm.cur = vm.eff = f.ctx
        self.in_call += 1
        try:
            r = fn(f.id, a, b) if kind != TRL else fn(f.id, a)
        except GuestTrap as e:
            vm.cur = vm.eff = prev
            self.in_call -= 1
            vm.fail(str(e), _CB_NAMES[d.is_req][kind])
            return self._failed(f, d)
        vm.cur = vm.eff = prev
        self.in_call -= 1
        if self.pending_local is not None:
            self._flush_local()
            return 1
        return r

    def _create(self, f: _Filter) -> bool:
        """Envoy's onCreate: proxy_on_context_create(ctx, root) when the stream reaches f."""
        f.created = True
        vm = f.vm
        if vm.failed:
            return False
        create = f.ex.proxy_on_context_create
        if create is None:
            return True
        prev = vm.cur
        vm.cur = vm.eff = f.ctx
        try:
            create(f.id, f.ctx.root.id)  # type: ignore[union-attr]
        except GuestTrap as e:
            vm.cur = vm.eff = prev
            vm.fail(str(e), "proxy_on_context_create")
            return False
        vm.cur = vm.eff = prev
        return True

    def _failed(self, f: _Filter, d: _Dir) -> int:
        f.bypass = True
        if f.plugin.config.failure_policy == "fail_open":
            return 0
        self._fail_stream(f, d)
        return 1

    def _fail_stream(self, f: _Filter, d: _Dir) -> None:
        self.host.count("wasmetool_failed_streams_total")
        if self.pending_local is None:
            self.pending_local = (f.index, 503, FAIL_DETAILS, b"", [], GRPC_UNAVAILABLE)
        self._flush_local()

    # ---------------------------------------------------------------- iteration
    def _deny(self, f: _Filter, d: _Dir) -> None:
        if f.plugin.config.failure_policy == "fail_open":
            f.bypass = True
            return
        self._fail_stream(f, d)

    def _headers_from(self, d: _Dir, start: int) -> None:
        chain = d.chain
        is_req = d.is_req
        hdrs = self.req_headers if is_req else self.resp_headers
        eos = 1 if d.hdr_eos else 0
        for i in range(start, len(chain)):
            f = chain[i]
            if f.bypass:
                continue
            if f.ctx is None:
                self._deny(f, d)
                if d.aborted or self.finished:
                    return
                continue
            vm = f.vm
            if not f.created and not self._create(f):
                r = self._failed(f, d)
            elif not vm.failed:                 # _call, inlined for headers
                fn = (f.ex.http_request if is_req else f.ex.http_response)[HDR]
                if fn is None:
                    r = 0
                else:
                    prev = vm.cur
                    vm.cur = vm.eff = f.ctx
                    self.in_call += 1
                    try:
                        r = fn(f.id, len(hdrs), eos)  # type: ignore[arg-type]
                    except GuestTrap as e:
                        vm.cur = vm.eff = prev
                        self.in_call -= 1
                        vm.fail(str(e), _CB_NAMES[is_req][HDR])
                        r = self._failed(f, d)
                    else:
                        vm.cur = vm.eff = prev
                        self.in_call -= 1
                        if self.pending_local is not None:
                            self._flush_local()
                            r = 1
            else:
                r = self._call(f, d, HDR, len(hdrs), eos)  # type: ignore[arg-type]
            if d.aborted or self.finished:
                return
            if r:
                d.stop = i
                d.kind = HDR
                return
            if is_req:
                f.ctx.req_released = True
            else:
                f.ctx.resp_released = True
        d.emitted = True
        self._emit_headers(d, hdrs, d.hdr_eos)  # type: ignore[arg-type]

    def _data_from(self, d: _Dir, start: int, chunk: bytearray, eos: bool) -> None:
        chain = d.chain
        is_req = d.is_req
        trailers_from = -1
        for i in range(start, len(chain)):
            if d.stop == i:
                if d.kind != DATA:
                    if d.buf is None:
                        d.buf = chunk
                    else:
                        d.buf += chunk
                    d.buf_eos = eos
                    return
                held = d.buf
                if held is not None:
                    held += chunk
                    chunk = held
                    if len(held) > self.host.limits.buffer_limit_bytes:
                        self._buffer_overflow(d, i)
                        return
                d.buf = None
                d.stop = -1
            f = chain[i]
            if f.bypass or f.ctx is None:
                continue
            vm = f.vm
            if f.created and not vm.failed:     # _call, inlined for body events
                fn = (f.ex.http_request if is_req else f.ex.http_response)[DATA]
                if fn is None:
                    continue    # no body callback: what _call would do, without the call
                d.cur = chunk
                d.cur_eos = eos
                prev = vm.cur
                vm.cur = vm.eff = f.ctx
                self.in_call += 1
                try:
                    r = fn(f.id, len(chunk), 1 if eos else 0)
                except GuestTrap as e:
                    vm.cur = vm.eff = prev
                    self.in_call -= 1
                    vm.fail(str(e), _CB_NAMES[is_req][DATA])
                    r = self._failed(f, d)
                else:
                    vm.cur = vm.eff = prev
                    self.in_call -= 1
                    if self.pending_local is not None:
                        self._flush_local()
                        r = 1
            else:
                d.cur = chunk
                d.cur_eos = eos
                r = self._call(f, d, DATA, len(chunk), 1 if eos else 0)
            d.cur = None
            if d.aborted or self.finished:
                return
            if eos and d.added_trailers is not None:
                # the filter added trailers: the body no longer ends the stream
                if d.is_req:
                    self.req_trailers = d.added_trailers
                else:
                    self.resp_trailers = d.added_trailers
                d.added_trailers = None
                eos = False
                trailers_from = i + 1
            if r:
                if len(chunk) > self.host.limits.buffer_limit_bytes:
                    self._buffer_overflow(d, i)
                    return
                d.stop = i
                d.kind = DATA
                d.buf = chunk
                d.buf_eos = eos
                if trailers_from == i + 1:      # its own trailers wait with its data
                    d.trl_held = True
                elif trailers_from >= 0:
                    self._trailers_from(d, trailers_from)
                return
        self._emit_data(d, bytes(chunk), eos)
        if trailers_from >= 0 and not (d.aborted or self.finished):
            self._trailers_from(d, trailers_from)

    def _buffer_overflow(self, d: _Dir, i: int) -> None:
        """A filter buffered more than the buffer limit: Envoy's 413 (request) or 500
        (response, if its headers are not sent yet; else a reset)."""
        d.buf = None
        d.stop = -1
        self.host.count("wasmetool_buffer_overflows_total")
        if self.pending_local is None:
            if d.is_req:
                self.close_after = True         # the rest of the body is never read
                self.pending_local = (d.chain[i].index, 413, b"request_payload_too_large",
                                      b"Payload Too Large", [], -1)
            else:
                self.pending_local = (d.chain[i].index, 500, b"response_payload_too_large",
                                      b"Internal Server Error", [], -1)
        self._flush_local()

    def _trailers_from(self, d: _Dir, start: int) -> None:
        chain = d.chain
        trls = self.req_trailers if d.is_req else self.resp_trailers
        i = start
        while i < len(chain):
            f = chain[i]
            if d.stop == i and d.kind != DATA:
                d.trl_held = True
                return
            if f.bypass or f.ctx is None:
                i += 1
                continue
            r = self._call(f, d, TRL, len(trls), 0)  # type: ignore[arg-type]
            if d.aborted or self.finished:
                return
            if not r and d.is_req:
                f.ctx.req_trl_released = True
            if d.stop == i:        # this filter was buffering data
                if r:
                    d.kind = TRL
                    d.trl_held = True
                    return
                held = d.buf
                d.buf = None
                d.stop = -1
                if held is not None:
                    self._data_from(d, i + 1, held, False)
                    if d.aborted or self.finished:
                        return
            elif r:
                d.stop = i
                d.kind = TRL
                d.trl_held = True
                return
            i += 1
        d.trl_held = False
        self._emit_trailers(d, trls)  # type: ignore[arg-type]

    def _resume(self, d: _Dir, i: int) -> None:
        if self.finished or d.aborted or d.stop != i:
            return
        kind = d.kind
        d.stop = -1
        buf, beos, trl = d.buf, d.buf_eos, d.trl_held
        d.buf = None
        d.trl_held = False
        ctx = d.chain[i].ctx
        if ctx is not None and kind != DATA:
            # Envoy 1.40 lets go of the headers (trailers) a filter held once it resumes
            if kind == TRL:
                if d.is_req:
                    ctx.req_trl_released = True
            elif d.is_req:
                ctx.req_released = True
            else:
                ctx.resp_released = True
        if kind == HDR:
            self._headers_from(d, i + 1)
            if buf is not None and not (d.aborted or self.finished):
                self._data_from(d, i, buf, beos)
            if trl and not (d.aborted or self.finished):
                self._trailers_from(d, i)
        elif kind == DATA:
            if buf is not None:
                self._data_from(d, i + 1, buf, beos)
            if trl and not (d.aborted or self.finished):
                self._trailers_from(d, i + 1)
        else:
            if buf is not None:
                self._data_from(d, i + 1, buf, False)
            if not (d.aborted or self.finished):
                self._trailers_from(d, i + 1)

    # ---------------------------------------------------------------- emission
    def _emit_headers(self, d: _Dir, hdrs: Headers, eos: bool) -> None:
        if d.is_req:
            self.cb.forward_request_headers(hdrs, eos)
        elif self.local_mode:
            self.local_headers = hdrs
            if eos:
                self._send_local_final()
        elif not ((hdrs and hdrs[0][0] == b":status") or any(k == b":status" for k, _v in hdrs)):
            # what Envoy's codec does with a response that lost :status
            d.aborted = True
            self.local_sent = True
            self.info.response_code_details = "missing required header: :status"
            body = b"missing required header: :status"
            self.cb.send_local_reply(502, _local_headers([], body), body)
        else:
            self.cb.send_response_headers(hdrs, eos)

    def _emit_data(self, d: _Dir, data: bytes, eos: bool) -> None:
        if not d.is_req and self.local_sent:
            return
        if d.is_req:
            self.cb.forward_request_data(data, eos)
        elif self.local_mode:
            if self.local_body is None:
                self.local_body = bytearray(data)
            else:
                self.local_body += data
            if eos:
                self._send_local_final()
        else:
            self.cb.send_response_data(data, eos)

    def _emit_trailers(self, d: _Dir, trls: Headers) -> None:
        if not d.is_req and self.local_sent:
            return
        if d.is_req:
            self.cb.forward_request_trailers(trls)
        elif self.local_mode:
            self._send_local_final()
        else:
            self.cb.send_response_trailers(trls)

    # ---------------------------------------------------------------- host-call side
    def continue_stream(self, ctx: StreamContext, stream_type: int) -> int:
        if stream_type == abi.STREAM_HTTP_REQUEST:
            d = self.req
        elif stream_type == abi.STREAM_HTTP_RESPONSE:
            d = self.resp
        elif stream_type == abi.STREAM_DOWNSTREAM:
            return abi.OK              # Envoy: no network callbacks here, nothing to do
        elif stream_type == abi.STREAM_UPSTREAM:
            return abi.UNIMPLEMENTED
        else:
            return abi.BAD_ARGUMENT
        pos = _position(d, ctx)
        self.host.dispatcher.call_soon(lambda: self._resume(d, pos))
        return abi.OK

    def close_stream(self, ctx: StreamContext, stream_type: int) -> int:
        if stream_type not in (abi.STREAM_HTTP_REQUEST, abi.STREAM_HTTP_RESPONSE):
            # Envoy: DOWNSTREAM/UPSTREAM from an HTTP filter answer OK and do nothing
            return abi.OK if stream_type <= abi.STREAM_UPSTREAM else abi.BAD_ARGUMENT
        self.host.dispatcher.call_soon(self._close_from_filter)
        return abi.OK

    def _close_from_filter(self) -> None:
        if self.finished:
            return
        self.req.aborted = self.resp.aborted = True
        self.cb.reset_stream()
        self._teardown(False)

    def send_local_response(self, ctx: StreamContext, status: int, details: bytes, body: bytes,
                            headers: Headers, grpc_status: int) -> int:
        if self.finished or self.local_sent or self.local_mode:
            return abi.OK
        if self.pending_local is None:
            self.pending_local = (ctx.index, status, details, body, headers, grpc_status)
            if not self.in_call:
                self.host.dispatcher.call_soon(self._flush_local)
        return abi.OK

    def _flush_local(self) -> None:
        pending = self.pending_local
        if pending is None or self.finished:
            return
        index, status, details, body, headers, grpc_status = pending
        self.pending_local = None
        if _is_grpc(self.req_headers):
            status, headers, body = _grpc_local_reply(status, headers, body, grpc_status)
        self.info.response_code_details = details.decode("utf-8", "replace")
        self.host.count("wasmetool_local_replies_total")
        self.req.aborted = True
        if self.resp.started:
            self.resp.aborted = True
            if not self.resp.emitted:
                self.local_sent = True
                self.cb.send_local_reply(status, _local_headers(headers, body), body)
            else:
                self.cb.reset_stream()
                self._teardown(False)
            return
        # through the encode path of the filters up to the one that replied
        self.local_mode = True
        chain = [f for f in self.filters[: index + 1] if f.ctx is not None][::-1]
        d = self.resp = _Dir(False, chain)
        d.started = True
        hdrs = [(b":status", str(status).encode())] + _local_headers(headers, body)
        self.resp_headers = hdrs
        d.hdr_eos = not body
        self._headers_from(d, 0)
        if body and not (d.aborted or self.finished):
            self._data_from(d, 0, bytearray(body), True)

    def _send_local_final(self) -> None:
        if self.local_sent:
            return
        self.local_sent = True
        hdrs = self.local_headers or []
        status = 200
        out = []
        for k, v in hdrs:
            if k == b":status":
                status = int(v) if v.isdigit() else 200
            elif not k.startswith(b":"):
                out.append((k, v))
        if self.close_after:
            out.insert(0, (b"connection", b"close"))
        body = self.local_body
        self.cb.send_local_reply(status, out, bytes(body) if body is not None else b"")

    # ---------------------------------------------------------------- failures elsewhere
    def on_vm_failed(self, ctx: StreamContext) -> None:
        """The VM behind one of our filters died outside a stream callback (e.g. in a root
        callback while this stream waited): apply the plugin's failure policy now."""
        if self.finished:
            return
        for d in (self.req, self.resp):
            if not d.started:
                continue
            pos = _position(d, ctx)
            if pos >= 0 and d.stop == pos:
                f = d.chain[pos]
                if f.bypass:
                    continue
                if self._failed(f, d) == 0 and not (d.aborted or self.finished):
                    self._resume(d, pos)
                return

    # ---------------------------------------------------------------- teardown
    def _teardown(self, completed: bool = False) -> None:
        """Envoy's order: every filter's log, then each filter's done and delete. A filter
        the stream never reached is created for its log (Envoy's Context::log), whether the
        stream completed or was reset (checked against Envoy 1.40)."""
        if self.finished:
            return
        self.finished = True
        self.info.end_time_ns = self.info.end_time_ns or _now_ns()
        filters = self.filters
        for f in filters:
            vm = f.vm
            if vm is None or vm.failed:
                continue
            if not f.created and not self._create(f):
                continue
            fn = f.ex.proxy_on_log
            if fn is not None:
                prev = vm.cur
                vm.cur = vm.eff = f.ctx
                try:
                    fn(f.id)
                except GuestTrap as e:
                    vm.cur = vm.eff = prev
                    vm.fail(str(e), "proxy_on_log")
                    continue
                vm.cur = vm.eff = prev
        for f in filters:
            vm = f.vm
            if vm is None:
                continue
            ctx = f.ctx
            if f.created and not vm.failed:
                ex = f.ex
                prev = vm.cur
                vm.cur = vm.eff = ctx
                name = "proxy_on_done"
                try:
                    if ex.proxy_on_done is not None:
                        ex.proxy_on_done(f.id)
                    name = "proxy_on_delete"
                    if ex.proxy_on_delete is not None:
                        ex.proxy_on_delete(f.id)
                except GuestTrap as e:
                    vm.cur = vm.eff = prev
                    vm.fail(str(e), name)
                vm.cur = vm.eff = prev
            ctx.deleted = True  # type: ignore[union-attr]
            ctx.owner = GONE  # type: ignore[union-attr]
            vm.contexts.pop(f.id, None)


_CB_NAMES = {
    True: {HDR: "proxy_on_request_headers", DATA: "proxy_on_request_body",
           TRL: "proxy_on_request_trailers"},
    False: {HDR: "proxy_on_response_headers", DATA: "proxy_on_response_body",
            TRL: "proxy_on_response_trailers"},
}


def _passes_data(chain: list[_Filter], is_req: bool) -> bool:
    """No filter of the chain would see body data (what _data_from does when nothing
    stopped): each is bypassed, denied, or created without a body callback."""
    for f in chain:
        if f.bypass or f.ctx is None:
            continue
        if f.created and (f.ex.http_request if is_req else f.ex.http_response)[DATA] is None:
            continue
        return False
    return True


def _position(d: _Dir, ctx: StreamContext) -> int:
    for i, f in enumerate(d.chain):
        if f.ctx is ctx:
            return i
    return -2


GRPC_UNAVAILABLE = 14


def _is_grpc(headers: Headers | None) -> bool:
    if not headers:
        return False
    for k, v in headers:
        if k == b"content-type":
            return v == b"application/grpc" or v.startswith((b"application/grpc+",
                                                             b"application/grpc;"))
    return False


def _grpc_local_reply(status: int, headers: Headers, body: bytes,
                      grpc_status: int) -> tuple[int, Headers, bytes]:
    """Envoy answers a gRPC request's local reply as a trailers-only gRPC response (its
    prepareLocalReply): content-type application/grpc replaces the filter's, a grpc-status
    the filter set is kept, and the body becomes grpc-message."""
    drop = (b"content-type", b"content-length", b"grpc-message") if body else (
        b"content-type", b"content-length")
    out = [(k, v) for k, v in headers if k not in drop]
    out.append((b"content-type", b"application/grpc"))
    if not any(k == b"grpc-status" for k, _ in out):
        code = grpc_status if 0 <= grpc_status <= 16 else HTTP_TO_GRPC.get(status, 2)
        out.append((b"grpc-status", str(code).encode()))
    if body:
        out.append((b"grpc-message", quote(body, safe=" !\"#$&'()*+,-./:;<=>?@[]^_`{|}~")
                    .encode()))
    return 200, out, b""


def _local_headers(headers: Headers, body: bytes) -> Headers:
    out = list(headers)
    if body:
        out.append((b"content-length", str(len(body)).encode()))
        if not any(k == b"content-type" for k, _ in headers):
            out.append((b"content-type", b"text/plain"))
    return out


_now_ns = time.time_ns
