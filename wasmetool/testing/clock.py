"""The emulators' dispatcher: a virtual clock, deferred work, and http calls the test answers.

Nothing happens on its own: queued work runs when the emulator pumps (after every step),
timers (ticks, http call timeouts) fire when :meth:`VirtualDispatcher.advance` moves the
clock past them. Time starts at a fixed value so runs repeat exactly.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from wasmetool.host.dispatch import HttpCallResponse

Headers = list[tuple[bytes, bytes]]
START_NS = 1_000_000_000_000           # the virtual clock's start (monotonic ns)


class _Timer:
    __slots__ = ("when", "seq", "fn", "cancelled")

    def __init__(self, when: int, seq: int, fn: Callable[[], None]) -> None:
        self.when = when
        self.seq = seq
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: _Timer) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


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
        self._timer: _Timer | None = None

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


class VirtualDispatcher:
    """The host's Dispatcher for the emulators (see module doc).

    ``http_handler(call)``, if given, is asked about each http call as it is made; it
    may answer it (``call.respond(...)``) or leave it pending for the test.
    """

    def __init__(self, clusters: Any = (), http_handler: Callable[[HttpCall], Any] | None = None,
                 start_ns: int = START_NS) -> None:
        self.clusters = set(clusters or ())
        self.http_handler = http_handler
        self.now_ns = start_ns
        self._soon: deque[Callable[[], None]] = deque()
        self._timers: list[_Timer] = []
        self._seq = itertools.count()
        self.http_calls: list[HttpCall] = []

    # Dispatcher protocol -----------------------------------------------------------
    def monotonic_ns(self) -> int:
        return self.now_ns

    def call_soon(self, fn: Callable[[], None]) -> None:
        self._soon.append(fn)

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> _Timer:
        timer = _Timer(self.now_ns + int(delay_s * 1e9), next(self._seq), fn)
        heapq.heappush(self._timers, timer)
        return timer

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

    # test controls -------------------------------------------------------------------
    def run_pending(self) -> int:
        """Run queued work (and the work it queues); returns how many items ran."""
        n = 0
        soon = self._soon
        while soon:
            soon.popleft()()
            n += 1
        return n

    def advance(self, seconds: float) -> int:
        """Move the clock forward, firing due timers in order; returns how many fired."""
        target = self.now_ns + int(round(seconds * 1e9))
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

    def pending_http_calls(self) -> list[HttpCall]:
        return [c for c in self.http_calls if c.state == "pending"]
