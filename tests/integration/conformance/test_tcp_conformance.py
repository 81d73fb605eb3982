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
