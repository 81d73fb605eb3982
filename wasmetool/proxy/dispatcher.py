"""The asyncio implementation of the runtime core's Dispatcher (wasmetool/host/dispatch.py)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from wasmetool.host.dispatch import GrpcEvents, GrpcRequest, HttpCallResponse
from wasmetool.proxy.grpc_client import GrpcClient, GrpcStream
from wasmetool.proxy.stats import ServerStats
from wasmetool.proxy.upstream import Headers, UpstreamRequest, UpstreamSink

log = logging.getLogger(__name__)


class Pool(Protocol):
    def acquire(self, sink: UpstreamSink) -> UpstreamRequest: ...
    def close(self) -> None: ...


UPSTREAM_FAILURE_BODY = b"upstream connect error or disconnect/reset before headers. reset reason: "


def _guarded(fn: Callable[[], None]) -> None:
    """Deferred work of the runtime core: a bug there is logged, the server keeps serving."""
    try:
        fn()
    except Exception:
        log.exception("internal error in deferred work of the runtime core")


def local_reply(status: int, body: bytes) -> HttpCallResponse:
    return HttpCallResponse([(b":status", str(status).encode()),
                             (b"content-length", str(len(body)).encode()),
                             (b"content-type", b"text/plain")], body, [])


class HttpCall:
    """One proxy_http_call in flight: collects the response, enforces the timeout."""

    __slots__ = ("on_done", "request", "timer", "headers", "body", "trailers", "finished",
                 "stats", "sent_ns")

    def __init__(self, on_done: Callable[[HttpCallResponse | None], None],
                 stats: ServerStats) -> None:
        self.on_done = on_done
        self.request: UpstreamRequest | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.headers: Headers = []
        self.body: list[bytes] = []
        self.trailers: Headers = []
        self.finished = False
        self.stats = stats
        self.sent_ns = 0

    def _finish(self, response: HttpCallResponse | None, failed: bool = False) -> None:
        if self.finished:
            return
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()
        if failed or response is None:
            self.stats.http_call_failure += 1
        self.on_done(response)

    def timeout(self) -> None:
        """As Envoy's async client: its router answers 504 "upstream request timeout"."""
        self.timer = None
        if self.request is not None:
            self.request.abandon(self)
        self._finish(local_reply(504, b"upstream request timeout"), failed=True)

    def rebind_upstream(self, request: UpstreamRequest) -> None:
        self.request = request

    # UpstreamSink
    def on_upstream_headers(self, headers: Headers, end_stream: bool) -> None:
        # As Envoy's router, the time the upstream took, last among the response headers.
        elapsed_ms = (time.monotonic_ns() - self.sent_ns) // 1_000_000
        headers.append((b"x-envoy-upstream-service-time", str(elapsed_ms).encode()))
        self.headers = headers
        if end_stream:
            self._finish(HttpCallResponse(headers, b"", []))

    def on_upstream_data(self, data: bytes, end_stream: bool) -> None:
        if data:
            self.body.append(data)
        if end_stream:
            self._finish(HttpCallResponse(self.headers, b"".join(self.body), []))

    def on_upstream_last_data(self, data: bytes) -> None:
        self.on_upstream_data(data, True)

    def on_upstream_trailers(self, trailers: Headers) -> None:
        self._finish(HttpCallResponse(self.headers, b"".join(self.body), trailers))

    def on_upstream_failure(self, reason: str, response_started: bool) -> None:
        if response_started:
            self._finish(None)
            return
        # Envoy's async client answers an unreachable cluster with its router's local reply.
        self._finish(local_reply(503, UPSTREAM_FAILURE_BODY + reason.encode()), failed=True)

    def on_upstream_flush(self) -> None:
        return None

    def internal_error(self) -> None:
        self._finish(None)


class AsyncioDispatcher:
    """Time, deferred work, timers, http_call and gRPC streams on one asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, clusters: dict[str, Pool],
                 stats: ServerStats) -> None:
        self.loop = loop
        self.clusters = clusters
        self.stats = stats
        self.thread_id = threading.get_ident()     # the loop's thread: made on it
        self.grpc_clients: dict[str, GrpcClient] = {}

    def grpc_stream(self, request: GrpcRequest, events: GrpcEvents) -> GrpcStream:
        """A gRPC call or stream over HTTP/2 to the cluster (one connection per cluster)."""
        client = self.grpc_clients.get(request.cluster)
        if client is None:
            target: Any = getattr(self.clusters[request.cluster], "target", None)
            client = GrpcClient(self.loop, request.cluster, target.host, target.port,
                                tls=bool(target.tls))
            self.grpc_clients[request.cluster] = client
        self.stats.grpc_call_total += 1
        return client.open(request, events)

    def close(self) -> None:
        for client in self.grpc_clients.values():
            client.close()
        self.grpc_clients.clear()

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def call_soon(self, fn: Callable[[], None]) -> None:
        self.loop.call_soon(_guarded, fn)

    def post(self, fn: Callable[[], None]) -> None:
        if threading.get_ident() == self.thread_id:
            self.loop.call_soon(_guarded, fn)
        else:       # from another worker's thread (a shared queue it enqueued to)
            self.loop.call_soon_threadsafe(_guarded, fn)

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> asyncio.TimerHandle:
        return self.loop.call_later(max(delay_s, 0.0), _guarded, fn)

    def has_cluster(self, name: str) -> bool:
        return name in self.clusters

    def http_call(self, cluster: str, headers: Headers, body: bytes, trailers: Headers,
                  timeout_ms: int, on_done: Callable[[HttpCallResponse | None], None]) -> None:
        self.stats.http_call_total += 1
        call = HttpCall(on_done, self.stats)
        pool = self.clusters.get(cluster)
        if pool is None:
            self.loop.call_soon(call._finish, None)
            return
        if timeout_ms > 0:
            call.timer = self.loop.call_later(timeout_ms / 1000.0, call.timeout)
        extra: Headers = []
        if body and not any(name == b"content-length" for name, _ in headers):
            extra.append((b"content-length", str(len(body)).encode()))
        # What Envoy's async client adds to the plugin's headers.
        extra.append((b"x-envoy-internal", b"true"))
        if timeout_ms > 0:
            extra.append((b"x-envoy-expected-rq-timeout-ms", str(timeout_ms).encode()))
        headers = [*headers, *extra]
        call.sent_ns = time.monotonic_ns()
        request = pool.acquire(call)
        call.request = request
        try:
            request.send_headers(headers, not body and not trailers)
            if body:
                request.send_data(body, not trailers)
            if trailers:
                request.send_trailers(trailers)
        except ValueError:  # CR/LF in a header the plugin gave
            request.abandon(call)
            self.loop.call_soon(call._finish, None)
