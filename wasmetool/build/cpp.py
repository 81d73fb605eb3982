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

The container route runs the same command in the official wasi-sdk image
(its compiler from ``$CXX``, its sysroot flags from ``$CXXFLAGS``).
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from wasmetool.build.base import (
    CONTAINER_OUT,
    CONTAINER_SRC,
    CommandRunner,
    ContainerSpec,
    files_under,
    host_user,
    tool_output,
)
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

CONTAINER_IMAGE = "ghcr.io/webassembly/wasi-sdk:wasi-sdk-25"
CONTAINER_CLANG = "/opt/wasi-sdk/bin/clang++"

APT_PACKAGES = "clang lld wasi-libc libc++-dev-wasm32 libclang-rt-dev-wasm32"
INSTALL_HINT = (f"install clang for wasm32-wasi (Debian/Ubuntu: `apt-get install {APT_PACKAGES}`) "
                "or a wasi-sdk (set WASI_SDK_PATH to it)")


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


def discover() -> Discovery:
    sdk = _wasi_sdk()
    if sdk is not None:
        return Discovery(CppToolchain("wasi-sdk", str(sdk / "bin" / "clang++"),
                                      str(sdk / "share" / "wasi-sysroot")), ())
    missing: list[str] = []
    clang = shutil.which("clang++")
    if clang is None:
        missing.append(f"clang++ (Debian/Ubuntu: apt-get install clang); or {INSTALL_HINT}")
    if shutil.which("wasm-ld") is None:
        missing.append("wasm-ld, the WebAssembly linker (Debian/Ubuntu: apt-get install lld)")
    if not (DEBIAN_WASI_LIBDIR / "libc.a").is_file() or not (DEBIAN_WASI_INCLUDE / "stdio.h").is_file():
        missing.append("wasi-libc for wasm32-wasi (Debian/Ubuntu: apt-get install wasi-libc)")
    if not (DEBIAN_WASI_LIBDIR / "libc++.a").is_file():
        missing.append("libc++ for wasm32-wasi (Debian/Ubuntu: apt-get install libc++-dev-wasm32)")
    if clang is not None:
        builtins = tool_output([clang, f"--target={TARGET}", "-print-libgcc-file-name"])
        if not builtins or not Path(builtins).is_file():
            missing.append("compiler-rt builtins for wasm32 "
                           "(Debian/Ubuntu: apt-get install libclang-rt-dev-wasm32)")
    if missing or clang is None:
        return Discovery(None, tuple(missing))
    return Discovery(CppToolchain("system", clang), ())


def project_sources(src: Path) -> list[Path]:
    return files_under(src, suffixes=SOURCE_SUFFIXES)


class CppBuilder:
    name = "cpp"
    aliases: tuple[str, ...] = ("c++",)

    @functools.cached_property
    def _discovery(self) -> Discovery:
        return discover()

    def toolchain(self) -> CppToolchain | None:
        return self._discovery.toolchain

    def missing_local_tools(self, src: Path) -> list[str]:
        return list(self._discovery.missing)

    def toolchain_id(self) -> str:
        toolchain = self._discovery.toolchain
        if toolchain is None:
            return "cpp:none"
        return " | ".join(["cpp", toolchain.kind, tool_output([toolchain.clang, "--version"]),
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
        sources = [p.relative_to(src).as_posix() for p in self._sources(src)]
        output = f"{CONTAINER_OUT}/filter.wasm"
        # The wasi-sdk images name their compiler in $CXX and, where the sysroot
        # is not the compiler's default, pass it in $CXXFLAGS; use both.
        arguments = CppToolchain("wasi-sdk", "clang++").compile_argv(sources, ".", output)[1:]
        script = f'exec "${{CXX:-{CONTAINER_CLANG}}}" $CXXFLAGS {shlex.join(arguments)}'
        return ContainerSpec(
            image=CONTAINER_IMAGE,
            command=["sh", "-c", script],
            workdir=CONTAINER_SRC,
            env={},
            mounts=[(str(src.resolve()), CONTAINER_SRC, True),
                    (str(out_dir.resolve()), CONTAINER_OUT, False)],
            output=output,
            user=host_user(),
        )
