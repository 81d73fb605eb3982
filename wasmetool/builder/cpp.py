"""Build C++ (and C) proxy-wasm filters with clang for ``wasm32-wasi``.

The filter is every ``.cc``/``.cpp``/``.cxx``/``.c`` file of the project,
compiled and linked in one clang++ call as a WASI *reactor* (``_initialize``
runs static constructors, which register the filter's context factories) with
the project directory on the include path (the template ships wasmetool's
header-only SDK in ``proxy_wasm/``).

Local toolchains, tried in this order:

* a wasi-sdk (``WASI_SDK_PATH``, else ``/opt/wasi-sdk``): its clang++ and sysroot;
* the system ``clang++`` with wasi-libc, libc++ and compiler-rt for wasm32
  installed where Debian/Ubuntu put them (``/usr/lib/wasm32-wasi``), and
  ``wasm-ld`` (lld).

The container route runs the system route's command in wasmetool's cpp
toolchain image (the same Debian packages: ``toolchains/cpp.Dockerfile``).
"""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from wasmetool.builder.base import (
    CONTAINER_OUT,
    CONTAINER_SRC,
    CommandRunner,
    ContainerSpec,
    files_under,
    host_user,
    tool_output,
)
from wasmetool.builder.toolchain_memo import path_and_tools, remembered
from wasmetool.errors import WasmetoolError

SOURCE_SUFFIXES = (".cc", ".cpp", ".cxx", ".c")
HEADER_SUFFIXES = (".h", ".hh", ".hpp", ".hxx", ".inc", ".ipp")
TARGET = "wasm32-wasi"
# -fno-exceptions: no C++ exception runtime for wasm32-wasi; -mexec-model=reactor:
# a library the proxy calls into (_initialize instead of _start).
FLAGS = ("-O2", "-std=c++17", "-fno-exceptions", "-mexec-model=reactor")
LINK_FLAGS = ("-Wl,--strip-all", "-Wl,--export=malloc", "-Wl,--export=free")
DEBIAN_WASI_LIBDIR = Path("/usr/lib/wasm32-wasi")
DEBIAN_WASI_INCLUDE = Path("/usr/include/wasm32-wasi")
DEFAULT_WASI_SDK = Path("/opt/wasi-sdk")

APT_PACKAGES = "clang lld wasi-libc libc++-dev-wasm32 libclang-rt-dev-wasm32"


@dataclass(frozen=True)
class CppToolchain:
    kind: str                  # "wasi-sdk" or "system"
    clang: str
    sysroot: str | None = None

    def compile_argv(self, sources: list[str], include_dir: str, output: str) -> list[str]:
        argv = [self.clang, f"--target={TARGET}"]
        if self.sysroot:
            argv.append(f"--sysroot={self.sysroot}")
        return [*argv, *FLAGS, f"-I{include_dir}", *sources, *LINK_FLAGS, "-o", output]


def _wasi_sdk() -> Path | None:
    configured = os.environ.get("WASI_SDK_PATH")
    for root in ([Path(configured)] if configured else []) + [DEFAULT_WASI_SDK]:
        if (root / "bin" / "clang++").is_file() and (root / "share" / "wasi-sysroot").is_dir():
            return root
    return None


@dataclass(frozen=True)
class Discovery:
    toolchain: CppToolchain | None
    missing: tuple[str, ...]
    looked_at: tuple[str, ...] = ()  # files whose change invalidates this discovery


def discover() -> Discovery:
    sdk = _wasi_sdk()
    if sdk is not None:
        return Discovery(CppToolchain("wasi-sdk", str(sdk / "bin" / "clang++"),
                                      str(sdk / "share" / "wasi-sysroot")), ())
    missing: list[str] = []
    clang = shutil.which("clang++")
    if clang is None:
        missing.append(f"clang++ for wasm32-wasi (Debian/Ubuntu: apt-get install {APT_PACKAGES}; "
                       "or a wasi-sdk, with WASI_SDK_PATH set to it)")
    if shutil.which("wasm-ld") is None:
        missing.append("wasm-ld, the WebAssembly linker (Debian/Ubuntu: apt-get install lld)")
    if not (DEBIAN_WASI_LIBDIR / "libc.a").is_file() or not (DEBIAN_WASI_INCLUDE / "stdio.h").is_file():
        missing.append("wasi-libc for wasm32-wasi (Debian/Ubuntu: apt-get install wasi-libc)")
    if not (DEBIAN_WASI_LIBDIR / "libc++.a").is_file():
        missing.append("libc++ for wasm32-wasi (Debian/Ubuntu: apt-get install libc++-dev-wasm32)")
    looked_at: tuple[str, ...] = ()
    if clang is not None:
        builtins = tool_output([clang, f"--target={TARGET}", "-print-libgcc-file-name"])
        if builtins:
            looked_at = (builtins, str(Path(builtins).parent))
        if not builtins or not Path(builtins).is_file():
            missing.append("compiler-rt builtins for wasm32 "
                           "(Debian/Ubuntu: apt-get install libclang-rt-dev-wasm32)")
    if missing or clang is None:
        return Discovery(None, tuple(missing), looked_at)
    return Discovery(CppToolchain("system", clang), (), looked_at)


# ---- remembering the discovery --------------------------------------------------------------
# Finding the toolchain runs clang twice (~0.1 s), which would dominate a
# build-cache hit. The result is kept in the cache directory together with the
# state (mtime, size, inode) of everything it depends on: every PATH directory
# (a tool installed or removed changes it), the compiler, the wasm32 libraries
# and headers, the wasi-sdk locations. Any change there, or in PATH or
# WASI_SDK_PATH, runs the discovery again.

REMEMBERED_ENV = ("PATH", "WASI_SDK_PATH")


def _watched_paths() -> list[str]:
    watched = path_and_tools(("clang++", "wasm-ld"))
    sdks = [Path(os.environ["WASI_SDK_PATH"])] if os.environ.get("WASI_SDK_PATH") else []
    for sdk in [*sdks, DEFAULT_WASI_SDK]:
        watched += [str(sdk / "bin" / "clang++"), str(sdk / "share" / "wasi-sysroot")]
    watched += [str(DEBIAN_WASI_LIBDIR), str(DEBIAN_WASI_INCLUDE)]
    watched += [str(DEBIAN_WASI_LIBDIR / name) for name in ("libc.a", "libc++.a")]
    watched.append(str(DEBIAN_WASI_INCLUDE / "stdio.h"))
    return watched


def _probe() -> dict[str, Any]:
    discovery = discover()
    toolchain = discovery.toolchain
    return {"toolchain": asdict(toolchain) if toolchain else None,
            "missing": list(discovery.missing), "looked_at": list(discovery.looked_at),
            "clang_version": tool_output([toolchain.clang, "--version"]) if toolchain else ""}


def remembered_probe() -> dict[str, Any]:
    """:func:`_probe`, answered from the cache directory while nothing it depends on changed."""
    return remembered("cpp", REMEMBERED_ENV, _watched_paths, _probe, __file__)


def project_sources(src: Path) -> list[Path]:
    return files_under(src, suffixes=SOURCE_SUFFIXES)


class CppBuilder:
    name = "cpp"
    aliases: tuple[str, ...] = ("c++",)

    @functools.cached_property
    def _probe(self) -> dict[str, Any]:
        return remembered_probe()

    @functools.cached_property
    def _discovery(self) -> Discovery:
        toolchain = self._probe["toolchain"]
        return Discovery(CppToolchain(**toolchain) if toolchain else None,
                         tuple(self._probe["missing"]))

    def toolchain(self) -> CppToolchain | None:
        return self._discovery.toolchain

    def missing_local_tools(self, src: Path) -> list[str]:
        return list(self._discovery.missing)

    def toolchain_id(self) -> str:
        toolchain = self._discovery.toolchain
        if toolchain is None:
            return "cpp:none"
        return " | ".join(["cpp", toolchain.kind, self._probe["clang_version"],
                           toolchain.sysroot or str(DEBIAN_WASI_LIBDIR),
                           " ".join((*FLAGS, *LINK_FLAGS))])

    def cache_inputs(self, src: Path) -> list[Path]:
        return files_under(src, suffixes=SOURCE_SUFFIXES + HEADER_SUFFIXES)

    def _sources(self, src: Path) -> list[Path]:
        sources = project_sources(src)
        if not sources:
            raise WasmetoolError(f"no C or C++ sources (.cc, .cpp, .cxx, .c) under {src}",
                                 "point wasmetool build at the filter's directory")
        return sources

    def build_local(self, src: Path, out: Path, run: CommandRunner) -> None:
        toolchain = self._discovery.toolchain
        if toolchain is None:
            raise WasmetoolError("no local C++ toolchain for wasm32-wasi",
                                 "; ".join(self._discovery.missing))
        sources = [str(p.relative_to(src)) for p in self._sources(src)]
        out.parent.mkdir(parents=True, exist_ok=True)
        run(toolchain.compile_argv(sources, ".", str(out.resolve())), cwd=src)

    def container_spec(self, src: Path, out_dir: Path) -> ContainerSpec:
        """The system route (same clang++ command) in wasmetool's cpp toolchain image."""
        from wasmetool.builder.toolchain_images import image_name

        sources = [p.relative_to(src).as_posix() for p in self._sources(src)]
        output = f"{CONTAINER_OUT}/filter.wasm"
        return ContainerSpec(
            image=image_name(self.name),
            command=CppToolchain("system", "clang++").compile_argv(sources, ".", output),
            workdir=CONTAINER_SRC,
            env={},
            mounts=[(str(src.resolve()), CONTAINER_SRC, True),
                    (str(out_dir.resolve()), CONTAINER_OUT, False)],
            output=output,
            user=host_user(),
            labels={"org.wasmetool.builder": self.name},
        )
