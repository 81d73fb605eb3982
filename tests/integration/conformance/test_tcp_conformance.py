"""A network (TCP) wasm filter through Envoy's tcp_proxy and through `wasmetool run --tcp`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.envoy import run_envoy
from tests.support.exchange import tcp_exchange
from tests.support.plugins import ProxySetup, WasmPlugin
from tests.support.upstream import TcpEchoUpstream, run_tcp_echo_upstream
from tests.support.wasmetool_run import run_wasmetool

pytestmark = pytest.mark.integration

PAYLOADS = [b"hello", b"x" * 2000]


@pytest.fixture(scope="module")
def tcp_upstream() -> Iterator[TcpEchoUpstream]:
    with run_tcp_echo_upstream() as up:
        yield up


def _setup(compiled_filters: Callable[[str], Path], up: TcpEchoUpstream) -> ProxySetup:
    return ProxySetup(upstream=up.address, tcp=True,
                      network_filters=[WasmPlugin("tcp", compiled_filters("tcp"))])


def _check(replies: list[bytes], log: str) -> None:
    # the client's bytes reach the echo with "[down]" and come back with "[up]" too
    assert replies == [b"[up][down]" + p for p in PAYLOADS]
    assert "tcp filter: new connection" in log


@pytest.fixture(scope="module")
def envoy_tcp_replies(compiled_filters: Callable[[str], Path], tcp_upstream: TcpEchoUpstream,
                      tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    with run_envoy(_setup(compiled_filters, tcp_upstream),
                   tmp_path_factory.mktemp("envoy-tcp")) as envoy:
        replies = [tcp_exchange(envoy.port, p) for p in PAYLOADS]
        _check(replies, envoy.logs())
    return replies


def test_envoy_tcp_filter(envoy_tcp_replies: list[bytes]) -> None:
    assert envoy_tcp_replies


def test_wasmetool_tcp_filter(compiled_filters: Callable[[str], Path],
                              tcp_upstream: TcpEchoUpstream, envoy_tcp_replies: list[bytes],
                              tmp_path: Path) -> None:
    with run_wasmetool(_setup(compiled_filters, tcp_upstream), tmp_path) as proxy:
        replies = [tcp_exchange(proxy.port, p) for p in PAYLOADS]
        assert proxy.alive()
        log = proxy.logs()
    _check(replies, log)
    assert replies == envoy_tcp_replies


# --- callback order on connections -------------------------------------------------------

def _lifecycle_replies(port: int) -> list[bytes]:
    import time

    replies = []
    for _ in range(3):
        replies.append(tcp_exchange(port, b"hello"))
        time.sleep(0.2)   # let the closed connection's teardown run before the next one
    return replies


def _check_lifecycle(replies: list[bytes]) -> None:
    # each reply starts with the trace so far: the previous connections' callbacks
    # (upstream closed (peer 0), downstream closed by the proxy (peer 1 = LOCAL), then
    # done -> log -> delete, Envoy's TCP order), then this one's create/new/data
    assert replies[2] == (b"C2/1 N2 D2 U2 u2:0 d2:1 O2 L2 X2 C3/1 N3 D3 U3 u3:0 d3:1 O3 L3 X3 "
                          b"C4/1 N4 D4|hello")


@pytest.fixture(scope="module")
def envoy_tcp_lifecycle(compiled_filters: Callable[[str], Path], tcp_upstream: TcpEchoUpstream,
                        tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    setup = ProxySetup(upstream=tcp_upstream.address, tcp=True, network_filters=[
        WasmPlugin("tcp_lifecycle", compiled_filters("tcp_lifecycle"))])
    with run_envoy(setup, tmp_path_factory.mktemp("envoy-tcp-lifecycle")) as envoy:
        replies = _lifecycle_replies(envoy.port)
    _check_lifecycle(replies)
    return replies


def test_envoy_tcp_callback_order(envoy_tcp_lifecycle: list[bytes]) -> None:
    assert envoy_tcp_lifecycle


def test_wasmetool_tcp_callback_order(compiled_filters: Callable[[str], Path],
                                      tcp_upstream: TcpEchoUpstream,
                                      envoy_tcp_lifecycle: list[bytes], tmp_path: Path) -> None:
    setup = ProxySetup(upstream=tcp_upstream.address, tcp=True, network_filters=[
        WasmPlugin("tcp_lifecycle", compiled_filters("tcp_lifecycle"))])
    with run_wasmetool(setup, tmp_path) as proxy:
        replies = _lifecycle_replies(proxy.port)
    _check_lifecycle(replies)
    assert replies == envoy_tcp_lifecycle


# --- a trapping network filter and the failure policies --------------------------------

def _trap_replies(port: int, policy: str) -> list[object]:
    import time

    replies: list[object] = []
    for payload in (b"hello", b"trap", b"again"):
        deadline = time.monotonic() + (8.0 if policy == "FAIL_RELOAD" and payload == b"again"
                                       else 0.0)
        while True:
            try:
                reply: object = tcp_exchange(port, payload, timeout=5)
            except OSError:      # reset, or closed before we could even half-close
                reply = "reset"
            # FAIL_RELOAD: Envoy reloads the VM after a backoff (1 s), so retry the last
            if reply == b"[ok]again" or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        replies.append(reply)
    return replies


TRAP_EXPECTED = {
    # fail closed: the trapping connection is closed; later ones are refused (reset)
    "FAIL_CLOSED": [b"[ok]hello", b"", "reset"],
    # fail open: the broken filter is bypassed
    "FAIL_OPEN": [b"[ok]hello", b"trap", b"again"],
    # fail reload: a fresh VM filters later connections again
    "FAIL_RELOAD": [b"[ok]hello", b"", b"[ok]again"],
}


def _trap_setup(compiled_filters: Callable[[str], Path], up: TcpEchoUpstream,
                policy: str) -> ProxySetup:
    kwargs: dict[str, object] = {"fail_open": True} if policy == "FAIL_OPEN" else {}
    if policy == "FAIL_RELOAD":
        kwargs["failure_policy"] = policy
    return ProxySetup(upstream=up.address, tcp=True, network_filters=[
        WasmPlugin("tcp_trap", compiled_filters("tcp_trap"), **kwargs)])  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", list(TRAP_EXPECTED))
def test_envoy_tcp_trap(policy: str, compiled_filters: Callable[[str], Path],
                        tcp_upstream: TcpEchoUpstream, tmp_path: Path) -> None:
    with run_envoy(_trap_setup(compiled_filters, tcp_upstream, policy), tmp_path) as envoy:
        assert _trap_replies(envoy.port, policy) == TRAP_EXPECTED[policy]
        assert envoy.alive()


@pytest.mark.parametrize("policy", list(TRAP_EXPECTED))
def test_wasmetool_tcp_trap(policy: str, compiled_filters: Callable[[str], Path],
                            tcp_upstream: TcpEchoUpstream, tmp_path: Path) -> None:
    with run_wasmetool(_trap_setup(compiled_filters, tcp_upstream, policy), tmp_path) as proxy:
        assert _trap_replies(proxy.port, policy) == TRAP_EXPECTED[policy]
        assert proxy.alive()
