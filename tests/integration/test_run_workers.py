"""A stuck filter stalls nothing else (issue 12 §4), through `wasmetool run` (black box).

* The admin endpoint has a thread and an event loop of its own: it answers /ready and
  /stats within 100 ms while a guest call spins (tests/filters/runaway.wat, /loop), with
  one worker as with several.
* ``--concurrency N`` runs N workers, each with its own loop, SO_REUSEPORT listener and
  VMs: while one worker's guest spins, streams on the other worker complete. A memory
  bomb (/bomb) and a deep recursion (/recurse) are contained the same way.
* Shared data, shared queues and metrics stay process wide across workers, as in Envoy.
"""

from __future__ import annotations

import http.client
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.exchange import Request, send, send_all  # noqa: E402
from tests.support.filters import FilterBuilder  # noqa: E402
from tests.support.plugins import ProxySetup, WasmPlugin  # noqa: E402
from tests.support.upstream import EchoUpstream, run_echo_upstream  # noqa: E402
from tests.support.wasmetool_run import RunningWasmetool, run_wasmetool  # noqa: E402

pytestmark = pytest.mark.integration

ADMIN_BUDGET_S = 0.100
ADMIN_HARD_CAP_S = 0.500
LOOP_TIMEOUT_MS = 3000
CONNECTIONS = 16          # keep-alive connections spread over the workers by the kernel


@pytest.fixture(scope="module")
def filters(tmp_path_factory: pytest.TempPathFactory) -> FilterBuilder:
    return FilterBuilder(tmp_path_factory.mktemp("worker-filters"))


@pytest.fixture(scope="module")
def upstream() -> Iterator[EchoUpstream]:
    with run_echo_upstream() as echo:
        yield echo


def _runaway(filters: FilterBuilder, upstream: EchoUpstream,
             policy: str | None = None) -> ProxySetup:
    return ProxySetup(upstream=upstream.url, http_filters=[
        WasmPlugin("runaway", filters("runaway"), failure_policy=policy)])


@dataclass
class Timed:
    status: int
    started: float
    finished: float
    alive: bool = False       # the runaway filter ran and let the request through

    @property
    def seconds(self) -> float:
        return self.finished - self.started


def _get(port: int, path: str, timeout: float = 30.0,
         conn: http.client.HTTPConnection | None = None) -> Timed:
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.monotonic()
    try:
        c.request("GET", path, headers={"host": "workers.test"})
        response = c.getresponse()
        body = response.read()
    finally:
        if own:
            c.close()
    finished = time.monotonic()
    alive = False
    if response.status == 200 and body.startswith(b"{"):
        echo = json.loads(body)          # the echo upstream: what it received
        alive = ["x-runaway-filter", "alive"] in echo["headers"]
    return Timed(response.status, started, finished, alive)


class AdminProbe:
    """Asks /ready and /stats (alternately, each on a fresh connection, as curl would) every
    50 ms from a thread of its own, recording how long each answer took."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answers: list[Timed] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        paths = ("/ready", "/stats")
        i = 0
        while not self._stop.is_set():
            try:
                self.answers.append(_get(self.port, paths[i % 2], timeout=5))
            except OSError as exc:
                self.errors.append(repr(exc))
            i += 1
            self._stop.wait(0.05)

    def __enter__(self) -> AdminProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def during(self, start: float, end: float) -> list[Timed]:
        return [a for a in self.answers if a.started >= start and a.finished <= end]

    def check(self, since: float = 0.0) -> None:
        """Answers within 100 ms. On a quiet machine every one is (median ~1 ms, max ~30
        ms measured while a guest looped); on a shared, loaded test machine the scheduler
        alone can delay a thread past that, so one answer in twenty may be late, never
        past the hard cap. (Before admin had its own thread, every answer asked during
        the loop waited for the whole call time limit.)"""
        assert not self.errors, self.errors
        assert self.answers
        slow = [(round(a.seconds * 1000, 1), round(a.started - since, 3))
                for a in self.answers if a.seconds > ADMIN_BUDGET_S]
        detail = f"admin answers over 100 ms (ms, asked at s) of {len(self.answers)}: {slow}"
        assert len(slow) * 20 <= len(self.answers), detail
        assert all(a.seconds <= ADMIN_HARD_CAP_S for a in self.answers), detail
        assert all(a.status == 200 for a in self.answers), [a.status for a in self.answers]


def _in_background(fn: object) -> tuple[threading.Thread, list[Timed]]:
    out: list[Timed] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)  # type: ignore[operator]
    thread.start()
    return thread, out


def _wait_for_active_request(proxy: RunningWasmetool) -> None:
    """Until the runaway request is inside the guest (admin: one request active)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.admin_port or 0, timeout=5)
        conn.request("GET", "/stats")
        text = conn.getresponse().read().decode()
        conn.close()
        if re.search(r"^wasmetool_downstream_rq_active [1-9]", text, re.M):
            return
        time.sleep(0.02)
    raise AssertionError("the runaway request never became active")


@pytest.mark.parametrize("policy", [None, "FAIL_RELOAD"])
def test_admin_answers_within_100ms_while_a_guest_loops(
        filters: FilterBuilder, upstream: EchoUpstream, tmp_path: Path,
        policy: str | None) -> None:
    # one worker (the default): the loop blocks it, the admin thread answers regardless;
    # under fail_reload the second loop runs in a fresh VM, and admin still answers
    args = ["--call-timeout-ms", str(LOOP_TIMEOUT_MS)]
    loops = 2 if policy == "FAIL_RELOAD" else 1
    with run_wasmetool(_runaway(filters, upstream, policy), tmp_path, admin=True,
                       extra_args=args) as proxy:
        assert _get(proxy.port, "/ok").alive
        with AdminProbe(proxy.admin_port or 0) as probe:
            looped = []
            for _ in range(loops):
                thread, out = _in_background(lambda: _get(proxy.port, "/loop"))
                thread.join(30)
                looped += out
                time.sleep(1.1 if policy else 0.2)    # fail_reload: one new VM a second
        assert len(looped) == loops
        for loop in looped:
            assert loop.status == 503 and loop.seconds >= LOOP_TIMEOUT_MS / 1000 * 0.8
            # the admin endpoint was asked again and again while the guest spun
            assert len(probe.during(loop.started + 0.3, loop.finished - 0.3)) >= 10
        probe.check()
        assert proxy.alive()
        if policy == "FAIL_RELOAD":
            assert "fail_reload: started a fresh VM" in proxy.logs()


def test_other_streams_complete_while_a_guest_loops(
        filters: FilterBuilder, upstream: EchoUpstream, tmp_path: Path) -> None:
    args = ["--call-timeout-ms", str(LOOP_TIMEOUT_MS), "--concurrency", "2"]
    with run_wasmetool(_runaway(filters, upstream), tmp_path, admin=True,
                       extra_args=args) as proxy:
        assert "2 workers" in proxy.logs()
        conns = [http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
                 for _ in range(CONNECTIONS)]
        try:
            for conn in conns:                       # open and warm each: all alive
                assert _get(proxy.port, "/ok", conn=conn).alive
            with AdminProbe(proxy.admin_port or 0) as probe:
                thread, looped = _in_background(lambda: _get(proxy.port, "/loop"))
                _wait_for_active_request(proxy)
                others: list[Timed] = []
                senders = [threading.Thread(target=lambda c=conn: others.append(
                    _get(proxy.port, "/ok", conn=c)), daemon=True) for conn in conns]
                for sender in senders:
                    sender.start()
                for sender in senders:
                    sender.join(30)
                thread.join(30)
            (loop,) = looped
        finally:
            for conn in conns:
                conn.close()
        assert loop.status == 503 and loop.seconds >= LOOP_TIMEOUT_MS / 1000 * 0.8
        # every stream completed; those on the free worker while the guest still spun (its
        # call started after loop.started and runs for the whole call time limit)
        assert len(others) == CONNECTIONS
        spinning_until = loop.started + LOOP_TIMEOUT_MS / 1000 * 0.9
        during = [o for o in others if o.finished < spinning_until]
        assert during, "no stream completed while the guest looped"
        assert all(o.alive for o in during)
        # the rest were on the looping worker: served once its call was stopped
        # (503: that worker's VM failed closed), none lost
        assert all(o.status == 503 for o in others if o not in during)
        probe.check(loop.started)
        assert proxy.alive()


@pytest.mark.parametrize(("path", "trap"), [("/bomb", "unreachable"),
                                            ("/recurse", "call stack exhausted")])
def test_memory_bomb_and_deep_recursion_are_contained(
        filters: FilterBuilder, upstream: EchoUpstream, tmp_path: Path,
        path: str, trap: str) -> None:
    args = ["--call-timeout-ms", str(LOOP_TIMEOUT_MS), "--memory-limit-mb", "64",
            "--concurrency", "2"]
    with run_wasmetool(_runaway(filters, upstream), tmp_path, admin=True,
                       extra_args=args) as proxy:
        with AdminProbe(proxy.admin_port or 0) as probe:
            bombed = _get(proxy.port, path)
            # other streams still complete: the other worker's VM is untouched
            after = [_get(proxy.port, "/ok") for _ in range(CONNECTIONS)]
        assert bombed.status == 503
        assert any(a.alive for a in after)
        assert all(a.alive or a.status == 503 for a in after)
        probe.check()
        assert proxy.alive()
        log = proxy.logs()
        assert "proxy_on_request_headers" in log and trap in log


def test_shared_data_queues_and_metrics_span_workers(
        filters: FilterBuilder, upstream: EchoUpstream, tmp_path: Path) -> None:
    setup = ProxySetup(
        upstream=upstream.url,
        http_filters=[WasmPlugin("counter", filters("shared_data"), vm_id="counter_vm"),
                      WasmPlugin("metrics", filters("metrics")),
                      WasmPlugin("sender", filters("queue_sender"), vm_id="qvm",
                                 root_id="sender")],
        singletons=[WasmPlugin("receiver", filters("queue_receiver"), vm_id="qvm",
                               root_id="receiver")])
    n = 24
    with run_wasmetool(setup, tmp_path, admin=True, extra_args=["--concurrency", "2"]) as proxy:
        # a fresh connection each: the kernel spreads them over both workers' listeners
        replies = [send(proxy.port, Request(path=f"/enqueue/{i}")) for i in range(1, n + 1)]
        assert all(r.status == 200 for r in replies)
        # one counter for the process (vm_id counter_vm), not one per worker
        assert [r.header("x-counter") for r in replies] == [str(i) for i in range(1, n + 1)]
        assert all(r.echo_header("x-enqueue-status") == "0" for r in replies)
        # the receiver singleton runs once (worker 0) and gets every worker's messages
        (peek,) = send_all(proxy.port, [Request(
            path="/peek", until=lambda x: x.echo_header("x-count") == str(n),
            until_timeout=10)])
        assert peek.echo_header("x-count") == str(n)
        conn = http.client.HTTPConnection("127.0.0.1", proxy.admin_port or 0, timeout=5)
        conn.request("GET", "/stats")
        stats = conn.getresponse().read().decode()
        conn.close()
        # plugin metrics are process wide too: the counter saw every request of both workers
        total = re.search(r"^wasmetool_downstream_rq_total (\d+)$", stats, re.M)
        assert total is not None and int(total.group(1)) >= n + 1
        assert re.search(rf"^conformance_requests {total.group(1)}$", stats, re.M), stats
