from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.filters import FilterBuilder


@pytest.fixture(scope="session")
def wat(tmp_path_factory: pytest.TempPathFactory) -> FilterBuilder:
    """``wat("headers")`` -> a compiled tests/filters/headers.wat, once per session."""
    return FilterBuilder(tmp_path_factory.mktemp("wat-filters"))


@pytest.fixture(scope="session")
def wasm(wat: FilterBuilder):
    def read(name: str) -> bytes:
        return Path(wat(name)).read_bytes()
    return read
