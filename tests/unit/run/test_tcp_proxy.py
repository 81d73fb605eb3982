"""The TCP proxy of `wasmetool run --tcp`: who closes the client connection, and when.

Envoy's tcp_proxy closes both connections once each side has sent its FIN, and reports
that close to the network filters as LOCAL; a client that resets first is REMOTE. The
filter chain here is a recorder, so what is tested is the server's half of the contract.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from wasmetool.host.plugin_file import parse_tcp_address
from wasmetool.host.stream_info import StreamInfo
from wasmetool.proxy.stats import ServerStats
from wasmetool.proxy.tcp import TcpProxyServer


class Recorder:
    def __init__(self, info: StreamInfo, callbacks: Any) -> None:
        self.cb = callbacks
        self.events: list[str] = []
        self.closed = asyncio.Event()

    def on_new_connection(self) -> None:
        self.events.append("new")

    def downstream_data(self, data: bytes, end_stream: bool) -> None:
        self.events.append(f"down:{data.decode()}:{int(end_stream)}")
        self.cb.write_upstream(data, end_stream)

    def upstream_data(self, data: bytes, end_stream: bool) -> None:
        self.events.append(f"up:{data.decode()}:{int(end_stream)}")
        self.cb.write_downstream(data, end_stream)

    def downstream_closed(self, local: bool = False) -> None:
        self.events.append("closed:local" if local else "closed:remote")
        self.closed.set()

    def upstream_closed(self) -> None:
        self.events.append("upstream_closed")


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    data = await reader.read()            # until the proxy forwards the client's FIN
    writer.write(b"echo:" + data)
    await writer.drain()
    writer.close()


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()
    writer.close()


async def _through_proxy(handler: Any, client: Any) -> tuple[list[str], bytes]:
    upstream = await asyncio.start_server(handler, "127.0.0.1", 0)
    up_port = upstream.sockets[0].getsockname()[1]
    recorders: list[Recorder] = []

    def factory(info: StreamInfo, callbacks: Any) -> Recorder:
        recorders.append(Recorder(info, callbacks))
        return recorders[-1]

    loop = asyncio.get_running_loop()
    proxy = TcpProxyServer(loop, factory, parse_tcp_address(f"127.0.0.1:{up_port}", "x"),
                           ServerStats())
    _, port = await proxy.listen("127.0.0.1", 0)
    try:
        reply = await client(port)
        await asyncio.wait_for(recorders[0].closed.wait(), 5)
    finally:
        proxy.close()
        upstream.close()
    return recorders[0].events, reply


async def _half_close(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hi")
    writer.write_eof()
    reply = await reader.read()           # the proxy's FIN ends the reply
    writer.close()
    return reply


async def _reset(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hi")
    await writer.drain()
    await asyncio.sleep(0.1)
    sock = writer.get_extra_info("socket")      # linger 0: close sends RST, not FIN
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
    return b""


def test_both_sides_ended_the_proxy_closes_the_client_locally() -> None:
    events, reply = asyncio.run(_through_proxy(_echo, _half_close))
    assert reply == b"echo:hi"
    # the echo's data and FIN may arrive together or apart
    assert events[:3] == ["new", "down:hi:0", "down::1"]
    assert "".join(e[3:-2] for e in events if e.startswith("up:")) == "echo:hi"
    assert events[-2].startswith("up:") and events[-2].endswith(":1")
    assert events[-1] == "closed:local"


def test_a_client_that_resets_first_is_remote() -> None:
    events, _ = asyncio.run(_through_proxy(_hold, _reset))
    assert events == ["new", "down:hi:0", "closed:remote"]
