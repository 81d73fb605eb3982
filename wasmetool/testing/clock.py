"""The emulators' dispatcher: a virtual clock, deferred work, and http calls the test answers.

Nothing happens on its own: queued work runs when the emulator pumps (after every step),
timers (ticks, http call timeouts) fire when :meth:`VirtualDispatcher.advance` moves the
clock past them. Time starts at a fixed value so runs repeat exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wasmetool.host import abi
from wasmetool.host.dispatch import HttpCallResponse, ManualClock, ManualTimer

Headers = list[tuple[bytes, bytes]]
START_NS = 1_000_000_000_000           # the virtual clock's start (monotonic ns)
WALL_START_NS = 1_767_225_600 * 10**9  # the virtual wall clock's start: 2026-01-01T00:00:00Z


def _text(v: bytes) -> str:
    return v.decode("utf-8", "replace")


class HttpCall:
    """One ``proxy_http_call`` the filter made: inspect it, then answer, fail or time it out.

    ``state`` is ``pending``, ``answered``, ``failed`` or ``timed_out``. The filter's
    ``proxy_on_http_call_response`` runs when the emulator next pumps (at once when
    answered through the emulator).
    """

    def __init__(self, dispatcher: VirtualDispatcher, cluster: str, headers: Headers,
                 body: bytes, trailers: Headers, timeout_ms: int,
                 on_done: Callable[[HttpCallResponse | None], None]) -> None:
        self.dispatcher = dispatcher
        self.cluster = cluster
        self.headers = headers
        self.body = body
        self.trailers = trailers
        self.timeout_ms = timeout_ms
        self.state = "pending"
        self._on_done = on_done
        self._timer: ManualTimer | None = None

    # reading ------------------------------------------------------------------------
    def header(self, name: str) -> str | None:
        key = name.lower().encode()
        return next((_text(v) for k, v in self.headers if k == key), None)

    @property
    def method(self) -> str | None:
        return self.header(":method")

    @property
    def path(self) -> str | None:
        return self.header(":path")

    @property
    def authority(self) -> str | None:
        return self.header(":authority")

    @property
    def answered(self) -> bool:
        return self.state != "pending"

    def __repr__(self) -> str:
        return (f"HttpCall(cluster={self.cluster!r}, {self.method} {self.path}, "
                f"timeout_ms={self.timeout_ms}, state={self.state})")

    # answering ----------------------------------------------------------------------
    def _finish(self, state: str, response: HttpCallResponse | None) -> None:
        if self.state != "pending":
            raise RuntimeError(f"{self!r} was already {self.state}")
        self.state = state
        if self._timer is not None:
            self._timer.cancel()
        on_done = self._on_done
        self.dispatcher.call_soon(lambda: on_done(response))

    def respond(self, response: HttpCallResponse | None = None, *, status: int = 200,
                headers: Headers | None = None, body: bytes = b"",
                trailers: Headers | None = None) -> None:
        """Answer the call (``response`` as built, else from status/headers/body/trailers)."""
        if response is None:
            response = HttpCallResponse([(b":status", str(status).encode()), *(headers or [])],
                                        body, list(trailers or []))
        self._finish("answered", response)

    def fail(self) -> None:
        """The call failed (connection reset): the filter sees zero headers."""
        self._finish("failed", None)

    def time_out(self) -> None:
        """The call's timeout passed: the filter sees zero headers, as for a failure."""
        self._finish("timed_out", None)


GRPC_UNAVAILABLE = 14
TIMEOUT_MESSAGE = b"upstream request timeout"      # what Envoy (and `run`) close a late call with


class GrpcCall:
    """One gRPC call or stream the filter opened (``proxy_grpc_call``/``proxy_grpc_stream``).

    Read what the filter asked for (:attr:`cluster`, :attr:`service`, :attr:`method`,
    :attr:`metadata`, :attr:`timeout_ms`) and sent (:attr:`sent`, :attr:`half_closed`,
    :attr:`cancelled`), then answer: :meth:`reply` for a whole unary answer,
    :meth:`fail` for an error status, :meth:`time_out`, or the parts one by one
    (:meth:`initial_metadata`, :meth:`message`, :meth:`trailing_metadata`,
    :meth:`close`). The filter's callbacks run when the emulator next pumps.
    """

    def __init__(self, dispatcher: VirtualDispatcher, request: Any, events: Any) -> None:
        self.dispatcher = dispatcher
        self.request = request
        self.cluster: str = request.cluster
        self.service: str = request.service
        self.method: str = request.method
        self.metadata: Headers = list(request.metadata)
        self.timeout_ms: int | None = request.timeout_ms
        self.sent: list[bytes] = []
        self.half_closed = False
        self.cancelled = False
        self.closed = False
        self.status: int | None = None
        self._events = events
        self._timer: ManualTimer | None = None

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.method}"

    @property
    def open(self) -> bool:
        return not self.closed and not self.cancelled

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else "closed" if self.closed else "open"
        return f"GrpcCall({self.cluster!r}, {self.path}, {state})"

    # GrpcStreamHandle: the filter's side ------------------------------------------------
    def send(self, message: bytes, end_stream: bool) -> None:
        self.sent.append(bytes(message))
        if end_stream:
            self.half_closed = True

    def half_close(self) -> None:
        self.half_closed = True

    def cancel(self) -> None:
        self.cancelled = True
        if self._timer is not None:
            self._timer.cancel()

    # the test's side ----------------------------------------------------------------
    def _deliver(self, fn: Callable[[], None]) -> None:
        if self.closed:
            raise RuntimeError(f"{self!r}: already closed")

        def run() -> None:
            if not self.cancelled:
                fn()
        self.dispatcher.call_soon(run)

    def initial_metadata(self, metadata: Headers | None = None) -> None:
        md = list(metadata or [])
        self._deliver(lambda: self._events.on_initial_metadata(md))

    def message(self, message: bytes) -> None:
        self._deliver(lambda: self._events.on_message(bytes(message)))

    def trailing_metadata(self, metadata: Headers | None = None) -> None:
        md = list(metadata or [])
        self._deliver(lambda: self._events.on_trailing_metadata(md))

    def close(self, status: int = 0, message: bytes = b"") -> None:
        self._deliver(lambda: self._events.on_close(status, bytes(message)))
        self.closed = True
        self.status = status
        if self._timer is not None:
            self._timer.cancel()

    def reply(self, message: bytes, status: int = 0, status_message: bytes = b"",
              initial_metadata: Headers | None = None,
              trailing_metadata: Headers | None = None) -> None:
        """A whole answer: initial metadata, one message, trailing metadata, close."""
        self.initial_metadata(initial_metadata)
        self.message(message)
        self.trailing_metadata(trailing_metadata)
        self.close(status, status_message)

    def fail(self, status: int = GRPC_UNAVAILABLE, message: bytes = b"") -> None:
        """Close with an error status and no message (e.g. 14 UNAVAILABLE)."""
        self.close(status, message)

    def time_out(self) -> None:
        """What the proxy does when the call's timeout passes: close with 14 and
        ``upstream request timeout``."""
        self.close(GRPC_UNAVAILABLE, TIMEOUT_MESSAGE)


class VirtualDispatcher(ManualClock):
    """The host's Dispatcher for the emulators (see module doc).

    ``http_handler(call)``, if given, is asked about each http call as it is made; it
    may answer it (``call.respond(...)``) or leave it pending for the test.
    """

    def __init__(self, clusters: Any = (), http_handler: Callable[[HttpCall], Any] | None = None,
                 start_ns: int = START_NS) -> None:
        self.clusters = set(clusters or ())
        self.http_handler = http_handler
        super().__init__(start_ns)
        self.http_calls: list[HttpCall] = []
        self.grpc_calls: list[GrpcCall] = []
        self.grpc_handler: Callable[[GrpcCall], Any] | None = None

    # Dispatcher protocol (the clock's part is ManualClock's) ---------------------------
    def has_cluster(self, name: str) -> bool:
        return name in self.clusters

    def http_call(self, cluster: str, headers: Headers, body: bytes, trailers: Headers,
                  timeout_ms: int, on_done: Callable[[HttpCallResponse | None], None]) -> None:
        call = HttpCall(self, cluster, list(headers), bytes(body), list(trailers), timeout_ms,
                        on_done)
        self.http_calls.append(call)
        if timeout_ms > 0:
            def expire() -> None:
                if call.state == "pending":
                    call.time_out()
            call._timer = self.call_later(timeout_ms / 1000.0, expire)
        if self.http_handler is not None:
            self.http_handler(call)

    def grpc_stream(self, request: Any, events: Any) -> GrpcCall:
        """A gRPC call or stream (the host's GrpcRequest and GrpcEvents); a call with a
        timeout closes with 14 when the virtual clock passes it."""
        call = GrpcCall(self, request, events)
        self.grpc_calls.append(call)
        if request.timeout_ms:
            def expire() -> None:
                if call.open:
                    call.time_out()
            call._timer = self.call_later(request.timeout_ms / 1000.0, expire)
        if self.grpc_handler is not None:
            self.grpc_handler(call)
        return call

    # test controls (run_pending is ManualClock's) -------------------------------------
    def advance(self, seconds: float) -> int:
        """Move the clock forward, firing due timers in order; returns how many fired."""
        return self._advance_to(self.now_ns + int(round(seconds * 1e9)))

    def pending_http_calls(self) -> list[HttpCall]:
        return [c for c in self.http_calls if c.state == "pending"]

    def open_grpc_calls(self) -> list[GrpcCall]:
        return [c for c in self.grpc_calls if c.open]

    # the names host/dispatch.py's ManualDispatcher uses, for tests written against it
    @property
    def grpc_streams(self) -> list[GrpcCall]:
        return self.grpc_calls

    def open_grpc_streams(self) -> list[GrpcCall]:
        return self.open_grpc_calls()


class VirtualTime:
    """Makes the guest's clocks read the virtual clock: proxy_get_current_time_nanoseconds
    and WASI clock_time_get (realtime from ``wall_start_ns``, monotonic as the
    dispatcher's), so a filter that reads the time behaves the same on every run.

    A :class:`~wasmetool.host.observe.CallObserver` that answers those two imports itself
    and hands everything (the rest unchanged) to ``inner`` (the tracer), if any.
    """

    def __init__(self, dispatcher: VirtualDispatcher, wall_start_ns: int = WALL_START_NS,
                 inner: Any = None) -> None:
        self.dispatcher = dispatcher
        self.wall_start_ns = wall_start_ns
        self.inner = inner

    def wall_ns(self) -> int:
        return self.wall_start_ns + (self.dispatcher.now_ns - START_NS)

    def wrap_host_function(self, vm: Any, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        if name == "proxy_get_current_time_nanoseconds":
            def now(bound: Any, ret_ptr: int) -> int:
                if not bound.mem.put_u64(ret_ptr, self.wall_ns()):
                    return abi.INVALID_MEMORY_ACCESS
                return abi.OK
            fn = now
        elif name == "clock_time_get":
            real = fn

            def clock(bound: Any, clock_id: int, precision: int, ret: int) -> int:
                if clock_id not in (0, 1):          # process/thread CPU time: as the host
                    return real(bound, clock_id, precision, ret)
                value = self.wall_ns() if clock_id == 0 else self.dispatcher.now_ns
                return abi.WASI_SUCCESS if bound.mem.put_u64(ret, value) else abi.WASI_FAULT
            fn = clock
        return self.inner.wrap_host_function(vm, name, fn) if self.inner is not None else fn

    def wrap_callback(self, vm: Any, name: str, call: Callable[..., int]) -> Callable[..., int]:
        return self.inner.wrap_callback(vm, name, call) if self.inner is not None else call
