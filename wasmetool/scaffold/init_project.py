"""`wasmetool init`: choose language and platform, then render the template.

Missing choices are asked interactively (questionary, arrow keys) only when
both stdin and stdout are terminals and prompting is not disabled. Otherwise:
the language must be given (clear error), the platform defaults to
:data:`~wasmetool.scaffold.platforms.DEFAULT_PLATFORM` and the version to the
platform's newest line in :data:`~wasmetool.scaffold.platforms.DEFAULT_VERSIONS`.
Nothing ever waits on a closed or redirected stdin.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wasmetool.builder.base import DEFAULT_ROOT_ID, LANGUAGES, canonical_language
from wasmetool.builder.project import ProjectFile
from wasmetool.errors import WasmetoolError
from wasmetool.scaffold import platforms
from wasmetool.scaffold.render import (
    check_root_id,
    load_template,
    project_name,
    render,
    template_dir,
)


@dataclass
class InitRequest:
    directory: Path
    language: str | None = None
    platform: str | None = None
    platform_version: str | None = None
    root_id: str | None = None
    prompt: bool = True  # False with --disable-prompt
    force: bool = False
    templates_root: Path | None = None  # tests point this at a fake template tree


@dataclass
class InitResult:
    directory: Path
    name: str
    language: str
    platform: str
    platform_version: str
    root_id: str
    files: list[Path] = field(default_factory=list)


Chooser = Callable[[str, list[tuple[str, str]], str | None], str]


def stdin_is_interactive() -> bool:
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def questionary_choose(message: str, choices: list[tuple[str, str]], default: str | None) -> str:
    """Arrow-key selection; ``choices`` are (value, label)."""
    import questionary

    options = [questionary.Choice(title=label, value=value) for value, label in choices]
    answer = questionary.select(message, choices=options, default=default).ask()
    if answer is None:  # Ctrl-C / Esc
        raise WasmetoolError("init cancelled", "nothing was written")
    return str(answer)


def _check_destination(directory: Path, force: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise WasmetoolError(f"{directory} exists and is not a directory",
                             "choose a new directory name")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise WasmetoolError(f"{directory} is not empty",
                             "choose an empty or new directory, or pass --force to write into it")


def resolve_choices(request: InitRequest, choose: Chooser | None) -> tuple[str, str, str, str]:
    """(language, platform, version, root_id), prompting through ``choose`` when given."""
    if request.language:
        language = canonical_language(request.language)
    elif choose:
        language = choose("Language of the filter:",
                          [(e.name, f"{e.name:<15} {e.display}") for e in LANGUAGES.values()],
                          None)
    else:
        raise WasmetoolError(
            "no --language given and no terminal to ask on",
            "pass --language " + "|".join(LANGUAGES),
        )

    if request.platform:
        platform = request.platform.strip().lower()
    elif choose:
        platform = choose("Platform it will run on:",
                          [(p, p) for p in platforms.PLATFORMS], platforms.DEFAULT_PLATFORM)
    else:
        platform = platforms.DEFAULT_PLATFORM
    platforms.check_platform(language, platform, None)  # validates the platform name

    version = request.platform_version
    if version is None and choose:
        offered = platforms.offered_versions(language, platform)
        version = choose(f"{platform} version:", [(v, f"{platform} {v}") for v in offered],
                         offered[0])
    target = platforms.check_platform(language, platform, version)

    root_id = check_root_id(request.root_id if request.root_id is not None else DEFAULT_ROOT_ID)
    return language, target.platform, target.version, root_id


def init_project(request: InitRequest, choose: Chooser | None = None) -> InitResult:
    """Create the project. ``choose`` defaults to questionary when a terminal is attached."""
    directory = request.directory
    _check_destination(directory, request.force)
    if choose is None and request.prompt and stdin_is_interactive():
        choose = questionary_choose
    if not request.prompt:
        choose = None
    language, platform, version, root_id = resolve_choices(request, choose)

    files = load_template(template_dir(language, request.templates_root))
    name = project_name(directory)
    # The first missing directory on the way to DIR: what to remove if writing fails.
    created_root = next((p for p in [*reversed(directory.absolute().parents), directory.absolute()]
                         if not p.exists()), None)
    written: list[Path] = []
    try:
        written = render(files, directory, {"{{NAME}}": name, "{{ROOT_ID}}": root_id})
        project = ProjectFile(language, platform, version, root_id)
        written.append(project.write(directory))
    except OSError as exc:
        _undo(created_root, written)
        where = "" if exc.filename in (None, str(directory)) else f"{exc.filename}: "
        raise WasmetoolError(
            f"cannot write the project to {directory}: {where}{exc.strerror or exc}",
            "choose a directory you can write to; nothing was left behind",
        ) from None
    return InitResult(directory, name, language, platform, version, root_id, written)


def _undo(created_root: Path | None, written: list[Path]) -> None:
    """Remove what a failed init wrote: the directories it created, else its files."""
    import shutil

    if created_root is not None:
        shutil.rmtree(created_root, ignore_errors=True)
        return
    for path in written:
        path.unlink(missing_ok=True)
