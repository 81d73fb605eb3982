"""wasmetool/ has no import circle, and its three rooms import one way (docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.import_graph import ImportGraph, build

PACKAGE = Path(__file__).resolve().parents[2] / "wasmetool"


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return build(PACKAGE)


def test_no_import_circle_in_wasmetool(graph: ImportGraph) -> None:
    # the walk saw the whole package and its imports
    assert {"wasmetool.host.vm", "wasmetool.proxy.http", "wasmetool.testing.root",
            "wasmetool.store.layout", "wasmetool.cli.main"} <= set(graph.files)
    assert "wasmetool.host.hostcalls.registry" in graph.edges["wasmetool.host.hostcalls.shared"]
    circles = graph.cycles()
    assert not circles, "import circles in wasmetool/:\n  " + "\n  ".join(
        graph.describe(c) for c in circles)


@pytest.mark.parametrize(("lower", "upper"), [
    ("wasmetool.host", "wasmetool.proxy"),
    ("wasmetool.host", "wasmetool.testing"),
    ("wasmetool.host", "wasmetool.cli"),
    ("wasmetool.proxy", "wasmetool.testing"),
    ("wasmetool.testing", "wasmetool.proxy"),
    ("wasmetool.proxy", "wasmetool.cli"),
    ("wasmetool.testing", "wasmetool.cli"),
    ("wasmetool.store", "wasmetool.registry"),
    ("wasmetool.oci", "wasmetool.store"),
])
def test_layer_does_not_import_upward(graph: ImportGraph, lower: str, upper: str) -> None:
    def inside(module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    wrong = sorted(f"{m} imports {t} ({graph.files[m].name}:{line})"
                   for m, targets in graph.edges.items() if inside(m, lower)
                   for t, line in targets.items() if inside(t, upper))
    assert not wrong, f"{lower} must not import {upper}:\n  " + "\n  ".join(wrong)


def test_the_walk_finds_circles_through_function_and_type_checking_imports(
        tmp_path: Path) -> None:
    pkg = tmp_path / "wasmetool"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from wasmetool.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import c\n    return c\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\n"
                              "if TYPE_CHECKING:\n    import wasmetool.a\n")
    (pkg / "d.py").write_text("import wasmetool.a\nimport os\n")        # not in the circle
    g = build(pkg)
    assert g.cycles() == [["wasmetool.a", "wasmetool.sub.b", "wasmetool.c", "wasmetool.a"]]
    text = g.describe(g.cycles()[0])
    assert "wasmetool.sub.b imports wasmetool.c (b.py:2)" in text
    assert "wasmetool.c imports wasmetool.a (c.py:3)" in text
    (pkg / "c.py").write_text("x = 1\n")
    assert build(pkg).cycles() == []
