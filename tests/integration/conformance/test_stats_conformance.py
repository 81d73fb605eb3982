"""Plugin metrics on the stats endpoint: Envoy's admin /stats/prometheus and wasmetool's.

metrics.wat defines a counter and a gauge (and a histogram, which Envoy only shows
after its periodic stats flush, so it is not compared) and updates them per request.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.envoy import run_envoy
from tests.support.exchange import Request, send
from tests.support.plugins import ProxySetup, WasmPlugin
from tests.support.upstream import EchoUpstream, run_echo_upstream
from tests.support.wasmetool_run import run_wasmetool

pytestmark = pytest.mark.integration

NAMES = ("conformance_requests", "conformance_level")


def _values(prometheus_text: str) -> dict[str, float]:
    """Sample values of the compared metrics; `name 3` and `name{} 3` read the same."""
    values = {}
    for line in prometheus_text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{\})?\s+(\S+)", line.strip())
        if match and match.group(1) in NAMES:
            values[match.group(1)] = float(match.group(2))
    return values


def _types(prometheus_text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"^# TYPE (\S+) (\S+)$", prometheus_text,
                                                        re.MULTILINE) if m.group(1) in NAMES}


@pytest.fixture(scope="module")
def upstream() -> Iterator[EchoUpstream]:
    with run_echo_upstream() as up:
        yield up


def _setup(compiled_filters: Callable[[str], Path], upstream: EchoUpstream) -> ProxySetup:
    return ProxySetup(upstream=upstream.url,
                      http_filters=[WasmPlugin("metrics", compiled_filters("metrics"))])


@pytest.fixture(scope="module")
def envoy_stats(compiled_filters: Callable[[str], Path], upstream: EchoUpstream,
                tmp_path_factory: pytest.TempPathFactory) -> str:
    with run_envoy(_setup(compiled_filters, upstream), tmp_path_factory.mktemp("stats")) as envoy:
        for _ in range(3):
            assert send(envoy.port, Request(path="/m")).status == 200
        return envoy.admin("/stats/prometheus")


def test_envoy_plugin_metrics(envoy_stats: str) -> None:
    assert _values(envoy_stats) == {"conformance_requests": 3.0, "conformance_level": 30.0}
    assert _types(envoy_stats) == {"conformance_requests": "counter",
                                   "conformance_level": "gauge"}


def test_wasmetool_plugin_metrics(compiled_filters: Callable[[str], Path],
                                  upstream: EchoUpstream, envoy_stats: str,
                                  tmp_path: Path) -> None:
    with run_wasmetool(_setup(compiled_filters, upstream), tmp_path, admin=True) as proxy:
        for _ in range(3):
            assert send(proxy.port, Request(path="/m")).status == 200
        assert proxy.admin_port is not None
        url = f"http://127.0.0.1:{proxy.admin_port}/stats/prometheus"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    assert _values(text) == _values(envoy_stats)
    assert _types(text) == _types(envoy_stats)
