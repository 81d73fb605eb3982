"""Hostile modules through `wasmetool run` (black box), checked against real Envoy 1.40.

* tests/filters/hostile_calls.wat calls every host function with out-of-bounds
  pointers (0xFFFFFFF0), huge sizes (0x7FFFFFFF), unknown ids and bad enum values and
  reports each returned status in a local reply.  The expected table below is what
  Envoy 1.40 returns (``test_envoy_hostile_call_statuses`` keeps it honest); wasmetool
  must return the same and keep serving.
* tests/filters/runaway.wat loops forever (/loop) or grows memory until refused
  (/bomb).  wasmetool must stop the loop within its call time limit and answer 503,
  apply the failure policy afterwards, and keep serving.  Envoy has no time limit on
  guest calls: a looping filter hangs its worker for good, so the loop is only run
  through wasmetool.  The memory bomb behaves the same in both (the conformance case
  ``memory_bomb_fail_closed`` compares it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.envoy import run_envoy  # noqa: E402
from tests.support.exchange import Exchange, Request, send  # noqa: E402
from tests.support.filters import FilterBuilder  # noqa: E402
from tests.support.plugins import ProxySetup, WasmPlugin  # noqa: E402
from tests.support.upstream import EchoUpstream, run_echo_upstream  # noqa: E402
from tests.support.wasmetool_run import run_wasmetool  # noqa: E402

pytestmark = pytest.mark.integration

OK, NOT_FOUND, BAD_ARGUMENT, INVALID_MEMORY_ACCESS = 0, 1, 2, 6
WASI_FAULT = 21

# Status per hostile call, as Envoy 1.40 (V8) returns them.  Calls in the header phase
# run for every request; the buffer calls only for a request with a body.
HEADER_PHASE: dict[str, int] = {
    "log.msg": INVALID_MEMORY_ACCESS,
    "get_log_level.ret": INVALID_MEMORY_ACCESS,
    "get_current_time.ret": INVALID_MEMORY_ACCESS,
    "set_effective_context.unknown": BAD_ARGUMENT,
    "get_header_map_value.key": INVALID_MEMORY_ACCESS,
    "get_header_map_value.ret": INVALID_MEMORY_ACCESS,
    "get_header_map_value.map": BAD_ARGUMENT,
    "add_header_map_value.key": INVALID_MEMORY_ACCESS,
    "add_header_map_value.value": INVALID_MEMORY_ACCESS,
    "add_header_map_value.map": BAD_ARGUMENT,
    "replace_header_map_value.key": INVALID_MEMORY_ACCESS,
    "replace_header_map_value.value": INVALID_MEMORY_ACCESS,
    "remove_header_map_value.key": INVALID_MEMORY_ACCESS,
    "get_header_map_pairs.ret": INVALID_MEMORY_ACCESS,
    "set_header_map_pairs.data": INVALID_MEMORY_ACCESS,
    "get_header_map_size.ret": INVALID_MEMORY_ACCESS,
    "get_property.path": INVALID_MEMORY_ACCESS,
    "get_property.ret": INVALID_MEMORY_ACCESS,
    "set_property.path": INVALID_MEMORY_ACCESS,
    "set_property.value": INVALID_MEMORY_ACCESS,
    "get_shared_data.key": INVALID_MEMORY_ACCESS,
    "set_shared_data.key": INVALID_MEMORY_ACCESS,
    "set_shared_data.value": INVALID_MEMORY_ACCESS,
    "get_shared_data.ret": NOT_FOUND,            # the key is missing: nothing to write
    "register_shared_queue.name": INVALID_MEMORY_ACCESS,
    "register_shared_queue.ret": INVALID_MEMORY_ACCESS,
    "register_shared_queue.ok": OK,
    "resolve_shared_queue.vm_id": INVALID_MEMORY_ACCESS,
    "resolve_shared_queue.name": INVALID_MEMORY_ACCESS,
    "enqueue_shared_queue.value": INVALID_MEMORY_ACCESS,
    "enqueue_shared_queue.unknown": NOT_FOUND,
    "dequeue_shared_queue.unknown": NOT_FOUND,
    "define_metric.name": INVALID_MEMORY_ACCESS,
    "define_metric.type": BAD_ARGUMENT,
    "define_metric.ret": INVALID_MEMORY_ACCESS,
    "record_metric.unknown": NOT_FOUND,
    "increment_metric.unknown": NOT_FOUND,
    "get_metric.unknown": NOT_FOUND,
    "http_call.cluster": INVALID_MEMORY_ACCESS,
    "http_call.headers": INVALID_MEMORY_ACCESS,
    "grpc_call.service": INVALID_MEMORY_ACCESS,
    "grpc_stream.service": INVALID_MEMORY_ACCESS,
    "grpc_send.unknown": BAD_ARGUMENT,
    "grpc_cancel.unknown": BAD_ARGUMENT,
    "grpc_close.unknown": BAD_ARGUMENT,
    # Envoy tells gRPC call and stream tokens apart by parity: an unknown odd token is
    # NOT_FOUND for cancel/close, while send on it (not a stream) is BAD_ARGUMENT.
    "grpc_send.unknown_odd": BAD_ARGUMENT,
    "grpc_cancel.unknown_odd": NOT_FOUND,
    "grpc_close.unknown_odd": NOT_FOUND,
    "call_foreign_function.name": INVALID_MEMORY_ACCESS,
    "call_foreign_function.unknown": NOT_FOUND,
    "send_local_response.body": INVALID_MEMORY_ACCESS,
    "send_local_response.headers": INVALID_MEMORY_ACCESS,
    "continue_stream.type": BAD_ARGUMENT,
    "close_stream.type": BAD_ARGUMENT,
    "get_status.ret": INVALID_MEMORY_ACCESS,
    "done.nothing_pending": NOT_FOUND,
    "fd_write.iovs": WASI_FAULT,
    "fd_write.iov_data": WASI_FAULT,
    "fd_write.nwritten": WASI_FAULT,
    "environ_get.ret": OK,                       # no environment: nothing to write
    "environ_sizes_get.ret": WASI_FAULT,
    "args_sizes_get.ret": WASI_FAULT,
    "clock_time_get.ret": WASI_FAULT,
    "random_get.buf": WASI_FAULT,
}
BODY_PHASE: dict[str, int] = {
    "get_buffer_bytes.ret": INVALID_MEMORY_ACCESS,
    "get_buffer_bytes.type": BAD_ARGUMENT,
    "set_buffer_bytes.value": INVALID_MEMORY_ACCESS,
    "set_buffer_bytes.middle": BAD_ARGUMENT,
    "get_buffer_status.ret": INVALID_MEMORY_ACCESS,
}


def _report(exchange: Exchange) -> dict[str, int]:
    assert exchange.status == 200, exchange
    report = {}
    for line in exchange.body.decode().splitlines():
        name, _, status = line.partition("=")
        report[name] = int(status)
    return report


@pytest.fixture(scope="module")
def filters(tmp_path_factory: pytest.TempPathFactory) -> FilterBuilder:
    return FilterBuilder(tmp_path_factory.mktemp("hostile-filters"))


@pytest.fixture(scope="module")
def upstream() -> Iterator[EchoUpstream]:
    with run_echo_upstream() as up:
        yield up


def _hostile_setup(filters: FilterBuilder, upstream: EchoUpstream) -> ProxySetup:
    return ProxySetup(upstream=upstream.url,
                      http_filters=[WasmPlugin("hostile", filters("hostile_calls"))])


def _check_hostile(port: int) -> None:
    with_body = _report(send(port, Request("POST", "/hostile", body=b"hello")))
    assert with_body == {**HEADER_PHASE, **BODY_PHASE}
    without_body = _report(send(port, Request("GET", "/hostile")))
    assert without_body == HEADER_PHASE


def test_envoy_hostile_call_statuses(filters: FilterBuilder, upstream: EchoUpstream,
                                     tmp_path: Path) -> None:
    with run_envoy(_hostile_setup(filters, upstream), tmp_path) as envoy:
        _check_hostile(envoy.port)
        assert envoy.alive()


def test_wasmetool_hostile_call_statuses(filters: FilterBuilder, upstream: EchoUpstream,
                                         tmp_path: Path) -> None:
    with run_wasmetool(_hostile_setup(filters, upstream), tmp_path) as proxy:
        _check_hostile(proxy.port)
        _check_hostile(proxy.port)          # the same VM, again: nothing was corrupted
        assert proxy.alive()


def _runaway(filters: FilterBuilder, upstream: EchoUpstream, **kwargs: object) -> ProxySetup:
    return ProxySetup(upstream=upstream.url,
                      http_filters=[WasmPlugin("runaway", filters("runaway"), **kwargs)])  # type: ignore[arg-type]


def _alive(x: Exchange) -> bool:
    return x.status == 200 and x.echo_header("x-runaway-filter") == "alive"


LIMIT_FLAGS = ["--call-timeout-ms", "200", "--memory-limit-mb", "64"]


def test_wasmetool_infinite_loop_fail_closed(filters: FilterBuilder, upstream: EchoUpstream,
                                             tmp_path: Path) -> None:
    with run_wasmetool(_runaway(filters, upstream), tmp_path, extra_args=LIMIT_FLAGS) as proxy:
        assert _alive(send(proxy.port, Request(path="/ok")))
        looped = send(proxy.port, Request(path="/loop"), timeout=30)
        assert looped.status == 503
        # fail closed, as Envoy: the plugin's later requests get 503 too, promptly
        assert send(proxy.port, Request(path="/ok"), timeout=30).status == 503
        assert proxy.alive()
        assert "proxy_on_request_headers" in proxy.logs()


def test_wasmetool_infinite_loop_fail_reload(filters: FilterBuilder, upstream: EchoUpstream,
                                             tmp_path: Path) -> None:
    setup = _runaway(filters, upstream, failure_policy="FAIL_RELOAD")
    with run_wasmetool(setup, tmp_path, extra_args=LIMIT_FLAGS) as proxy:
        assert send(proxy.port, Request(path="/loop"), timeout=30).status == 503
        request = Request(path="/ok", until=_alive, until_timeout=10)
        from tests.support.exchange import send_all

        (after,) = send_all(proxy.port, [request])
        assert _alive(after)                 # a fresh VM serves later requests
        assert proxy.alive()


def test_wasmetool_infinite_loop_fail_open(filters: FilterBuilder, upstream: EchoUpstream,
                                           tmp_path: Path) -> None:
    setup = _runaway(filters, upstream, fail_open=True)
    with run_wasmetool(setup, tmp_path, extra_args=LIMIT_FLAGS) as proxy:
        looped = send(proxy.port, Request(path="/loop"), timeout=30)
        # fail open: the request bypasses the stopped plugin and reaches the upstream
        assert looped.status == 200 and looped.echo_header("x-runaway-filter") is None
        after = send(proxy.port, Request(path="/ok"))
        assert after.status == 200 and after.echo_header("x-runaway-filter") is None
        assert proxy.alive()


def test_wasmetool_memory_bomb_stopped_by_cap(filters: FilterBuilder, upstream: EchoUpstream,
                                              tmp_path: Path) -> None:
    with run_wasmetool(_runaway(filters, upstream), tmp_path, extra_args=LIMIT_FLAGS) as proxy:
        assert _alive(send(proxy.port, Request(path="/ok")))
        assert send(proxy.port, Request(path="/bomb"), timeout=30).status == 503
        assert send(proxy.port, Request(path="/ok")).status == 503
        assert proxy.alive()
        assert "proxy_on_request_headers" in proxy.logs()


def _failing(filters: FilterBuilder, upstream: EchoUpstream) -> ProxySetup:
    return ProxySetup(upstream=upstream.url,
                      http_filters=[WasmPlugin("failing", filters("failing_outside"))])


def test_wasmetool_allocator_loop_stopped(filters: FilterBuilder, upstream: EchoUpstream,
                                          tmp_path: Path) -> None:
    # the host calls the guest's allocator inside proxy_get_header_map_value; it spins
    with run_wasmetool(_failing(filters, upstream), tmp_path, extra_args=LIMIT_FLAGS) as proxy:
        assert send(proxy.port, Request(path="/ok")).status == 200
        assert send(proxy.port, Request(path="/alloc-loop"), timeout=30).status == 503
        assert send(proxy.port, Request(path="/after"), timeout=30).status == 503
        assert proxy.alive()
        assert "proxy_on_memory_allocate" in proxy.logs()


def test_wasmetool_tick_loop_stopped(filters: FilterBuilder, upstream: EchoUpstream,
                                     tmp_path: Path) -> None:
    # a timer callback with no request in flight spins: stopped, then fail closed
    from tests.support.exchange import send_all

    with run_wasmetool(_failing(filters, upstream), tmp_path, extra_args=LIMIT_FLAGS) as proxy:
        assert send(proxy.port, Request(path="/tick-loop")).status == 200
        (after,) = send_all(proxy.port, [Request(path="/after", until=lambda x: x.status == 503,
                                                 until_timeout=10)])
        assert after.status == 503
        assert proxy.alive()
        assert "proxy_on_tick" in proxy.logs()
