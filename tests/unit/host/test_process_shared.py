"""Hosts of one process (one per `run --concurrency` worker) share what Envoy's workers
share: shared data and queues per vm_id, plugin metrics, counters; each keeps its VMs."""

from __future__ import annotations

import threading
from pathlib import Path

import wasmtime

from wasmetool.host import abi
from wasmetool.host.config import PluginConfig, VmConfig
from wasmetool.host.dispatch import ManualDispatcher
from wasmetool.host.metrics import MetricStore
from wasmetool.host.runtime import Host
from wasmetool.host.shared_state import ProcessShared

FILTERS = Path(__file__).resolve().parents[2] / "filters"


def _wasm(name: str) -> bytes:
    return wasmtime.wat2wasm((FILTERS / f"{name}.wat").read_text())


def _receiver() -> PluginConfig:
    return PluginConfig(name="receiver", root_id="receiver", kind="singleton",
                        vm=VmConfig(code=_wasm("queue_receiver"), vm_id="qvm"))


def test_a_queue_delivers_on_the_host_whose_vm_registered_it() -> None:
    shared = ProcessShared(threads=True)
    a_dispatch, b_dispatch = ManualDispatcher(), ManualDispatcher()
    a = Host([_receiver()], a_dispatch, shared=shared)          # worker 0: the singleton
    b = Host([], b_dispatch, shared=shared)                     # worker 1
    a.start()
    b.start()
    try:
        token = b.queues.resolve("qvm", b"events")       # another worker finds the queue
        assert token is not None
        done = threading.Event()

        def enqueue() -> None:      # from another thread, as a worker's VM would
            assert b.queues.enqueue(token, b"from worker 1") == abi.OK
            done.set()
        threading.Thread(target=enqueue).start()
        assert done.wait(5)
        assert b_dispatch.run_pending() == 0              # nothing for the enqueuer's host
        assert a_dispatch.run_pending() == 1              # on_queue_ready on the receiver's
        assert b.shared_data.get("qvm", b"last") is not None
        assert b.shared_data.get("qvm", b"last")[0] == b"from worker 1"
    finally:
        a.shutdown()
        b.shutdown()


def test_metrics_and_counters_are_process_wide() -> None:
    shared = ProcessShared(threads=True)
    hosts = [Host([], ManualDispatcher(), shared=shared) for _ in range(2)]
    m0 = hosts[0].metrics.get(abi.METRIC_COUNTER, "requests")
    m1 = hosts[1].metrics.get(abi.METRIC_COUNTER, "requests")
    assert m0 is m1                                       # one metric by name
    m0.increment(2)
    m1.increment(3)
    hosts[0].count("wasmetool_vm_failures_total")
    hosts[1].count("wasmetool_vm_failures_total", 2)
    hosts[0].http_streams, hosts[1].http_streams = 4, 5
    text = hosts[1].prometheus_text()
    assert "\nrequests 5\n" in text
    assert "wasmetool_vm_failures_total 3\n" in text
    assert "wasmetool_http_streams_total 9\n" in text


def test_locked_metrics_count_every_increment_from_many_threads() -> None:
    store = MetricStore(threadsafe=True)
    metric = store.get(abi.METRIC_COUNTER, "hits")

    def hammer() -> None:
        for _ in range(20000):
            metric.increment(1)
    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert metric.value == 80000


def test_a_host_alone_keeps_its_own_shared_state() -> None:
    a, b = Host([], ManualDispatcher()), Host([], ManualDispatcher())
    assert a.shared_data.set("", b"k", b"v", 0) == abi.OK
    assert b.shared_data.get("", b"k") is None
    assert a.shared.hosts == [a]
