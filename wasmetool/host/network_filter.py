"""The network (TCP) filter manager: downstream data through the chain in order, upstream
data in reverse order, as Envoy's read/write filters. Pause from a data callback keeps the
data (the filter is called again with the cumulative size when more arrives) until the
filter continues. Teardown order is Envoy's TCP order: done -> log -> delete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from wasmetool.host import abi
from wasmetool.host.contexts import GONE
from wasmetool.host.fastpath import GuestTrap

if TYPE_CHECKING:
    from wasmetool.host.contexts import StreamContext
    from wasmetool.host.plugin import PluginRuntime
    from wasmetool.host.state import HostServices
    from wasmetool.host.stream_info import StreamInfo


class ConnectionCallbacks(Protocol):
    def write_upstream(self, data: bytes, end_stream: bool) -> None: ...
    def write_downstream(self, data: bytes, end_stream: bool) -> None: ...
    def close(self) -> None: ...


class _NetFilter:
    __slots__ = ("plugin", "ctx", "vm", "ex", "id", "bypass", "index")

    def __init__(self, plugin: PluginRuntime, ctx: StreamContext | None, index: int) -> None:
        self.plugin = plugin
        self.ctx = ctx
        self.index = index
        self.bypass = False
        self.vm = ctx.vm if ctx is not None else None
        self.ex = ctx.vm.ex if ctx is not None else None
        self.id = ctx.id if ctx is not None else 0


class _Side:
    __slots__ = ("down", "stop", "held", "held_eos", "cur", "closed")

    def __init__(self, down: bool) -> None:
        self.down = down
        self.stop = -1
        self.held: bytearray | None = None
        self.held_eos = False
        self.cur: bytearray | None = None
        self.closed = False


class Connection:
    __slots__ = ("host", "info", "cb", "filters", "down", "up", "finished", "closing", "started")

    def __init__(self, host: HostServices, info: StreamInfo, callbacks: ConnectionCallbacks,
                 filters: list[_NetFilter]) -> None:
        self.host = host
        self.info = info
        self.cb = callbacks
        self.filters = filters
        self.down = _Side(True)
        self.up = _Side(False)
        self.finished = False
        self.closing = False
        self.started = False

    # host-call side ----------------------------------------------------------
    def get_map(self, map_type: int, ctx: object = None, write: bool = False) -> None:
        return None

    def get_buffer(self, buf_type: int) -> bytearray | None:
        side = self.down if buf_type == abi.BUF_DOWNSTREAM_DATA else (
            self.up if buf_type == abi.BUF_UPSTREAM_DATA else None)
        if side is None:
            return None
        return side.cur if side.cur is not None else side.held

    def continue_stream(self, ctx: StreamContext, stream_type: int) -> int:
        if stream_type == abi.STREAM_DOWNSTREAM:
            side = self.down
        elif stream_type == abi.STREAM_UPSTREAM:
            side = self.up
        else:       # HTTP stream types: Envoy answers OK and does nothing
            return abi.OK if stream_type <= abi.STREAM_HTTP_RESPONSE else abi.BAD_ARGUMENT
        self.host.dispatcher.call_soon(lambda: self._resume(side, ctx))
        return abi.OK

    def close_stream(self, ctx: StreamContext, stream_type: int) -> int:
        if stream_type not in (abi.STREAM_DOWNSTREAM, abi.STREAM_UPSTREAM):
            # HTTP stream types: Envoy answers OK and does nothing
            return abi.OK if stream_type <= abi.STREAM_HTTP_RESPONSE else abi.BAD_ARGUMENT
        self.host.dispatcher.call_soon(self._close)
        return abi.OK

    def send_local_response(self, ctx: StreamContext, *_args: object) -> int:
        return abi.BAD_ARGUMENT

    def on_vm_failed(self, ctx: StreamContext) -> None:
        if self.finished:
            return
        for f in self.filters:
            if f.ctx is ctx and not f.bypass:
                self._failed(f)
                if not self.closing:
                    for side in (self.down, self.up):
                        chain = self._chain(side)
                        if side.stop >= 0 and chain[side.stop] is f:
                            self._resume(side, ctx)

    # server entry points -------------------------------------------------------
    def on_new_connection(self) -> None:
        if self.started or self.finished:
            return
        self.started = True
        for f in self.filters:
            if f.ctx is None:
                self._deny(f)
            elif not f.bypass:
                self._call(f, "proxy_on_new_connection", ())
            if self.closing:
                return

    def downstream_data(self, data: bytes, end_stream: bool) -> None:
        if self.finished or self.closing:
            return
        self.info.bytes_received += len(data)
        self._data(self.down, 0, bytearray(data), end_stream)

    def upstream_data(self, data: bytes, end_stream: bool) -> None:
        if self.finished or self.closing:
            return
        self._data(self.up, 0, bytearray(data), end_stream)
        if end_stream:
            # Envoy reports the upstream's close on its end of stream (it sees no upstream
            # connection events): proxy_on_upstream_connection_close(ctx, UNKNOWN)
            self.upstream_closed()

    def downstream_closed(self, local: bool = False) -> None:
        """The client connection is gone: closed by the client (peer REMOTE) or, with
        ``local=True``, by the proxy itself, e.g. after the upstream closed (peer LOCAL, as
        Envoy's tcp_proxy). Runs the close callbacks, then done -> log -> delete."""
        if self.finished:
            return
        self.down.closed = True
        peer = abi.PEER_LOCAL if local else abi.PEER_REMOTE
        for f in self.filters:
            if f.ctx is not None and not f.bypass:
                self._call(f, "proxy_on_downstream_connection_close", (peer,))
        self._teardown()

    def upstream_closed(self) -> None:
        """The upstream connection is gone (Envoy reports its peer as UNKNOWN)."""
        if self.finished or self.up.closed:
            return
        self.up.closed = True
        for f in self.filters:
            if f.ctx is not None and not f.bypass:
                self._call(f, "proxy_on_upstream_connection_close", (abi.PEER_UNKNOWN,))

    # internals -----------------------------------------------------------------
    def _chain(self, side: _Side) -> list[_NetFilter]:
        return self.filters if side.down else self.filters[::-1]

    def _call(self, f: _NetFilter, name: str, args: tuple[int, ...]) -> int:
        vm = f.vm
        if vm is None:
            return 0
        if vm.failed:
            return self._failed(f)
        fn = getattr(f.ex, name)
        if fn is None:
            return 0
        prev = vm.cur
        vm.cur = vm.eff = f.ctx
        try:
            r = fn(f.id, *args)
        except GuestTrap as e:
            vm.cur = vm.eff = prev
            vm.fail(str(e), name)
            return self._failed(f)
        vm.cur = vm.eff = prev
        return r

    def _failed(self, f: _NetFilter) -> int:
        f.bypass = True
        if f.plugin.config.failure_policy == "fail_open":
            return 0
        self.host.count("wasmetool_failed_streams_total")
        self._close()
        return 1

    def _deny(self, f: _NetFilter) -> None:
        if f.plugin.config.failure_policy == "fail_open":
            f.bypass = True
        else:
            self._close()

    def _data(self, side: _Side, start: int, chunk: bytearray, eos: bool) -> None:
        chain = self._chain(side)
        name = "proxy_on_downstream_data" if side.down else "proxy_on_upstream_data"
        for i in range(start, len(chain)):
            if side.stop == i:
                held = side.held
                if held is not None:
                    held += chunk
                    chunk = held
                side.held = None
                side.stop = -1
            f = chain[i]
            if f.bypass or f.ctx is None:
                continue
            side.cur = chunk
            r = self._call(f, name, (len(chunk), 1 if eos else 0))
            side.cur = None
            if self.closing or self.finished:
                return
            if r:
                side.stop = i
                side.held = chunk
                side.held_eos = eos
                return
        if side.down:
            self.cb.write_upstream(bytes(chunk), eos)
        else:
            self.info.bytes_sent += len(chunk)
            self.cb.write_downstream(bytes(chunk), eos)

    def _resume(self, side: _Side, ctx: StreamContext) -> None:
        if self.finished or self.closing or side.stop < 0:
            return
        chain = self._chain(side)
        i = side.stop
        if chain[i].ctx is not ctx:
            return
        held, eos = side.held, side.held_eos
        side.stop = -1
        side.held = None
        self._data(side, i + 1, held if held is not None else bytearray(), eos)

    def _close(self) -> None:
        if self.closing or self.finished:
            return
        self.closing = True
        self.cb.close()

    def _teardown(self) -> None:
        if self.finished:
            return
        self.finished = True
        live = [f for f in self.filters if f.ctx is not None]
        for name in ("proxy_on_done", "proxy_on_log", "proxy_on_delete"):
            for f in live:
                if not f.vm.failed and getattr(f.ex, name) is not None:
                    self._plain(f, name)
        for f in live:
            f.ctx.deleted = True  # type: ignore[union-attr]
            f.ctx.owner = GONE  # type: ignore[union-attr]
            f.vm.contexts.pop(f.id, None)

    def _plain(self, f: _NetFilter, name: str) -> None:
        vm = f.vm
        prev = vm.cur
        vm.cur = vm.eff = f.ctx
        try:
            getattr(f.ex, name)(f.id)
        except GuestTrap as e:
            vm.cur = vm.eff = prev
            vm.fail(str(e), name)
            return
        vm.cur = vm.eff = prev
