"""What the runtime core asks of its surroundings: time, deferred calls, timers, HTTP and
gRPC callouts.

The server side implements :class:`Dispatcher` on its event loop; tests use
:class:`ManualDispatcher`, which has a manual clock and answers http calls with a
test-supplied function and gRPC streams through :class:`RecordedGrpcStream`.

gRPC: the runtime opens every call as a stream (``Dispatcher.grpc_stream``); a unary
call is a stream with one message sent with end_stream and a timeout.  The dispatcher
reports what the peer does through :class:`GrpcEvents` (never from inside the
``grpc_stream``/``send`` call itself: always later, from its loop), ending with exactly
one ``on_close(status, message)``; after ``cancel()`` it reports nothing more.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class HttpCallResponse:
    headers: Headers                     # includes :status
    body: bytes = b""
    trailers: Headers = field(default_factory=list)


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Dispatcher(Protocol):
    def monotonic_ns(self) -> int: ...
    def call_soon(self, fn: Callable[[], None]) -> None: ...
    def post(self, fn: Callable[[], None]) -> None:
        """``call_soon`` from any thread (work for this dispatcher's thread)."""
    def call_later(self, delay_s: float, fn: Callable[[], None]) -> TimerHandle: ...
    def has_cluster(self, name: str) -> bool: ...
    def http_call(self, cluster: str, headers: Headers, body: bytes, trailers: Headers,
                  timeout_ms: int,
                  on_done: Callable[[HttpCallResponse | None], None]) -> None: ...
    def grpc_stream(self, request: GrpcRequest, events: GrpcEvents) -> GrpcStreamHandle: ...


class GrpcEvents(Protocol):
    """What a gRPC stream's peer did, in order: initial metadata (at most once), messages,
    trailing metadata (at most once), then close with the gRPC status and message."""

    def on_initial_metadata(self, metadata: Headers) -> None: ...
    def on_message(self, message: bytes) -> None: ...
    def on_trailing_metadata(self, metadata: Headers) -> None: ...
    def on_close(self, status: int, message: bytes) -> None: ...


class GrpcStreamHandle(Protocol):
    """The runtime's end of one gRPC stream."""

    def send(self, message: bytes, end_stream: bool) -> None: ...
    def half_close(self) -> None: ...          # end the sending side (no more messages)
    def cancel(self) -> None: ...              # reset the stream; no more events


@dataclass(slots=True)
class GrpcRequest:
    """One gRPC call or stream as the plugin asked for it."""

    cluster: str
    service: str
    method: str
    metadata: Headers                     # the plugin's initial metadata
    timeout_ms: int | None                # None: a stream (no deadline); 0 for a call: none
    authority: str | None = None          # a GrpcService's envoy_grpc.authority, if any

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.method}"


HttpCallHandler = Callable[[str, Headers, bytes, Headers, int], "HttpCallResponse | None"]


class ManualTimer:
    __slots__ = ("when", "seq", "fn", "cancelled")

    def __init__(self, when: int, seq: int, fn: Callable[[], None]) -> None:
        self.when = when
        self.seq = seq
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: ManualTimer) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


class ManualClock:
    """The clock and queues of a test dispatcher (:class:`ManualDispatcher`, the
    emulators' ``VirtualDispatcher``): queued work runs in :meth:`run_pending`, timers
    fire when :meth:`_advance_to` moves the clock past them."""

    def __init__(self, start_ns: int) -> None:
        self.now_ns = start_ns
        self._soon: deque[Callable[[], None]] = deque()
        self._timers: list[ManualTimer] = []
        self._seq = itertools.count()

    # Dispatcher protocol -------------------------------------------------
    def monotonic_ns(self) -> int:
        return self.now_ns

    def call_soon(self, fn: Callable[[], None]) -> None:
        self._soon.append(fn)

    def post(self, fn: Callable[[], None]) -> None:
        """call_soon from any thread (deque.append is thread-safe); runs at the next pump."""
        self._soon.append(fn)

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> ManualTimer:
        timer = ManualTimer(self.now_ns + int(delay_s * 1e9), next(self._seq), fn)
        heapq.heappush(self._timers, timer)
        return timer

    # test controls --------------------------------------------------------
    def run_pending(self) -> int:
        """Run queued call_soon work (including work it queues); returns how many ran."""
        n = 0
        soon = self._soon
        while soon:
            soon.popleft()()
            n += 1
        return n

    def _advance_to(self, target: int) -> int:
        """Move the clock to ``target`` ns, firing due timers in order; returns how many fired."""
        fired = 0
        self.run_pending()
        while self._timers and self._timers[0].when <= target:
            timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self.now_ns = max(self.now_ns, timer.when)
            timer.fn()
            fired += 1
            self.run_pending()
        self.now_ns = target
        return fired


@dataclass(slots=True)
class RecordedHttpCall:
    cluster: str
    headers: Headers
    body: bytes
    trailers: Headers
    timeout_ms: int
    on_done: Callable[[HttpCallResponse | None], None]
    answered: bool = False

    def respond(self, response: HttpCallResponse | None) -> None:
        """Answer this call (None = failure/reset); the callback runs at the next run_pending()."""
        self.answered = True
        self.on_done(response)


class RecordedGrpcStream:
    """A gRPC call or stream a plugin opened under :class:`ManualDispatcher`.

    The test reads what the plugin sent (:attr:`request`, :attr:`sent`,
    :attr:`half_closed`, :attr:`cancelled`) and answers with :meth:`initial_metadata`,
    :meth:`message`, :meth:`trailing_metadata` and :meth:`close` (or :meth:`reply` for
    a whole unary answer); each answer reaches the plugin at the next run_pending().
    """

    def __init__(self, dispatcher: ManualDispatcher, request: GrpcRequest,
                 events: GrpcEvents) -> None:
        self.request = request
        self.sent: list[bytes] = []
        self.half_closed = False
        self.cancelled = False
        self.closed = False
        self._dispatcher = dispatcher
        self._events = events

    # GrpcStreamHandle (the plugin's side)
    def send(self, message: bytes, end_stream: bool) -> None:
        self.sent.append(message)
        if end_stream:
            self.half_closed = True

    def half_close(self) -> None:
        self.half_closed = True

    def cancel(self) -> None:
        self.cancelled = True

    # the test's side
    def _deliver(self, fn: Callable[[], None]) -> None:
        if self.closed:
            raise RuntimeError(f"gRPC stream {self.request.path} is closed already")

        def run() -> None:
            if not self.cancelled:
                fn()
        self._dispatcher.call_soon(run)

    def initial_metadata(self, metadata: Headers) -> None:
        self._deliver(lambda: self._events.on_initial_metadata(list(metadata)))

    def message(self, message: bytes) -> None:
        self._deliver(lambda: self._events.on_message(message))

    def trailing_metadata(self, metadata: Headers) -> None:
        self._deliver(lambda: self._events.on_trailing_metadata(list(metadata)))

    def close(self, status: int = 0, message: bytes = b"") -> None:
        self._deliver(lambda: self._events.on_close(status, message))
        self.closed = True

    def reply(self, message: bytes, status: int = 0, status_message: bytes = b"") -> None:
        """Answer a unary call (or end a stream) with one message and a status."""
        self.initial_metadata([])
        self.message(message)
        self.trailing_metadata([])
        self.close(status, status_message)


GrpcHandler = Callable[[RecordedGrpcStream], None]


class ManualDispatcher(ManualClock):
    """A deterministic dispatcher for tests: nothing happens until the test says so.

    * ``call_soon`` work runs in :meth:`run_pending` (the emulators call it after every step);
    * timers fire when :meth:`advance` moves the manual clock past them;
    * ``http_call`` is answered by ``http_handler(cluster, headers, body, trailers, timeout_ms)``
      if one was given (its answer is delivered through call_soon), else it is recorded in
      :attr:`http_calls` for the test to answer with ``RecordedHttpCall.respond``;
    * ``grpc_stream`` is recorded in :attr:`grpc_streams` as a :class:`RecordedGrpcStream`
      and handed to ``grpc_handler`` if one was given; the test answers through it.
    """

    def __init__(self, clusters: dict[str, str] | list[str] | None = None,
                 http_handler: HttpCallHandler | None = None,
                 start_ns: int | None = None,
                 grpc_handler: GrpcHandler | None = None) -> None:
        self.clusters = set(clusters or ())
        self.http_handler = http_handler
        self.grpc_handler = grpc_handler
        self.grpc_streams: list[RecordedGrpcStream] = []
        super().__init__(start_ns if start_ns is not None else time.monotonic_ns())
        self.http_calls: list[RecordedHttpCall] = []

    # Dispatcher protocol (the clock's part is ManualClock's) --------------
    def has_cluster(self, name: str) -> bool:
        return name in self.clusters

    def http_call(self, cluster: str, headers: Headers, body: bytes, trailers: Headers,
                  timeout_ms: int, on_done: Callable[[HttpCallResponse | None], None]) -> None:
        def deliver(resp: HttpCallResponse | None) -> None:
            self._soon.append(lambda: on_done(resp))

        call = RecordedHttpCall(cluster, list(headers), body, list(trailers), timeout_ms, deliver)
        self.http_calls.append(call)
        if self.http_handler is not None:
            call.respond(self.http_handler(cluster, headers, body, trailers, timeout_ms))

    def grpc_stream(self, request: GrpcRequest, events: GrpcEvents) -> RecordedGrpcStream:
        stream = RecordedGrpcStream(self, request, events)
        self.grpc_streams.append(stream)
        if self.grpc_handler is not None:
            self.grpc_handler(stream)
        return stream

    # test controls (run_pending is ManualClock's) ---------------------------
    def advance(self, seconds: float) -> int:
        """Move the clock forward, firing due timers in order; returns how many fired."""
        return self._advance_to(self.now_ns + int(seconds * 1e9))

    def pending_http_calls(self) -> list[RecordedHttpCall]:
        return [c for c in self.http_calls if not c.answered]

    def open_grpc_streams(self) -> list[RecordedGrpcStream]:
        """gRPC calls and streams neither closed by the test nor cancelled by the plugin."""
        return [s for s in self.grpc_streams if not s.closed and not s.cancelled]
