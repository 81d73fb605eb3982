"""wasmetool/proxy/grpc_client.py against a real grpcio server: HTTP/2 flow control with
messages larger than the windows, many calls on one connection, a peer that goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.grpc_peer import GrpcPeer, run_grpc_peer
from wasmetool.host.dispatch import GrpcRequest
from wasmetool.proxy.grpc_client import GrpcClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def peer() -> Iterator[GrpcPeer]:
    with run_grpc_peer() as p:
        yield p


class Recorder:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.events: list[tuple[str, object]] = []
        self.closed: asyncio.Future[tuple[int, bytes]] = loop.create_future()

    def on_initial_metadata(self, metadata: list[tuple[bytes, bytes]]) -> None:
        self.events.append(("M", [k for k, _ in metadata]))

    def on_message(self, message: bytes) -> None:
        self.events.append(("R", message))

    def on_trailing_metadata(self, metadata: list[tuple[bytes, bytes]]) -> None:
        self.events.append(("T", dict(metadata)))

    def on_close(self, status: int, message: bytes) -> None:
        self.closed.set_result((status, message))

    def messages(self) -> list[bytes]:
        return [m for kind, m in self.events if kind == "R"]  # type: ignore[misc]


def _request(method: str, timeout_ms: int | None = 10_000) -> GrpcRequest:
    return GrpcRequest("grpc", "test.Echo", method, [(b"x-md", b"v")], timeout_ms)


def test_large_messages_both_ways_pass_the_flow_control_windows(peer: GrpcPeer) -> None:
    big = [bytes([65 + i]) * 300_000 for i in range(3)]     # each > the 64 KiB window

    async def main() -> list[bytes]:
        loop = asyncio.get_running_loop()
        client = GrpcClient(loop, "grpc", "127.0.0.1", peer.port)
        rec = Recorder(loop)
        stream = client.open(_request("Bidi", None), rec)
        for i, m in enumerate(big):
            stream.send(m, i == len(big) - 1)
        assert await asyncio.wait_for(rec.closed, 20) == (0, b"via_upstream")
        client.close()
        return rec.messages()

    assert asyncio.run(main()) == [b"re:" + m for m in big]


def test_many_concurrent_calls_share_one_connection(peer: GrpcPeer) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        client = GrpcClient(loop, "grpc", "127.0.0.1", peer.port)
        recs = [Recorder(loop) for _ in range(20)]
        for i, rec in enumerate(recs):
            client.open(_request("Unary"), rec).send(str(i).encode(), True)
        conn = client.conn
        results = await asyncio.wait_for(asyncio.gather(*(r.closed for r in recs)), 20)
        assert all(status == 0 for status, _ in results)
        assert [r.messages() for r in recs] == [[b"echo:" + str(i).encode()]
                                               for i in range(20)]
        assert client.conn is conn                          # no second connection
        client.close()

    asyncio.run(main())


def test_a_peer_that_goes_away_fails_open_streams_and_later_calls() -> None:
    async def main(peer: GrpcPeer, stop: asyncio.Event) -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        client = GrpcClient(loop, "grpc", "127.0.0.1", peer.port)
        rec = Recorder(loop)
        client.open(_request("Bidi", None), rec).send(b"a", False)
        while not rec.messages():
            await asyncio.sleep(0.01)
        stop.set()
        first, _ = await asyncio.wait_for(rec.closed, 20)
        again = Recorder(loop)
        client.open(_request("Unary"), again).send(b"x", True)
        second, message = await asyncio.wait_for(again.closed, 20)
        client.close()
        assert b"upstream connect error" in message
        return first, second

    with run_grpc_peer() as peer:
        stop = asyncio.Event()

        async def run() -> tuple[int, int]:
            task = asyncio.ensure_future(main(peer, stop))
            await stop.wait()
            await asyncio.get_running_loop().run_in_executor(None, peer.stop)
            return await task

        first, second = asyncio.run(run())
    assert first in (1, 14)           # cancelled by the server's shutdown, or reset
    assert second == 14               # nobody listens any more: UNAVAILABLE


def test_https_cluster_speaks_h2_over_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.registry import make_test_ca

    ca = make_test_ca(tmp_path / "ca")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_file))    # trust the throw-away CA

    async def main(port: int) -> tuple[tuple[int, bytes], list[bytes]]:
        loop = asyncio.get_running_loop()
        client = GrpcClient(loop, "grpc", "127.0.0.1", port, tls=True)
        rec = Recorder(loop)
        client.open(_request("Unary"), rec).send(b"secret", True)
        closed = await asyncio.wait_for(rec.closed, 20)
        client.close()
        return closed, rec.messages()

    with run_grpc_peer((ca.key_file.read_bytes(), ca.cert_file.read_bytes())) as peer:
        closed, messages = asyncio.run(main(peer.port))
    assert closed == (0, b"via_upstream") and messages == [b"echo:secret"]
