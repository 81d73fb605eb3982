from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # one compiled-module cache per test session, never the user's
    home = tmp_path_factory.getbasetemp() / "wasmetool-home"
    monkeypatch.setenv("WASMETOOL_HOME", str(home))
