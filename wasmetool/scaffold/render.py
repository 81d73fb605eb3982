"""Copy a language template into a new project directory, safely.

Rules (shared with the template authors, see wasmetool/builder/base.py):
``{{NAME}}`` and ``{{ROOT_ID}}`` are replaced in text files (UTF-8 without NUL
bytes) and in file names; every other byte is copied as it is. Every rendered
path is checked before anything is written: it must be relative, without ``..``,
and must resolve inside the destination (also through symlinks already there).
Templates may not contain symlinks.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from wasmetool.builder.base import IGNORED_DIRS
from wasmetool.errors import WasmetoolError

TEMPLATES_ROOT = Path(__file__).resolve().parent.parent / "templates"
PLACEHOLDERS = ("{{NAME}}", "{{ROOT_ID}}")
_ROOT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


@dataclass(frozen=True)
class TemplateFile:
    relative: str  # POSIX path inside the template, may contain placeholders
    data: bytes
    executable: bool = False


def project_name(directory: Path) -> str:
    """The project name from a directory name: ``My Filter`` -> ``my-filter``.

    Valid as a Cargo package, npm package, Go module path and file name.
    """
    name = re.sub(r"[^a-z0-9]+", "-", directory.resolve().name.lower()).strip("-")[:64].strip("-")
    if not name:
        return "filter"
    if name[0].isdigit():
        name = f"filter-{name}"
    return name


def check_root_id(root_id: str) -> str:
    if not _ROOT_ID.match(root_id):
        raise WasmetoolError(
            f"root id '{root_id}' is not allowed",
            "use 1-128 letters, digits, '_', '.' or '-'",
        )
    return root_id


def template_dir(language: str, root: Path | None = None) -> Path:
    path = (root or TEMPLATES_ROOT) / language
    if not path.is_dir():
        raise WasmetoolError(f"no template for {language} in this wasmetool ({path} is missing)",
                             "reinstall wasmetool")
    return path


def load_template(directory: Path) -> list[TemplateFile]:
    """Every file of a template directory (build products and dependency dirs skipped)."""
    files: list[TemplateFile] = []
    for root, dirs, names in os.walk(directory, followlinks=False):
        root_path = Path(root)
        for d in list(dirs):
            if (root_path / d).is_symlink():
                raise WasmetoolError(f"template {directory} contains a symlink: {d}",
                                     "templates may hold only regular files")
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS)
        for name in sorted(names):
            path = root_path / name
            if path.is_symlink() or not path.is_file():
                raise WasmetoolError(f"template {directory} contains a non-regular file: "
                                     f"{path.relative_to(directory)}",
                                     "templates may hold only regular files")
            relative = path.relative_to(directory).as_posix()
            files.append(TemplateFile(relative, path.read_bytes(),
                                      executable=os.access(path, os.X_OK)))
    return files


def _substitute(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def safe_destination(dest: Path, relative: str) -> Path:
    """``dest/relative`` if it stays inside ``dest``; WasmetoolError otherwise."""
    pure = PurePosixPath(relative)
    if (not relative or pure.is_absolute() or "\\" in relative or ".." in pure.parts
            or any(part in ("", ".") for part in relative.split("/"))):
        raise WasmetoolError(f"template path '{relative}' would write outside the project",
                             "the template is broken; report it")
    target = dest.joinpath(*pure.parts)
    base = dest.resolve()
    if not target.resolve().is_relative_to(base):
        raise WasmetoolError(f"template path '{relative}' resolves outside {dest}",
                             "remove the symlink in the project directory or pick another one")
    return target


def render(files: list[TemplateFile], dest: Path, values: dict[str, str]) -> list[Path]:
    """Write ``files`` into ``dest`` with placeholders replaced; returns the written paths.

    All paths are checked before the first byte is written.
    """
    planned: list[tuple[Path, bytes, bool]] = []
    for item in files:
        relative = _substitute(item.relative, values)
        target = safe_destination(dest, relative)
        data = item.data
        if _is_text(data):
            data = _substitute(data.decode("utf-8"), values).encode("utf-8")
        planned.append((target, data, item.executable))
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for target, data, executable in planned:
        target.parent.mkdir(parents=True, exist_ok=True)
        # re-check after mkdir: a parent created just now cannot be a link, but be strict
        if not target.parent.resolve().is_relative_to(dest.resolve()):
            raise WasmetoolError(f"{target} resolves outside {dest}", "pick another directory")
        if target.is_symlink():
            target.unlink()
        target.write_bytes(data)
        if executable:
            target.chmod(target.stat().st_mode | 0o111)
        written.append(target)
    return written
