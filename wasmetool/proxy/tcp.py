"""The TCP proxy of `wasmetool run --tcp`: network filters between a client and an upstream.

Each accepted connection gets a Connection from the runtime core (the network filter
chain) and one upstream connection; the chain decides what bytes go each way. Half-close
is forwarded (a FIN from one side becomes end_stream), as Envoy's tcp_proxy does.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Any, Protocol

from wasmetool.host.plugin_file import HttpTarget
from wasmetool.host.stream_info import StreamInfo
from wasmetool.proxy.stats import ServerStats

log = logging.getLogger(__name__)
_connection_ids = itertools.count(1)
CONNECT_TIMEOUT_S = 5.0


class ConnectionLike(Protocol):
    def on_new_connection(self) -> None: ...
    def downstream_data(self, data: bytes, end_stream: bool) -> None: ...
    def upstream_data(self, data: bytes, end_stream: bool) -> None: ...
    def downstream_closed(self, local: bool = False) -> None: ...
    def upstream_closed(self) -> None: ...


ConnectionFactory = Callable[[StreamInfo, Any], ConnectionLike]


class PassthroughConnection:
    """The filter chain when no network filter is configured."""

    __slots__ = ("cb",)

    def __init__(self, info: StreamInfo, callbacks: Any) -> None:
        self.cb = callbacks

    def on_new_connection(self) -> None:
        return None

    def downstream_data(self, data: bytes, end_stream: bool) -> None:
        self.cb.write_upstream(data, end_stream)

    def upstream_data(self, data: bytes, end_stream: bool) -> None:
        self.cb.write_downstream(data, end_stream)

    def downstream_closed(self, local: bool = False) -> None:
        return None

    def upstream_closed(self) -> None:
        return None


class _UpstreamSide(asyncio.Protocol):
    def __init__(self, owner: TcpDownstream) -> None:
        self.owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.owner.upstream_connected(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.owner.from_upstream(data, False)

    def eof_received(self) -> bool:
        self.owner.from_upstream(b"", True)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.upstream_lost()


class TcpDownstream(asyncio.Protocol):
    """One client connection (and ConnectionCallbacks for the network filter chain)."""

    def __init__(self, server: TcpProxyServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.upstream: asyncio.Transport | None = None
        self.pending: list[bytes] = []
        self.pending_eof = False
        self.connection: ConnectionLike | None = None
        self.info: StreamInfo | None = None
        self.down_open = True
        self.up_open = True
        self.closed = False
        self.up_eof_sent = False
        self.down_eof_sent = False
        self.client_eof = False      # the client half-closed (FIN received)
        self.upstream_eof = False    # the upstream half-closed

    # ------------------------------------------------------------- downstream
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        stats = self.server.stats
        stats.tcp_cx_total += 1
        stats.tcp_cx_active += 1
        self.server.connections.add(self)
        peer = transport.get_extra_info("peername") or ("", 0)
        local = transport.get_extra_info("sockname") or ("", 0)
        self.info = StreamInfo((peer[0], peer[1]), (local[0], local[1]),
                               next(_connection_ids), "TCP")
        self.info.cluster_name = "upstream"
        target = self.server.target
        up = _UpstreamSide(self)
        future = asyncio.ensure_future(
            self.server.loop.create_connection(lambda: up, target.host, target.port))
        timer = self.server.loop.call_later(CONNECT_TIMEOUT_S, future.cancel)

        def done(fut: asyncio.Future[object]) -> None:
            timer.cancel()
            if fut.cancelled() or fut.exception() is not None:
                self.server.stats.upstream_cx_connect_fail += 1
                self.up_open = False
                self._guard(self._upstream_failed)

        future.add_done_callback(done)
        self.connection = self.server.connection_factory(self.info, self)
        self._guard(self.connection.on_new_connection)

    def data_received(self, data: bytes) -> None:
        self.server.stats.tcp_bytes_received += len(data)
        if self.info is not None:
            self.info.bytes_received += len(data)
        connection = self.connection
        if connection is not None:
            self._guard(lambda: connection.downstream_data(data, False))

    def eof_received(self) -> bool:
        self.client_eof = True
        connection = self.connection
        if connection is not None:
            self._guard(lambda: connection.downstream_data(b"", True))
        self._close_if_both_ended()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        # closed by the proxy itself (both directions ended, the upstream went away, a
        # filter closed it): Envoy's peer LOCAL; else the client closed or reset: REMOTE
        local = self.closed
        self.down_open = False
        self.transport = None
        self.server.stats.tcp_cx_active -= 1
        self.server.connections.discard(self)
        connection = self.connection
        self.close()
        if connection is not None:  # ends the filter chain: done, log, delete
            self._guard(lambda: connection.downstream_closed(local))
            self.connection = None  # no reference cycle with the chain's callbacks

    # ------------------------------------------------------------- upstream
    def upstream_connected(self, transport: asyncio.Transport) -> None:
        if self.closed:
            transport.close()
            return
        self.upstream = transport
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        if self.info is not None:
            if peer:
                self.info.upstream_address = (peer[0], peer[1])
            if local:
                self.info.upstream_local_address = (local[0], local[1])
        if self.pending:
            transport.write(b"".join(self.pending))
            self.pending = []
        if self.pending_eof and transport.can_write_eof():
            transport.write_eof()

    def from_upstream(self, data: bytes, end_stream: bool) -> None:
        connection = self.connection
        if connection is not None:
            self._guard(lambda: connection.upstream_data(data, end_stream))
        if end_stream:
            self.upstream_eof = True
            self._close_if_both_ended()

    def _close_if_both_ended(self) -> None:
        """Both directions ended (each side sent its FIN): the proxy closes both
        connections, as Envoy's tcp_proxy does; the client's close is then LOCAL."""
        if self.client_eof and self.upstream_eof:
            self.close()

    def upstream_lost(self) -> None:
        self.up_open = False
        self.upstream = None
        connection = self.connection
        if connection is not None:
            self._guard(connection.upstream_closed)
        self.close()

    def _upstream_failed(self) -> None:
        connection = self.connection
        if connection is not None:
            connection.upstream_closed()
        self.close()

    # ------------------------------------------------------------- ConnectionCallbacks
    def write_upstream(self, data: bytes, end_stream: bool) -> None:
        upstream = self.upstream
        if upstream is None:
            if data:
                self.pending.append(data)
            if end_stream:
                self.pending_eof = True
            return
        if data:
            upstream.write(data)
        if end_stream and not self.up_eof_sent and upstream.can_write_eof():
            self.up_eof_sent = True
            upstream.write_eof()

    def write_downstream(self, data: bytes, end_stream: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        if data:
            self.server.stats.tcp_bytes_sent += len(data)
            if self.info is not None:
                self.info.bytes_sent += len(data)
            transport.write(data)
        if end_stream and not self.down_eof_sent and transport.can_write_eof():
            self.down_eof_sent = True
            transport.write_eof()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        if self.upstream is not None:
            self.upstream.close()

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:
            log.exception("internal error in the network filter chain; closing the connection")
            if self.transport is not None:
                self.transport.abort()
            if self.upstream is not None:
                self.upstream.abort()
            self.closed = True


class TcpProxyServer:
    def __init__(self, loop: asyncio.AbstractEventLoop, connection_factory: ConnectionFactory,
                 target: HttpTarget, stats: ServerStats) -> None:
        self.loop = loop
        self.connection_factory = connection_factory
        self.target = target
        self.stats = stats
        self.connections: set[TcpDownstream] = set()
        self.server: asyncio.base_events.Server | None = None

    async def listen(self, host: str, port: int, reuse_port: bool = False) -> tuple[str, int]:
        """Listen; with ``reuse_port`` beside the other workers' sockets on the same port."""
        self.server = await self.loop.create_server(lambda: TcpDownstream(self), host, port,
                                                    backlog=1024, reuse_address=True,
                                                    reuse_port=True if reuse_port else None)
        sockname = self.server.sockets[0].getsockname()
        return sockname[0], sockname[1]

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.close()
