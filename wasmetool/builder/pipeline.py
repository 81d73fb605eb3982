"""`wasmetool build LANGUAGE`: route choice, build cache, compile, validate, store.

    request -> language (argument or wasmetool.toml) -> builder
            -> route (local | container; auto = local if complete, else a Docker engine;
               container: wasmetool's toolchain image, see toolchain_images)
            -> cache key (inputs, toolchain, builder) -> hit: re-store the cached module
            -> miss: compile into a temp dir -> validate (the checks of `build precompiled`,
               without wasmtime code generation: module_info.proxy_abi_version) -> store
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from wasmetool import paths
from wasmetool.builder import container
from wasmetool.builder.base import LanguageBuilder, canonical_language, get_builder
from wasmetool.builder.cache import BuildCache, compute_key, new_entry
from wasmetool.builder.project import read_project_file
from wasmetool.builder.runner import SubprocessRunner
from wasmetool.errors import WasmetoolError
from wasmetool.store import Image

TOOLCHAINS = ("auto", "local", "container")


@dataclass
class BuildRequest:
    src: Path
    tag: str
    language: str | None = None  # None: read it from SRC/wasmetool.toml
    toolchain: str = "auto"
    config: Path | None = None  # None: SRC/runtime-config.json if present
    out: Path | None = None
    use_cache: bool = True


@dataclass
class BuildResult:
    image: Image
    abi_version: str
    language: str
    route: str  # "local" or "container"
    toolchain: str  # e.g. "local:go1.26.8 GOFLAGS=" / "container:wasmetool/toolchain-tinygo:TAG@sha256:..."
    cached: bool
    seconds: float
    out: Path | None


def choose_route(builder: LanguageBuilder, src: Path, toolchain: str) -> str:
    """"local" or "container" for ``--toolchain``; one clear error when neither works."""
    if toolchain not in TOOLCHAINS:
        raise WasmetoolError(f"unknown toolchain '{toolchain}'", "use auto, local or container")
    if toolchain == "container":
        container.docker_client()  # raises the no-engine error
        return "container"
    missing = builder.missing_local_tools(src)
    if not missing:
        return "local"
    if toolchain == "local":
        raise WasmetoolError(f"cannot build {builder.name} locally: missing "
                             + "; ".join(missing),
                             "install it, or use --toolchain container (needs Docker)")
    if container.engine_available():
        return "container"
    raise WasmetoolError(
        f"cannot build {builder.name}: the local toolchain is incomplete and no Docker "
        f"engine answers at {container.engine_address()}",
        "install " + "; ".join(missing) + " - or start Docker",
    )


def _config_path(src: Path, config: Path | None) -> Path | None:
    if config is not None:
        return config
    default = src / "runtime-config.json"
    return default if default.is_file() else None


@contextlib.contextmanager
def _progress(message: str, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


def run_build(request: BuildRequest, progress: bool | None = None,
              builder: LanguageBuilder | None = None) -> BuildResult:
    """Build and store one project. ``progress``: spinner on stderr (default: if a TTY).

    ``builder`` replaces the registry's builder for the language (library use, tests).
    """
    from wasmetool.builder.precompiled import load_runtime_config
    from wasmetool.module_info import proxy_abi_version as built_module_abi
    from wasmetool.oci.reference import parse_reference
    from wasmetool.store import Store

    started = time.perf_counter()
    src = request.src
    if not src.is_dir():
        raise WasmetoolError(f"source directory {src} " + ("is not a directory" if src.exists()
                                                           else "does not exist"),
                             "pass the project directory (the one with wasmetool.toml)")
    language = canonical_language(request.language or read_project_file(src).language)
    parse_reference(request.tag)  # a bad tag fails before any compiling
    config_path = _config_path(src, request.config)
    if config_path is not None and not config_path.is_file():
        raise WasmetoolError(f"runtime config {config_path} does not exist", "check --config")

    _check_out_path(request.out)  # an unwritable --out fails before any compiling
    builder = builder or get_builder(language)
    route = choose_route(builder, src, request.toolchain)
    if progress is None:
        progress = sys.stderr.isatty()
    runner = SubprocessRunner(buffered=progress)
    client = None
    if route == "local":
        toolchain = "local:" + builder.toolchain_id()
    else:
        from wasmetool.builder.toolchain_images import ensure_image

        client = container.docker_client()
        toolchain = "container:" + ensure_image(client, language, runner.write).toolchain_id()
    key = compute_key(language, toolchain, builder, src, builder.cache_inputs(src))
    cache = BuildCache()
    store = Store.open()

    entry = cache.get(key) if request.use_cache else None
    if entry is not None and store.has_valid_blob(entry.wasm_digest):
        wasm = store.read_blob(entry.wasm_digest)
        config = load_runtime_config(config_path, entry.abi_version, None)
        image = store.add_image(wasm, config, request.tag)
        _write_out(request.out, wasm)
        return BuildResult(image, entry.abi_version, language, route, toolchain, True,
                           time.perf_counter() - started, request.out)

    work_root = paths.cache_dir() / "build" / "work"
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{language}-", dir=work_root) as tmp:
        tmp_dir = Path(tmp)
        try:
            with _progress(f"building {language} ({route}) in {src}", progress):
                if route == "local":
                    output = tmp_dir / "filter.wasm"
                    builder.build_local(src.resolve(), output, runner)
                else:
                    spec = builder.container_spec(src, tmp_dir)
                    container.run_container(spec, runner, client)
                    output = spec.host_output(tmp_dir)
        finally:
            runner.flush()
        if not output.is_file():
            raise WasmetoolError(f"the {language} build finished but produced no module "
                                 f"({output.name} is missing)", "check the build output above")
        wasm = output.read_bytes()
    abi_version = built_module_abi(wasm, f"the {language} build of {src}")
    config = load_runtime_config(config_path, abi_version, None)
    image = store.add_image(wasm, config, request.tag)
    entry = new_entry(image.wasm_digest, len(wasm), abi_version, language, toolchain)
    cache.put(key, entry)
    # A build may rewrite its own inputs (cargo re-sorts a fresh Cargo.lock): key the
    # result by the inputs as they are now too, so the next unchanged build hits.
    key_after = compute_key(language, toolchain, builder, src, builder.cache_inputs(src))
    if key_after != key:
        cache.put(key_after, entry)
    _write_out(request.out, wasm)
    return BuildResult(image, abi_version, language, route, toolchain, False,
                       time.perf_counter() - started, request.out)


def _check_out_path(out: Path | None) -> None:
    if out is None:
        return
    if out.is_dir():
        raise WasmetoolError(f"--out {out} is a directory", "give a file name, e.g. filter.wasm")
    parent = out.absolute().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise WasmetoolError(f"cannot write --out {out}: {parent} is not a writable directory",
                             "choose a path in a directory you can write")


def _write_out(out: Path | None, wasm: bytes) -> None:
    if out is None:
        return
    from wasmetool.store.files import atomic_write

    if out.is_dir():
        raise WasmetoolError(f"--out {out} is a directory", "give a file name, e.g. filter.wasm")
    atomic_write(out, wasm)
