"""Fixtures for the conformance suite: compiled WAT filters, echo upstreams, result cache."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def compiled_filters(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``compiled_filters("headers")`` -> path of tests/filters/headers.wat compiled once."""
    from tests.support.filters import FilterBuilder

    return FilterBuilder(tmp_path_factory.mktemp("filters"))


@pytest.fixture(scope="session")
def envoy_results() -> dict[str, object]:
    """Envoy's normalised results per case, shared by the Envoy and wasmetool tests."""
    return {}


@pytest.fixture(scope="session")
def upstreams() -> Iterator[dict[str, object]]:
    """Two echo upstreams for the whole session: the proxied one and an http_call target."""
    from tests.support.upstream import run_echo_upstream

    with run_echo_upstream("upstream") as up, run_echo_upstream("callout") as callout:
        yield {"upstream": up, "callout": callout}
