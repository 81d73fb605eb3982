"""pytest plugin (entry point ``pytest11``: loaded wherever wasmetool is installed).

Point it at a filter with ``--wasmetool-filter`` or the ini option ``wasmetool_filter``
(a .wasm file, a local store ref, or a project directory with wasmetool.toml, which is
built once per session through the build cache), then ask for:

* ``http_filter`` - a fresh :class:`~wasmetool.testing.HttpEmulator` for each test;
* ``http_stream`` - a fresh stream (:class:`~wasmetool.testing.Exchange`) on it;
* ``tcp_filter`` / ``root_filter`` - the same for network filters and singletons;
* ``wasmetool_module`` - the filter itself (bytes, source, root ids), once per session;
* ``wasmetool_build`` - ``build(path_or_ref)`` for tests that need several filters.

``@pytest.mark.wasmetool(configuration=..., root_id=..., strict=True, ...)`` passes
emulator options to the fixtures. A failing test shows a header diff for
``headers == {...}`` comparisons and the tail of the call trace of the emulators it made.
Nothing heavy is imported until a fixture is used.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_START = pytest.StashKey[int]()


@dataclass(frozen=True)
class FilterModule:
    wasm: bytes
    source: str
    root_ids: list[str]

    @property
    def root_id(self) -> str:
        return self.root_ids[0] if self.root_ids else ""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wasmetool", "proxy-wasm filter tests (wasmetool)")
    group.addoption("--wasmetool-filter", default=None, metavar="WASM|REF|PROJECT",
                    help="The filter the http_filter/http_stream fixtures load.")
    parser.addini("wasmetool_filter", "The filter the wasmetool fixtures load (a .wasm, a "
                  "store ref or a project directory), relative to the rootdir.", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "wasmetool(**options): options for the wasmetool "
                            "emulator fixtures (configuration, root_id, vm_id, strict, ...)")


def _resolve(target: str, base: Path) -> FilterModule:
    from wasmetool.testing.root import read_module

    path = (base / target) if not Path(target).is_absolute() else Path(target)
    if path.is_dir():
        from wasmetool.testing.project import build_project

        return FilterModule(*build_project(path, None))
    wasm, source, root_ids = read_module(path if path.is_file() else target)
    return FilterModule(wasm, source, root_ids)


class _Builds:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.done: dict[str, FilterModule] = {}

    def __call__(self, target: str | Path) -> FilterModule:
        key = str(target)
        if key not in self.done:
            self.done[key] = _resolve(key, self.base)
        return self.done[key]


@pytest.fixture(scope="session")
def wasmetool_build(pytestconfig: pytest.Config) -> _Builds:
    """``build(target)`` -> FilterModule: a .wasm, a store ref, or a project directory
    (built through the build cache); each target once per session."""
    return _Builds(Path(str(pytestconfig.rootpath)))


@pytest.fixture(scope="session")
def wasmetool_module(pytestconfig: pytest.Config, wasmetool_build: _Builds) -> FilterModule:
    """The filter named by --wasmetool-filter / wasmetool_filter, loaded once."""
    target = pytestconfig.getoption("--wasmetool-filter") or pytestconfig.getini(
        "wasmetool_filter")
    if not target:
        pytest.fail("no filter: pass --wasmetool-filter WASM|REF|PROJECT or set "
                    "wasmetool_filter in the pytest ini options", pytrace=False)
    return wasmetool_build(target)


def _options(request: pytest.FixtureRequest, module: FilterModule) -> dict[str, Any]:
    options: dict[str, Any] = {"root_id": module.root_id, "source": module.source,
                               "name": Path(module.source).stem}
    for mark in reversed(list(request.node.iter_markers("wasmetool"))):
        options.update(mark.kwargs)
    options.pop("filter", None)
    return options


def _module_for(request: pytest.FixtureRequest, builds: _Builds) -> FilterModule:
    mark = request.node.get_closest_marker("wasmetool")
    if mark is not None and "filter" in mark.kwargs:
        return builds(mark.kwargs["filter"])
    return request.getfixturevalue("wasmetool_module")


@pytest.fixture
def http_filter(request: pytest.FixtureRequest, wasmetool_build: _Builds) -> Any:
    """A fresh HttpEmulator with the session's filter (a new VM: nothing carries over)."""
    from wasmetool.testing import HttpEmulator

    module = _module_for(request, wasmetool_build)
    emu = HttpEmulator(module.wasm, **_options(request, module))
    yield emu
    emu.close()


@pytest.fixture
def http_stream(http_filter: Any) -> Any:
    """A fresh stream on ``http_filter``: drive it step by step."""
    return http_filter.new_exchange()


@pytest.fixture
def tcp_filter(request: pytest.FixtureRequest, wasmetool_build: _Builds) -> Any:
    from wasmetool.testing import TcpEmulator

    module = _module_for(request, wasmetool_build)
    emu = TcpEmulator(module.wasm, **_options(request, module))
    yield emu
    emu.close()


@pytest.fixture
def root_filter(request: pytest.FixtureRequest, wasmetool_build: _Builds) -> Any:
    from wasmetool.testing import RootEmulator

    module = _module_for(request, wasmetool_build)
    emu = RootEmulator(module.wasm, **_options(request, module))
    yield emu
    emu.close()


# ----------------------------------------------------------------------------- reports
def _is_headers(value: Any) -> bool:
    root = sys.modules.get("wasmetool.testing.root")
    return root is not None and isinstance(value, root.Headers)


def _header_lines(value: Any) -> list[str]:
    if isinstance(value, dict):
        items = list(value.items())
    else:
        items = list(value)
    out = []
    for k, v in items:
        k = k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k)
        v = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        out.append(f"{k.lower()}: {v}")
    return sorted(out)


def _is_body(value: Any) -> bool:
    root = sys.modules.get("wasmetool.testing.root")
    return root is not None and isinstance(value, root.Body)


def _body_diff(left: Any, right: Any) -> list[str] | None:
    import difflib

    if not all(isinstance(x, bytes | str) for x in (left, right)):
        return None
    texts = [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in (left, right)]
    diff = list(difflib.unified_diff(texts[1].splitlines(), texts[0].splitlines(),
                                     "expected", "actual", lineterm="", n=3))
    if len(texts[0].splitlines()) <= 1 and len(texts[1].splitlines()) <= 1:
        return ["bodies differ:", f"  expected: {texts[1]!r}", f"  actual:   {texts[0]!r}"]
    return ["bodies differ (- expected, + actual):", *diff[2:]]


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: Any,
                              right: Any) -> list[str] | None:
    if op == "==" and (_is_body(left) or _is_body(right)):
        return _body_diff(left, right)
    if op != "==" or not (_is_headers(left) or _is_headers(right)):
        return None
    if not all(isinstance(x, dict | list) for x in (left, right)):
        return None
    import difflib

    if _is_headers(left) and isinstance(right, dict):
        left = left.as_dict()
    elif _is_headers(right) and isinstance(left, dict):
        right = right.as_dict()
    diff = list(difflib.unified_diff(_header_lines(right), _header_lines(left),
                                     "expected", "actual", lineterm="", n=99))
    return ["headers differ (- expected, + actual):", *diff[2:]]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    root = sys.modules.get("wasmetool.testing.root")
    item.stash[_START] = root.last_serial() if root is not None else 0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    root = sys.modules.get("wasmetool.testing.root")
    if root is None:
        return
    start = item.stash.get(_START, 0)
    for serial, ref in list(root.RECENT):
        emu = ref()
        if serial <= start or emu is None or emu.tracer is None or not emu.tracer.events:
            continue
        report.sections.append((f"wasmetool trace (emulator {serial}, last calls)",
                                emu.trace_tail(30)))
