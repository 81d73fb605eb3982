"""The wasmtime engine, the on-disk cache of compiled modules and the epoch ticker.

One engine serves every VM. Compiled code is cached under
``cache_dir()/compiled/<sha256>-<wasmtime version>-<engine flags>.cwasm`` (written to a
temporary file and renamed), so a second start of a large module skips Cranelift.
Call deadlines use epoch interruption: one daemon thread bumps the engine epoch every
``EPOCH_TICK_MS``; each top-level call into a guest gets ``deadline_ticks(timeout)`` ticks.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from importlib import metadata
from pathlib import Path

import wasmtime

from wasmetool import paths
from wasmetool.errors import WasmetoolError
from wasmetool.host.epoch import CLOCK, EPOCH_TICK_MS, deadline_ticks
from wasmetool.host.fastpath import epoch_incrementer
from wasmetool.module_info import WASM_MAGIC

__all__ = ["CLOCK", "EPOCH_TICK_MS", "EpochTicker", "deadline_ticks", "engine", "load_module"]

log = logging.getLogger(__name__)

_ENGINE_FLAGS = "epoch1-nomove1"

_engine: wasmtime.Engine | None = None
_modules: dict[str, wasmtime.Module] = {}
_lock = threading.Lock()


def wasmtime_version() -> str:
    try:
        return metadata.version("wasmtime")
    except metadata.PackageNotFoundError:  # pragma: no cover - always installed with us
        return "unknown"


def engine() -> wasmtime.Engine:
    global _engine
    if _engine is None:
        cfg = wasmtime.Config()
        cfg.epoch_interruption = True
        cfg.memory_may_move = False     # linear memory base stays put: host keeps one view
        _engine = wasmtime.Engine(cfg)
    return _engine


def compiled_cache_dir() -> Path:
    return paths.cache_dir() / "compiled"


def cache_path(sha256: str) -> Path:
    return compiled_cache_dir() / f"{sha256}-{wasmtime_version()}-{_ENGINE_FLAGS}.cwasm"


def load_module(code: bytes, source: str = "<inline>") -> tuple[wasmtime.Module, str, bool]:
    """Compile ``code`` (or load it from the cache). Returns (module, sha256, cache_hit)."""
    sha = hashlib.sha256(code).hexdigest()
    with _lock:
        mod = _modules.get(sha)
        if mod is not None:
            return mod, sha, True
        eng = engine()
        path = cache_path(sha)
        if path.is_file():
            try:
                mod = wasmtime.Module.deserialize_file(eng, str(path))
                _modules[sha] = mod
                return mod, sha, True
            except Exception as e:  # noqa: BLE001 - a stale/corrupt entry is just recompiled
                log.debug("compiled cache entry %s unusable (%s); recompiling", path, e)
        if code[:4] != WASM_MAGIC:  # wasmtime would also take WAT text; Envoy does not
            raise WasmetoolError(f"{source} is not a WebAssembly module (no \\0asm magic)",
                                 "pass the compiled .wasm file, not source or text")
        try:
            mod = wasmtime.Module(eng, code)
        except wasmtime.WasmtimeError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid module"
            raise WasmetoolError(f"{source} is not a valid wasm module: {first}",
                                 "check that the file is a proxy-wasm .wasm build output") from None
        _modules[sha] = mod
        _write_cache(path, mod)
        return mod, sha, False


def _write_cache(path: Path, mod: wasmtime.Module) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = mod.serialize()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".cwasm")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:  # a read-only cache must not stop the host
        log.debug("cannot write compiled cache %s: %s", path, e)


def forget_loaded_modules() -> None:
    """Drop the in-process module table (tests use it to measure cold/cached starts)."""
    with _lock:
        _modules.clear()


class EpochTicker:
    """A single daemon thread that increments the engine epoch while any host runs.

    Callers re-arm a store's deadline only when :data:`CLOCK` moved since they last armed
    it (a deadline armed at epoch E is still exact for a call starting at epoch E), so most
    guest calls cost no extra call into wasmtime.
    """

    _users = 0
    _thread: threading.Thread | None = None
    _stop = threading.Event()
    _lock = threading.Lock()

    @classmethod
    def acquire(cls) -> None:
        with cls._lock:
            cls._users += 1
            if cls._thread is None or not cls._thread.is_alive():
                cls._stop = threading.Event()
                t = threading.Thread(target=cls._run, args=(engine(), cls._stop),
                                     name="wasmetool-epoch", daemon=True)
                cls._thread = t
                t.start()

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._users = max(0, cls._users - 1)
            if cls._users == 0 and cls._thread is not None:
                cls._stop.set()
                cls._thread = None

    @staticmethod
    def _run(eng: wasmtime.Engine, stop: threading.Event) -> None:
        wait = EPOCH_TICK_MS / 1000.0
        clock = CLOCK
        increment = epoch_incrementer(eng)
        while not stop.wait(wait):
            increment()
            clock.epoch += 1
