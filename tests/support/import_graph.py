"""A static import graph of a package, read with ``ast`` (nothing is imported).

Every ``import``/``from ... import`` counts wherever it sits: module top, inside a
function, under ``if TYPE_CHECKING:``. ``from pkg import name`` points at the submodule
``pkg.name`` when there is one, else at ``pkg``; relative imports are resolved against the
importing module. Only modules inside the walked package are nodes.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ImportGraph:
    files: dict[str, Path] = field(default_factory=dict)
    # module -> {imported module: first line that imports it}
    edges: dict[str, dict[str, int]] = field(default_factory=dict)

    def cycles(self) -> list[list[str]]:
        """One shortest circle per strongly connected group, each as [a, b, ..., a]."""
        found = []
        for group in _strongly_connected(self.edges):
            start = min(group)
            found.append(_shortest_cycle(self.edges, group, start))
        return sorted(found)

    def describe(self, cycle: list[str]) -> str:
        steps = []
        for a, b in zip(cycle, cycle[1:], strict=False):
            steps.append(f"{a} imports {b} ({self.files[a].name}:{self.edges[a][b]})")
        return " -> ".join(cycle) + "\n      " + "\n      ".join(steps)


def build(package_dir: Path) -> ImportGraph:
    """The graph of every module under ``package_dir`` (a directory with __init__.py)."""
    root = package_dir.parent
    graph = ImportGraph()
    packages: set[str] = set()
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
            packages.add(".".join(parts))
        graph.files[".".join(parts)] = path
    top = package_dir.name
    for module, path in graph.files.items():
        here = module if module in packages else module.rpartition(".")[0]
        out: dict[str, int] = {}
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in graph.files
                           else source for a in node.names]
            for target in targets:
                if target != top and not target.startswith(top + "."):
                    continue
                resolved = _nearest_module(target, graph.files)
                if resolved is not None and resolved != module:
                    out.setdefault(resolved, node.lineno)
        graph.edges[module] = out
    return graph


def _nearest_module(name: str, files: dict[str, Path]) -> str | None:
    while name and name not in files:
        name = name.rpartition(".")[0]
    return name or None


def _strongly_connected(edges: dict[str, dict[str, int]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative; only groups of two or more modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in edges:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
    return groups


def _shortest_cycle(edges: dict[str, dict[str, int]], group: set[str], start: str) -> list[str]:
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(edges[node]):
            if child not in group:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if child not in came_from:
                came_from[child] = node
                queue.append(child)
    raise AssertionError(f"no cycle through {start} in {sorted(group)}")  # pragma: no cover
