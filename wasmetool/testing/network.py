"""TcpEmulator: run TCP connections through network filters with no sockets."""

from __future__ import annotations

from wasmetool.host.stream_info import StreamInfo
from wasmetool.testing.root import HostEmulator, _b
from wasmetool.testing.trace import TraceEvent


class TcpSession:
    def __init__(self, emu: TcpEmulator, info: StreamInfo | None = None) -> None:
        self.emu = emu
        self.upstream = b""          # what the filters let through to the upstream
        self.downstream = b""        # what the filters let through back to the client
        self.upstream_end = False
        self.downstream_end = False
        self.closed = False
        self.info = info or StreamInfo(("127.0.0.1", 40000), ("127.0.0.1", 9000), 1,
                                       protocol="", start_time_ns=emu.time.wall_ns())
        if emu.properties and self.info.filter_state is None:
            self.info.filter_state = dict(emu.properties)
        self.conn = emu.host.new_connection(self.info, self)
        self.conn.on_new_connection()
        emu.pump()

    # ConnectionCallbacks
    def write_upstream(self, data: bytes, end_stream: bool) -> None:
        self.upstream += data
        self.upstream_end = end_stream

    def write_downstream(self, data: bytes, end_stream: bool) -> None:
        self.downstream += data
        self.downstream_end = end_stream

    def close(self) -> None:
        self.closed = True

    # what the filters did
    @property
    def trace(self) -> list[TraceEvent]:
        """The trace events of this connection's contexts (needs trace=True, the default)."""
        tracer = self.emu.tracer
        return [] if tracer is None else tracer.of_filters(self.conn.filters)

    @property
    def actions(self) -> list[tuple[str, str]]:
        """(callback, action) for on_new_connection and each data callback, in order."""
        return [(e.name, e.action) for e in self.trace if e.action is not None]

    @property
    def paused(self) -> bool:
        """A filter holds data in either direction."""
        return any(side.stop >= 0 for side in (self.conn.down, self.conn.up))

    # driving
    def client_sends(self, data: bytes | str, end_stream: bool = False) -> TcpSession:
        self.conn.downstream_data(_b(data), end_stream)
        self.emu.pump()
        return self

    def upstream_sends(self, data: bytes | str, end_stream: bool = False) -> TcpSession:
        self.conn.upstream_data(_b(data), end_stream)
        self.emu.pump()
        return self

    def upstream_closes(self, close_client: bool = True) -> TcpSession:
        """The upstream connection closes (after an end of stream, if it sent one); like
        Envoy's tcp_proxy the proxy then closes the client connection itself (peer LOCAL),
        unless close_client=False."""
        self.conn.upstream_closed()
        if close_client:
            self.conn.downstream_closed(local=True)
            self.closed = True
        self.emu.pump()
        return self

    def client_closes(self) -> TcpSession:
        self.conn.downstream_closed()
        self.emu.pump()
        return self


class TcpEmulator(HostEmulator):
    kind = "network"

    def connect(self, info: StreamInfo | None = None) -> TcpSession:
        return TcpSession(self, info)
