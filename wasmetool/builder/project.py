"""``wasmetool.toml``: the per-project file `init` writes and `build` reads.

    language = "tinygo"
    platform = "istio"
    platform_version = "1.28"
    root_id = "hello_root"

Only ``language`` is required by `build`; unknown keys are kept for other tools.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from wasmetool.errors import WasmetoolError

PROJECT_FILE = "wasmetool.toml"


@dataclass(frozen=True)
class ProjectFile:
    language: str
    platform: str | None = None
    platform_version: str | None = None
    root_id: str | None = None

    def to_toml(self) -> str:
        lines = ["# wasmetool project: `wasmetool build` reads the language from here.\n"]
        for key in ("language", "platform", "platform_version", "root_id"):
            value = getattr(self, key)
            if value is not None:
                # JSON string escaping is valid TOML basic-string escaping.
                lines.append(f"{key} = {json.dumps(value)}\n")
        return "".join(lines)

    def write(self, directory: Path) -> Path:
        path = directory / PROJECT_FILE
        path.write_text(self.to_toml(), encoding="utf-8")
        return path


def read_project_file(src: Path) -> ProjectFile:
    """The project file of ``src``; a clear error when it is missing or invalid."""
    path = src / PROJECT_FILE
    if not path.is_file():
        raise WasmetoolError(
            f"no {PROJECT_FILE} in {src}, so the language is unknown",
            "name it: wasmetool build LANGUAGE SRC -t REF (or create the project with wasmetool init)",
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise WasmetoolError(f"{path} is not valid TOML: {exc}", "fix or delete the file") from exc
    language = data.get("language")
    if not isinstance(language, str) or not language:
        raise WasmetoolError(f"{path} has no language = \"...\" entry",
                             "add one, e.g. language = \"rust\"")

    def text(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) else None

    return ProjectFile(language, text("platform"), text("platform_version"), text("root_id"))
