"""The same filters through real Envoy 1.40 and through `wasmetool run`: same replies.

``test_envoy[case]`` runs a case through Envoy and checks Envoy's real behaviour;
``test_wasmetool[case]`` runs it through ``wasmetool run`` and requires the same
checks to pass and the normalised replies (docs/conformance.md) to equal Envoy's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conformance.cases import CASES, Case, Env
from tests.support.envoy import run_envoy
from tests.support.exchange import normalise, send_all, send_concurrently
from tests.support.wasmetool_run import run_wasmetool

pytestmark = pytest.mark.integration


def _env(compiled_filters: Callable[[str], Path], upstreams: dict[str, Any]) -> Env:
    return Env(wasm=compiled_filters, upstream=upstreams["upstream"].url,
               callout=upstreams["callout"].url)


def _send(port: int, case: Case) -> list[Any]:
    if case.concurrent:
        return send_concurrently(port, case.requests)
    return send_all(port, case.requests, keep_alive=case.keep_alive)


def _through_envoy(case: Case, env: Env, workdir: Path) -> tuple[list[Any], str]:
    with run_envoy(case.setup(env), workdir) as envoy:
        replies = _send(envoy.port, case)
        assert envoy.alive(), "envoy died during the case"
        return replies, envoy.logs()


def _envoy_normalised(case: Case, env: Env, workdir: Path,
                      cache: dict[str, Any]) -> list[dict[str, Any]]:
    if case.name not in cache:
        replies, log = _through_envoy(case, env, workdir)
        case.check(replies, log)
        cache[case.name] = [normalise(x) for x in replies]
    return cache[case.name]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_envoy(case: Case, compiled_filters: Callable[[str], Path], upstreams: dict[str, Any],
               envoy_results: dict[str, Any], tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in case.process_env.items():
        monkeypatch.setenv(key, value)
    envoy_results.pop(case.name, None)
    _envoy_normalised(case, _env(compiled_filters, upstreams), tmp_path, envoy_results)


def _wasmetool_params() -> list[Any]:
    params = []
    for case in CASES:
        marks = []
        if case.xfail_wasmetool:
            marks.append(pytest.mark.xfail(strict=True, reason=case.xfail_wasmetool))
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


@pytest.mark.parametrize("case", _wasmetool_params())
def test_wasmetool(case: Case, compiled_filters: Callable[[str], Path],
                   upstreams: dict[str, Any], envoy_results: dict[str, Any],
                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in case.process_env.items():
        monkeypatch.setenv(key, value)
    env = _env(compiled_filters, upstreams)
    expected = _envoy_normalised(case, env, tmp_path / "envoy", envoy_results)
    with run_wasmetool(case.setup(env), tmp_path / "wasmetool") as proxy:
        replies = _send(proxy.port, case)
        assert proxy.alive(), "wasmetool run died during the case"
        log = proxy.logs()
    case.check(replies, log)
    assert [normalise(x) for x in replies] == expected
