"""What the runtime core asks of its surroundings: time, deferred calls, timers, HTTP callouts.

The server side implements :class:`Dispatcher` on its event loop; tests use
:class:`ManualDispatcher`, which has a manual clock and answers http calls with a
test-supplied function.
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


HttpCallHandler = Callable[[str, Headers, bytes, Headers, int], "HttpCallResponse | None"]


class _ManualTimer:
    __slots__ = ("when", "seq", "fn", "cancelled")

    def __init__(self, when: int, seq: int, fn: Callable[[], None]) -> None:
        self.when = when
        self.seq = seq
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: _ManualTimer) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


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


class ManualDispatcher:
    """A deterministic dispatcher for tests: nothing happens until the test says so.

    * ``call_soon`` work runs in :meth:`run_pending` (the emulators call it after every step);
    * timers fire when :meth:`advance` moves the manual clock past them;
    * ``http_call`` is answered by ``http_handler(cluster, headers, body, trailers, timeout_ms)``
      if one was given (its answer is delivered through call_soon), else it is recorded in
      :attr:`http_calls` for the test to answer with ``RecordedHttpCall.respond``.
    """

    def __init__(self, clusters: dict[str, str] | list[str] | None = None,
                 http_handler: HttpCallHandler | None = None,
                 start_ns: int | None = None) -> None:
        self.clusters = set(clusters or ())
        self.http_handler = http_handler
        self.now_ns = start_ns if start_ns is not None else time.monotonic_ns()
        self._soon: deque[Callable[[], None]] = deque()
        self._timers: list[_ManualTimer] = []
        self._seq = itertools.count()
        self.http_calls: list[RecordedHttpCall] = []

    # Dispatcher protocol -------------------------------------------------
    def monotonic_ns(self) -> int:
        return self.now_ns

    def call_soon(self, fn: Callable[[], None]) -> None:
        self._soon.append(fn)

    def post(self, fn: Callable[[], None]) -> None:
        self._soon.append(fn)       # deque.append is thread-safe; run_pending runs it

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> _ManualTimer:
        timer = _ManualTimer(self.now_ns + int(delay_s * 1e9), next(self._seq), fn)
        heapq.heappush(self._timers, timer)
        return timer

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

    # test controls --------------------------------------------------------
    def run_pending(self) -> int:
        """Run queued call_soon work (including work it queues); returns how many ran."""
        n = 0
        while self._soon:
            self._soon.popleft()()
            n += 1
        return n

    def advance(self, seconds: float) -> int:
        """Move the clock forward, firing due timers in order; returns how many fired."""
        target = self.now_ns + int(seconds * 1e9)
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

    def pending_http_calls(self) -> list[RecordedHttpCall]:
        return [c for c in self.http_calls if not c.answered]
