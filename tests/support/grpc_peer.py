"""A real gRPC server (grpcio) on 127.0.0.1 for the filters' gRPC callouts.

Service ``test.Echo``, raw bytes in and out (no protobuf schema needed: a filter sends
whatever bytes it likes as the message), methods:

* ``Unary``    unary: answers ``echo:<request>``; sends initial metadata ``x-init: i`` and
               trailing metadata ``x-trail: t``.
* ``Empty``    unary: answers an empty message.
* ``Meta``     unary: answers the request metadata it received as ``k=v;...`` (sorted,
               grpcio's own keys left out) and ``deadline=yes|past|no``.
* ``Fail``     unary: fails with PERMISSION_DENIED "nope" and trailing metadata ``x-trail: f``.
* ``Slow``     unary: answers ``late`` after 3 s (for timeouts and cancel); the server
               does not check deadlines itself.
* ``Server``   server stream: ``one``, ``two``, ``three``, with initial and trailing metadata.
* ``Bidi``     bidi: answers ``re:<m>`` to every message; ends when the client half-closes.
* ``Collect``  client stream: answers the messages joined with ``+`` once the client
               half-closes.

Any other method answers UNIMPLEMENTED (grpcio's own behaviour).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

SERVICE = "test.Echo"
# metadata grpcio adds or that vary from run to run: not reported by Meta
_OWN_KEYS = {"user-agent", "grpc-accept-encoding", "grpc-encoding"}


@dataclass
class GrpcPeer:
    port: int
    server: Any = None

    def stop(self) -> None:
        """Stop serving now (open calls are cancelled, the port closes)."""
        self.server.stop(grace=None).wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _handlers() -> Any:
    import grpc

    def unary(request: bytes, context: Any) -> bytes:
        context.send_initial_metadata((("x-init", "i"),))
        context.set_trailing_metadata((("x-trail", "t"),))
        return b"echo:" + request

    def empty(request: bytes, context: Any) -> bytes:
        return b""

    def meta(request: bytes, context: Any) -> bytes:
        items = sorted(f"{k}={v}" for k, v in context.invocation_metadata()
                       if k not in _OWN_KEYS)
        remaining = context.time_remaining()
        items.append("deadline=" + ("no" if remaining is None else
                                    "past" if remaining <= 0 else "yes"))
        return ";".join(items).encode()

    def fail(request: bytes, context: Any) -> bytes:
        context.set_trailing_metadata((("x-trail", "f"),))
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "nope")
        return b""  # not reached

    def slow(request: bytes, context: Any) -> bytes:
        end = time.monotonic() + 3.0
        while time.monotonic() < end and context.is_active():
            time.sleep(0.02)
        return b"late"

    def server_stream(request: bytes, context: Any) -> Iterator[bytes]:
        context.send_initial_metadata((("x-init", "s"),))
        context.set_trailing_metadata((("x-trail", "s"),))
        yield from (b"one", b"two", b"three")

    def bidi(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
        for m in requests:
            yield b"re:" + m

    def collect(requests: Iterator[bytes], context: Any) -> bytes:
        return b"+".join(requests)

    return grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Empty": grpc.unary_unary_rpc_method_handler(empty),
        "Meta": grpc.unary_unary_rpc_method_handler(meta),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
        "Server": grpc.unary_stream_rpc_method_handler(server_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Collect": grpc.stream_unary_rpc_method_handler(collect),
    })


@contextlib.contextmanager
def run_grpc_peer(tls_cert: tuple[bytes, bytes] | None = None) -> Iterator[GrpcPeer]:
    """Start the server on a free 127.0.0.1 port; stop it on exit. ``tls_cert`` =
    (key PEM, certificate PEM) serves TLS (h2 with ALPN) instead of h2c."""
    import grpc

    # No deadline checks in the server: a call past its deadline is ended by the proxy
    # alone (a server check would race with the proxy's own timer).
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                         options=[("grpc.so_reuseport", 0), ("grpc.enable_deadline_checking", 0)])
    server.add_generic_rpc_handlers((_handlers(),))
    if tls_cert is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([tls_cert]))
    server.start()
    try:
        yield GrpcPeer(port, server)
    finally:
        server.stop(grace=None)


@contextlib.contextmanager
def run_silent_peer() -> Iterator[GrpcPeer]:
    """A TCP server on 127.0.0.1 that accepts connections, reads, and never answers: a
    gRPC call to it can only end by the proxy's own timeout (a real gRPC server would race
    the proxy's timer with its own deadline check)."""
    import socket
    import threading

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _addr = listener.accept()
            except OSError:
                continue
            conn.setblocking(False)
            conns.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield GrpcPeer(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in conns:
            conn.close()
        listener.close()
