"""A filter project's tests: its *.test.yaml files, and its build (through the build cache)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

SKIP_DIRS = {".git", "node_modules", "target", "build", ".venv", "__pycache__"}


def project_test_files(project: Path) -> list[Path]:
    """A project's test files: *.test.yaml / *.test.yml anywhere below it (skipping build
    output and dependency directories), sorted."""
    found = []
    for pattern in ("*.test.yaml", "*.test.yml"):
        for path in project.rglob(pattern):
            if not SKIP_DIRS & set(path.relative_to(project).parts[:-1]):
                found.append(path)
    return sorted(found)


def build_project(project: Path, tag: str | None) -> tuple[bytes, str, list[str]]:
    """Build the project through the build cache; (module bytes, ref, root ids)."""
    from wasmetool.builder.pipeline import BuildRequest, run_build
    from wasmetool.builder.project import read_project_file

    read_project_file(project)            # a clear error when the project file is bad
    name = re.sub(r"[^a-z0-9._-]+", "-", project.resolve().name.lower()).strip("-._") or "filter"
    result = run_build(BuildRequest(src=project, tag=tag or f"wasmetool-test/{name}:latest"))
    image = result.image
    where = "cached" if result.cached else f"{result.seconds:.1f} s"
    print(f"built {image.ref} ({result.language}, {where})", file=sys.stderr)
    return image.wasm_bytes(), str(image.ref), list(image.runtime_config.root_ids or [])
