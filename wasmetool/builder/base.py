"""The contract between `wasmetool build` and the per-language builders.

A builder knows how to compile one language's filter project into a single
proxy-wasm module, either with compilers installed on this machine
(:meth:`LanguageBuilder.build_local`) or inside wasmetool's toolchain image
for the language (:meth:`LanguageBuilder.container_spec`, run by
``wasmetool.builder.container``; images: ``wasmetool.builder.toolchain_images``).
Everything else - choosing the route, the build cache, validating the module,
storing it with its runtime-config, progress and output - is done once, by the
framework in ``wasmetool.builder.pipeline``; builders stay small.

Registry conventions (``LANGUAGES`` below):

* a language ``NAME`` lives in the module ``wasmetool.builder.NAME`` which defines
  the class named in ``LANGUAGES`` (``<Name>Builder``: ``RustBuilder``,
  ``CppBuilder``, ``TinyGoBuilder``, ``AssemblyScriptBuilder``); the class takes
  no constructor arguments;
* the module is imported only when that language is used, so a missing
  optional dependency of one builder never breaks the others or ``--help``;
* the class's ``name`` and ``aliases`` must equal the registry entry (a unit
  test checks this).

Template conventions (used by ``wasmetool init``): the files of
``wasmetool/templates/NAME/`` are copied as they are, except that in text files
``{{NAME}}`` becomes the project name (the directory name, lower-cased, every run
of characters outside ``[a-z0-9]`` turned into ``-``; valid as a Cargo package,
npm package, Go module path and file name) and ``{{ROOT_ID}}`` becomes the root
id (``--root-id``, default :data:`DEFAULT_ROOT_ID`; restricted to
``[A-Za-z0-9_.-]`` so it is safe inside any string literal). ``init`` writes
``wasmetool.toml`` itself (language, platform, platform_version, root_id); a
template needs nothing more than its files.

Container conventions: the source directory is mounted at :data:`CONTAINER_SRC`
and an empty host output directory at :data:`CONTAINER_OUT`; ``output`` must be a
path under :data:`CONTAINER_OUT`.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol, runtime_checkable

from wasmetool.errors import WasmetoolError

DEFAULT_ROOT_ID = "hello_root"
CONTAINER_SRC = "/src"
CONTAINER_OUT = "/out"

# Directories never hashed as build inputs (build products, dependency caches, VCS).
IGNORED_DIRS = frozenset(
    {".git", ".hg", ".svn", "target", "node_modules", "build", "out", "dist", ".cache",
     "__pycache__", ".wasmetool"}
)


class BuildFailed(WasmetoolError):
    """The compiler (or another build tool) failed.

    Its own output has already reached the user exactly as it printed it; this
    error only adds the one-line summary (``error: ...``) and exit code 1.
    """


@dataclass(frozen=True)
class ContainerSpec:
    """Exactly what ``docker run`` would do to build the filter in a container."""

    image: str
    command: list[str]
    workdir: str
    env: dict[str, str]
    # (host path or named volume, container path, read_only). A source that is an
    # absolute path is a bind mount; anything else is a named Docker volume.
    mounts: list[tuple[str, str, bool]]
    output: str  # path of the produced .wasm inside the container, under CONTAINER_OUT
    user: str | None = None  # "uid:gid" so files written into the source stay the user's
    labels: dict[str, str] = field(default_factory=dict)

    def docker_run_argv(self) -> list[str]:
        """The equivalent ``docker run`` command line (for display and --verbose)."""
        argv = ["docker", "run", "--rm", "-w", self.workdir]
        if self.user:
            argv += ["--user", self.user]
        for key, value in sorted(self.env.items()):
            argv += ["-e", f"{key}={value}"]
        for source, target, read_only in self.mounts:
            argv += ["-v", f"{source}:{target}" + (":ro" if read_only else "")]
        return argv + [self.image, *self.command]

    def host_output(self, out_dir: Path) -> Path:
        """Where ``output`` appears on the host, given the directory mounted at /out."""
        inner = PurePosixPath(self.output)
        relative = inner.relative_to(CONTAINER_OUT)  # ValueError if not under /out
        return out_dir.joinpath(*relative.parts)


@runtime_checkable
class CommandRunner(Protocol):
    """Runs one build command. Implemented by the framework (``build.runner``).

    The command's output reaches the user as the tool printed it (streamed, or
    replayed in full if a progress display was showing); a non-zero exit raises
    :class:`BuildFailed`; a missing executable raises :class:`WasmetoolError`.
    ``env`` entries are added to (or override) the current environment.
    """

    def __call__(self, argv: Sequence[str], *, cwd: Path,
                 env: Mapping[str, str] | None = None) -> None: ...


@runtime_checkable
class LanguageBuilder(Protocol):
    name: str  # registry key and template directory, e.g. "tinygo"
    aliases: tuple[str, ...]  # e.g. ("go",)

    def missing_local_tools(self, src: Path) -> list[str]:
        """Human hints for each missing local tool ("install Go >= 1.24 ..."); [] = complete."""
        ...

    def toolchain_id(self) -> str:
        """Compiler and SDK versions as one string; part of the build-cache key."""
        ...

    def cache_inputs(self, src: Path) -> list[Path]:
        """Every file whose content changes the module: sources, manifests, lock files."""
        ...

    def build_local(self, src: Path, out: Path, run: CommandRunner) -> None:
        """Compile ``src`` with local tools and write the module to ``out``."""
        ...

    def container_spec(self, src: Path, out_dir: Path) -> ContainerSpec:
        """The container build of ``src`` whose product lands in ``out_dir``."""
        ...


@dataclass(frozen=True)
class LanguageEntry:
    name: str
    module: str
    class_name: str
    aliases: tuple[str, ...]
    display: str


LANGUAGES: dict[str, LanguageEntry] = {
    entry.name: entry
    for entry in (
        LanguageEntry("cpp", "wasmetool.builder.cpp", "CppBuilder", ("c++",), "C++"),
        LanguageEntry("rust", "wasmetool.builder.rust", "RustBuilder", (), "Rust"),
        LanguageEntry("assemblyscript", "wasmetool.builder.assemblyscript",
                      "AssemblyScriptBuilder", ("as",), "AssemblyScript"),
        LanguageEntry("tinygo", "wasmetool.builder.tinygo", "TinyGoBuilder", ("go",),
                      "Go (upstream Go, GOOS=wasip1)"),
    )
}


def canonical_language(name: str) -> str:
    """``go`` -> ``tinygo``; unknown names -> WasmetoolError listing the choices."""
    key = name.strip().lower()
    for entry in LANGUAGES.values():
        if key == entry.name or key in entry.aliases:
            return entry.name
    raise WasmetoolError(
        f"unknown language '{name}'",
        "choose one of: " + ", ".join(language_choices()),
    )


def language_choices() -> list[str]:
    names: list[str] = []
    for entry in LANGUAGES.values():
        names.append(entry.name)
        names.extend(entry.aliases)
    return names


def get_builder(name: str) -> LanguageBuilder:
    """The builder for a language name or alias (its module is imported now)."""
    entry = LANGUAGES[canonical_language(name)]
    try:
        module = importlib.import_module(entry.module)
    except ModuleNotFoundError as exc:
        if exc.name == entry.module:
            raise WasmetoolError(
                f"this wasmetool has no {entry.display} builder ({entry.module} is missing)",
                "reinstall wasmetool",
            ) from exc
        raise
    builder = getattr(module, entry.class_name)()
    return builder


# ---- helpers shared by builders -------------------------------------------------------------


def find_tool(name: str, *extra_dirs: str | os.PathLike[str]) -> str | None:
    """An executable on PATH, else in one of ``extra_dirs`` (e.g. /usr/local/go/bin)."""
    found = shutil.which(name)
    if found:
        return found
    for directory in extra_dirs:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def tool_output(argv: Sequence[str], cwd: Path | None = None,
                env: Mapping[str, str] | None = None) -> str:
    """First line of stdout (or stderr) of a version command; '' if it cannot run."""
    full_env = None if env is None else {**os.environ, **env}
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60,
                              cwd=cwd, env=full_env, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else ""


def files_under(src: Path, suffixes: Iterable[str] = (), names: Iterable[str] = (),
                ignored_dirs: frozenset[str] = IGNORED_DIRS) -> list[Path]:
    """Files below ``src`` matching a suffix or exact name, skipping build/dependency dirs.

    Sorted, so the build-cache key does not depend on directory order.
    """
    suffix_set = tuple(suffixes)
    name_set = set(names)
    found: list[Path] = []
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d not in ignored_dirs and not d.startswith("."))
        for filename in files:
            if filename in name_set or (suffix_set and filename.endswith(suffix_set)):
                found.append(Path(root) / filename)
    return sorted(found)


def host_user() -> str | None:
    """"uid:gid" of this process, for containers writing into the user's source tree."""
    if hasattr(os, "getuid"):
        return f"{os.getuid()}:{os.getgid()}"
    return None


def volume_name(prefix: str, *parts: str) -> str:
    """A stable named-volume name such as ``wasmetool-cargo-registry``."""
    suffix = "-".join(parts)
    name = f"wasmetool-{prefix}" + (f"-{suffix}" if suffix else "")
    if len(name) > 60:
        name = name[:48] + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return name
