"""Build Rust proxy-wasm filters (a ``cdylib`` crate) for ``wasm32-wasip1``.

Two local routes, tried in this order:

* **prebuilt std** - a ``rustc`` whose sysroot already holds the standard
  library for ``wasm32-wasip1`` (or the older name ``wasm32-wasi``), e.g. after
  ``rustup target add wasm32-wasip1``. Plain ``cargo build --target ...``.
* **build-std** - a ``rustc`` with its own source (``rust-src``; on Debian 12
  ``rustc-web`` + ``rust-web-src``) but no wasm standard library: cargo compiles
  std itself (``-Zbuild-std``, unlocked with ``RUSTC_BOOTSTRAP=1``) and links
  with the system ``wasm-ld`` against the system wasi-libc. Every flag is
  passed on the command line and in the environment of that one cargo run;
  nothing is written to a global cargo configuration.

Cargo's home (registry cache) and target directory live in wasmetool's cache
directory, shared by all projects, so a rebuild neither refetches crates nor
rebuilds std. ``CARGO_HOME`` / ``CARGO_TARGET_DIR`` set in the environment are
respected (the home may hold registry credentials or mirrors).

The container route runs the build-std route, with the same flags, in
wasmetool's rust toolchain image (Debian's rustc-web, rust-web-src, lld-22,
wasi-libc: ``toolchains/rust.Dockerfile``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shlex
import shutil
import tomllib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from wasmetool import paths
from wasmetool.builder.base import (
    CONTAINER_OUT,
    CONTAINER_SRC,
    BuildFailed,
    CommandRunner,
    ContainerSpec,
    files_under,
    host_user,
    tool_output,
)
from wasmetool.builder.toolchain_memo import path_and_tools, remembered
from wasmetool.errors import WasmetoolError

TARGETS = ("wasm32-wasip1", "wasm32-wasi")  # preferred first; 1.7x toolchains know only -wasi
DEBIAN_RUSTC = "/usr/bin/rustc"
DEBIAN_CARGO = "/usr/bin/cargo"
WASI_LIBC_DIRS = ("/usr/lib/wasm32-wasi", "/usr/lib/wasm32-wasip1",
                  "/opt/wasi-sdk/share/wasi-sysroot/lib/wasm32-wasi")
BUILD_STD = "-Zbuild-std=std,panic_abort"
# No build-machine paths in the module (panic locations name source files): the
# project, the cargo home and std's sources are recorded relative to themselves,
# so a local build and a container build of the same source are byte-identical.
TRIM_PATHS = ("-Ztrim-paths", "--config", 'profile.release.trim-paths="all"')

# Inside wasmetool's rust toolchain image (toolchains/rust.Dockerfile).
CONTAINER_TARGET = "wasm32-wasip1"
CONTAINER_LINKER = "wasm-ld-22"
CONTAINER_WASI_LIBDIR = "/usr/lib/wasm32-wasi"
CONTAINER_TARGET_DIR = "/cache/target"
CONTAINER_CARGO_HOME = "/cache/cargo-home"

INSTALL_HINT = ("`rustup target add wasm32-wasip1`, or on Debian 12 `apt-get install "
                "rustc-web cargo-web rust-web-src lld-22 wasi-libc` (a Rust with its own "
                "source builds the standard library itself)")


@dataclass(frozen=True)
class RustRoute:
    """One working way to compile for wasm on this machine."""

    kind: str            # "prebuilt-std" or "build-std"
    cargo: str
    rustc: str
    target: str
    linker: str | None = None        # build-std: the wasm-ld to link with
    wasi_libdir: str | None = None   # build-std: where wasi-libc's libc.a lives
    version: str = ""                # `rustc -vV` first line, when already known

    def cargo_args(self) -> list[str]:
        """Arguments after ``cargo``: a release build for the wasm target."""
        args = ["build", "--release", "--target", self.target]
        if self.kind == "build-std":
            args += [BUILD_STD, *TRIM_PATHS,
                     "--config", f'target.{self.target}.linker="{self.linker}"',
                     "--config", f"target.{self.target}.rustflags={self._toml_list(self.rustflags())}"]
        return args

    def rustflags(self) -> list[str]:
        if self.kind != "build-std":
            return []
        return ["-C", "link-self-contained=no", "-L", f"native={self.wasi_libdir}"]

    def env(self) -> dict[str, str]:
        """Environment for cargo (cache directories are added by the builder)."""
        env = {"RUSTC": self.rustc}
        if self.kind == "build-std":
            env["RUSTC_BOOTSTRAP"] = "1"
            # RUSTFLAGS, when set, replaces target.<triple>.rustflags: keep ours in it.
            user_flags = os.environ.get("RUSTFLAGS", "").strip()
            if user_flags:
                env["RUSTFLAGS"] = " ".join([user_flags, *self.rustflags()])
        return env

    @staticmethod
    def _toml_list(items: list[str]) -> str:
        return "[" + ",".join(f'"{item}"' for item in items) + "]"


# ---- discovering the toolchain ---------------------------------------------------------------


def _version_info(rustc: str) -> dict[str, str]:
    """``rustc -vV`` as a dict (release, commit-hash, LLVM version, host, ...)."""
    info: dict[str, str] = {}
    text = _full_output([rustc, "-vV"])
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
        elif line.startswith("rustc "):
            info["version"] = line.strip()
    return info


def _full_output(argv: list[str]) -> str:
    import subprocess

    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout if done.returncode == 0 else ""


def _sysroot(rustc: str) -> Path | None:
    text = _full_output([rustc, "--print", "sysroot"]).strip()
    return Path(text) if text else None


def _prebuilt_target(sysroot: Path) -> str | None:
    """The wasm target whose standard library is installed in ``sysroot``."""
    for target in TARGETS:
        libdir = sysroot / "lib" / "rustlib" / target / "lib"
        if libdir.is_dir() and any(libdir.glob("libstd-*.rlib")):
            return target
    return None


def _target_for_release(release: str) -> str | None:
    """wasm32-wasip1 from Rust 1.78 on; before that the same target was wasm32-wasi."""
    match = re.match(r"(\d+)\.(\d+)", release)
    if not match:
        return None
    return TARGETS[0] if (int(match[1]), int(match[2])) >= (1, 78) else TARGETS[1]


def _wasm_ld(llvm_version: str) -> str | None:
    """wasm-ld of rustc's own LLVM major version if installed, else any wasm-ld."""
    major = llvm_version.split(".", 1)[0]
    names = ([f"wasm-ld-{major}"] if major.isdigit() else []) + ["wasm-ld"]
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def _wasi_libdir() -> str | None:
    for directory in WASI_LIBC_DIRS:
        if (Path(directory) / "libc.a").is_file():
            return directory
    return None


def _rustc_candidates() -> list[tuple[str, str]]:
    """(rustc, cargo) pairs: the ones on PATH, then Debian's /usr/bin ones."""
    pairs: list[tuple[str, str]] = []
    rustc, cargo = shutil.which("rustc"), shutil.which("cargo")
    if rustc and cargo:
        pairs.append((rustc, cargo))
    if os.access(DEBIAN_RUSTC, os.X_OK) and os.access(DEBIAN_CARGO, os.X_OK):
        if not any(os.path.realpath(r) == os.path.realpath(DEBIAN_RUSTC) for r, _ in pairs):
            pairs.append((DEBIAN_RUSTC, DEBIAN_CARGO))
    return pairs


@dataclass(frozen=True)
class Discovery:
    route: RustRoute | None
    problems: tuple[str, ...]   # why each candidate could not be used (for the hint)
    looked_at: tuple[str, ...] = ()  # sysroot directories whose change invalidates this


def discover() -> Discovery:
    """Find the best local route (see the module docstring), or say what is missing.

    The hints are things to install (the build command prefixes them with
    "install"/"missing"), the most specific first.
    """
    candidates = _rustc_candidates()
    if not candidates:
        return Discovery(None, (f"Rust for wasm32-wasip1: {INSTALL_HINT}",))
    sysroots = {rustc: _sysroot(rustc) for rustc, _ in candidates}
    looked_at = tuple(str(root / "lib" / "rustlib") for root in sysroots.values() if root)
    for rustc, cargo in candidates:
        sysroot = sysroots[rustc]
        target = _prebuilt_target(sysroot) if sysroot else None
        if target:
            return Discovery(RustRoute("prebuilt-std", cargo, rustc, target), (), looked_at)
    # No wasm std anywhere: can a rustc build it (-Zbuild-std)?
    for rustc, cargo in candidates:
        sysroot = sysroots[rustc]
        library = sysroot / "lib" / "rustlib" / "src" / "rust" / "library" if sysroot else None
        if library is None or not (library / "Cargo.lock").is_file():
            continue
        version = _version_info(rustc)
        label = f"{rustc} {version.get('release', '')}".strip()
        target = _target_for_release(version.get("release", ""))
        linker = _wasm_ld(version.get("LLVM version", ""))
        libdir = _wasi_libdir()
        if target and linker and libdir:
            return Discovery(RustRoute("build-std", cargo, rustc, target, linker, libdir,
                                       version.get("version", "")), (), looked_at)
        missing: list[str] = []
        if target is None:
            missing.append(f"a Rust whose version is known ({rustc} -vV fails)")
        if linker is None:
            missing.append(f"wasm-ld, the WebAssembly linker, for {label} "
                           "(Debian: apt-get install lld-22, or lld)")
        if libdir is None:
            missing.append("wasi-libc for wasm32 (Debian: apt-get install wasi-libc)")
        return Discovery(None, tuple(missing), looked_at)
    found = ", ".join(rustc for rustc, _ in candidates)
    return Discovery(None, (f"the wasm32-wasip1 standard library for {found}: {INSTALL_HINT}",),
                     looked_at)


# ---- remembering the discovery --------------------------------------------------------------
# Finding the toolchain runs rustc and cargo (~0.2 s), which would dominate a
# build-cache hit. The result is kept in the cache directory together with the
# state (mtime, size, inode) of everything it depends on: every PATH directory
# (a tool installed or removed changes it), the compilers, their rustlib
# directories (`rustup target add` adds one), rustup's settings and wasi-libc.
# Any change there, or in PATH, runs the discovery again.

REMEMBERED_ENV = ("PATH", "HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN")


def _watched_paths() -> list[str]:
    rustup_home = Path(os.environ.get("RUSTUP_HOME") or Path.home() / ".rustup")
    watched = path_and_tools(("rustc", "cargo"))
    watched += [DEBIAN_RUSTC, DEBIAN_CARGO, str(rustup_home / "settings.toml"),
                str(rustup_home / "toolchains")]
    watched += [str(p) for p in sorted(rustup_home.glob("toolchains/*/lib/rustlib"))]
    for directory in WASI_LIBC_DIRS:
        watched += [directory, str(Path(directory) / "libc.a")]
    return watched


def _probe() -> dict[str, Any]:
    """Discovery plus toolchain id, as plain data."""
    discovery = discover()
    route = discovery.route
    cargo_version = (tool_output([route.cargo, "-V"], env={"RUSTC": route.rustc})
                     if route else "")
    return {"route": asdict(route) if route else None, "problems": list(discovery.problems),
            "cargo_version": cargo_version, "looked_at": list(discovery.looked_at)}


def remembered_probe() -> dict[str, Any]:
    """:func:`_probe`, answered from the cache directory while nothing it depends on changed."""
    return remembered("rust", REMEMBERED_ENV, _watched_paths, _probe, __file__)


# ---- the crate ------------------------------------------------------------------------------


def crate_lib_name(src: Path) -> str:
    """The file stem cargo gives the crate's cdylib (``[lib] name`` or the package name)."""
    manifest = src / "Cargo.toml"
    try:
        data = tomllib.loads(manifest.read_text())
    except FileNotFoundError:
        raise WasmetoolError(f"{src} has no Cargo.toml",
                             "point wasmetool build at the filter crate's directory") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise WasmetoolError(f"{manifest} is not valid TOML: {exc}") from None
    package = data.get("package")
    if not isinstance(package, dict) or not isinstance(package.get("name"), str):
        raise WasmetoolError(f"{manifest} has no [package] name",
                             "build the filter crate itself, not a workspace root")
    lib = data.get("lib") if isinstance(data.get("lib"), dict) else {}
    crate_types = lib.get("crate-type", [])
    if "cdylib" not in crate_types:
        raise WasmetoolError(f"{manifest} does not build a cdylib",
                             'add [lib] crate-type = ["cdylib"] to it')
    name = lib.get("name") if isinstance(lib.get("name"), str) else package["name"]
    return re.sub(r"-", "_", name)


# ---- the builder ----------------------------------------------------------------------------


def rust_cache_dir() -> Path:
    return paths.cache_dir() / "rust"


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Serialise builds sharing the target directory (cargo's own lock ends before the copy)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: cargo's own lock has to do
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class RustBuilder:
    name = "rust"
    aliases: tuple[str, ...] = ()

    @functools.cached_property
    def _probe(self) -> dict[str, Any]:
        return remembered_probe()

    @functools.cached_property
    def _discovery(self) -> Discovery:
        route = self._probe["route"]
        return Discovery(RustRoute(**route) if route else None, tuple(self._probe["problems"]))

    def route(self) -> RustRoute | None:
        return self._discovery.route

    def missing_local_tools(self, src: Path) -> list[str]:
        if self._discovery.route is not None:
            return []
        return list(self._discovery.problems)

    def toolchain_id(self) -> str:
        route = self._discovery.route
        if route is None:
            return "rust:none"
        parts = ["rust", route.kind, route.target,
                 route.version or tool_output([route.rustc, "-V"]),
                 self._probe["cargo_version"], " ".join(route.cargo_args())]
        return " | ".join(parts)

    def cache_inputs(self, src: Path) -> list[Path]:
        inputs = files_under(src, suffixes=(".rs",),
                             names=("Cargo.toml", "Cargo.lock", "rust-toolchain",
                                    "rust-toolchain.toml"))
        for config in (src / ".cargo" / "config.toml", src / ".cargo" / "config"):
            if config.is_file():
                inputs.append(config)
        source_dir = src / "src"
        if source_dir.is_dir():  # include_str!/include_bytes! data lives next to the code
            inputs += [p for p in source_dir.rglob("*") if p.is_file()]
        return sorted(set(inputs))

    def cargo_env(self, route: RustRoute) -> dict[str, str]:
        """Cargo's home and target directory in wasmetool's cache, unless the user set them."""
        cache = rust_cache_dir()
        env = route.env()
        env["CARGO_TARGET_DIR"] = (os.environ.get("CARGO_TARGET_DIR")
                                   or str(cache / "target" / f"{route.kind}-{route.target}"))
        if not os.environ.get("CARGO_HOME"):
            env["CARGO_HOME"] = str(cache / "cargo-home")
        return env

    def build_local(self, src: Path, out: Path, run: CommandRunner) -> None:
        route = self._discovery.route
        if route is None:
            raise WasmetoolError("no local Rust toolchain can build wasm32-wasip1",
                                 "; ".join(self._discovery.problems))
        lib_name = crate_lib_name(src)
        env = self.cargo_env(route)
        artifact = Path(env["CARGO_TARGET_DIR"]) / route.target / "release" / f"{lib_name}.wasm"
        with _exclusive(rust_cache_dir() / "build.lock"):
            run([route.cargo, *route.cargo_args()], cwd=src, env=env)
            if not artifact.is_file():
                raise BuildFailed(f"cargo finished but produced no {artifact.name}",
                                  f"expected it at {artifact}")
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(artifact, out)

    def container_spec(self, src: Path, out_dir: Path) -> ContainerSpec:
        """The build-std route inside wasmetool's rust toolchain image (same packages)."""
        from wasmetool.builder.container import cache_mount
        from wasmetool.builder.toolchain_images import image_name

        lib_name = crate_lib_name(src)
        route = RustRoute("build-std", "cargo", DEBIAN_RUSTC, CONTAINER_TARGET,
                          CONTAINER_LINKER, CONTAINER_WASI_LIBDIR)
        artifact = f"{CONTAINER_TARGET_DIR}/{CONTAINER_TARGET}/release/{lib_name}.wasm"
        script = "; ".join([
            "set -e",
            # Build from a copy: the source is mounted read-only and cargo may
            # want to write Cargo.lock; the user's own target/ is left out.
            "mkdir -p /tmp/build",
            f"tar -C {CONTAINER_SRC} --exclude=./target -cf - . | tar -C /tmp/build -xf -",
            "cd /tmp/build",
            shlex.join(["cargo", *route.cargo_args()]),
            f"cp {artifact} {CONTAINER_OUT}/filter.wasm",
        ])
        return ContainerSpec(
            image=image_name(self.name),
            command=["sh", "-c", script],
            workdir=CONTAINER_SRC,
            env={"RUSTC": DEBIAN_RUSTC, "RUSTC_BOOTSTRAP": "1",
                 "CARGO_HOME": CONTAINER_CARGO_HOME, "CARGO_TARGET_DIR": CONTAINER_TARGET_DIR},
            mounts=[
                (str(src.resolve()), CONTAINER_SRC, True),
                (str(out_dir.resolve()), CONTAINER_OUT, False),
                (cache_mount("rust", "cargo-home"), CONTAINER_CARGO_HOME, False),
                (cache_mount("rust", "target"), CONTAINER_TARGET_DIR, False),
            ],
            output=f"{CONTAINER_OUT}/filter.wasm",
            user=host_user(),
            labels={"org.wasmetool.builder": self.name},
        )
