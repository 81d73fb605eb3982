"""Which modules load: Envoy 1.40 refuses some modules at start-up; wasmetool must refuse
the same ones (naming what is wrong) and load the others.

Each variant is a minimal module (ABI marker, allocator, context_create) plus one
twist: an import, a missing export.  ``test_envoy_loads`` records Envoy's verdict;
``test_wasmetool_loads`` requires the same verdict from ``wasmetool run``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.envoy import run_envoy
from tests.support.plugins import ProxySetup, WasmPlugin
from tests.support.upstream import EchoUpstream, run_echo_upstream
from tests.support.wasmetool_run import run_wasmetool

pytestmark = pytest.mark.integration

ALLOCATOR = '(func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))'


@dataclass
class Variant:
    name: str
    envoy_loads: bool
    fields: str = ""         # extra module fields: an import, or an export
    abi: str = "0_2_1"
    allocator: bool = True
    names: str = ""          # what a refusal must mention (import or export name)
    gap: str = ""            # a named wasmetool host gap, if any
    fail_open: bool = False

    def wat(self) -> str:
        return "\n".join([
            "(module", self.fields,
            '  (memory (export "memory") 1)',
            f'  (func (export "proxy_abi_version_{self.abi}"))' if self.abi else "",
            f"  {ALLOCATOR}" if self.allocator else "",
            '  (func (export "proxy_on_context_create") (param i32 i32)))'])


WASI = "wasi_snapshot_preview1"
VARIANTS = [
    Variant("plain", True),
    Variant("abi_0_2_0", True, abi="0_2_0"),
    Variant("abi_0_1_0", True, abi="0_1_0"),
    Variant("malloc_only", True, allocator=False,
            fields='(func (export "malloc") (param i32) (result i32) (i32.const 1024))'),
    Variant("configure_returns_false", False,
            '(func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 0))',
            names="proxy_on_configure"),
    # fail_open covers failures while serving, not a plugin that refuses its configuration
    Variant("configure_returns_false_fail_open", False,
            '(func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 0))',
            names="proxy_on_configure", fail_open=True),
    Variant("vm_start_returns_false", False,
            '(func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 0))',
            names="proxy_on_vm_start"),
    Variant("wasi_command_start", True, '(func (export "_start"))'),
    Variant("initialize_and_main", True,
            '(func (export "_initialize")) '
            '(func (export "main") (param i32 i32) (result i32) (i32.const 0))'),
    Variant("start_traps", False,
            '(func (export "_initialize") unreachable)', names="_initialize"),
    Variant("continue_stream_in_0_1_0", False,
            '(import "env" "proxy_continue_stream" (func (param i32) (result i32)))',
            abi="0_1_0", names="proxy_continue_stream"),
    Variant("wasi_unstable_fd_write", True,
            '(import "wasi_unstable" "fd_write" (func (param i32 i32 i32 i32) (result i32)))'),
    Variant("emscripten_notify_memory_growth", True,
            '(import "env" "emscripten_notify_memory_growth" (func (param i32)))'),
    Variant("unknown_env_import", False,
            '(import "env" "proxy_does_not_exist" (func (param i32) (result i32)))',
            names="proxy_does_not_exist"),
    Variant("mistyped_proxy_log", False,
            '(import "env" "proxy_log" (func (param i32 i32) (result i32)))', names="proxy_log"),
    Variant("get_configuration_in_0_2_1", False,
            '(import "env" "proxy_get_configuration" (func (param i32 i32) (result i32)))',
            names="proxy_get_configuration"),
    Variant("get_log_level_in_0_2_0", False,
            '(import "env" "proxy_get_log_level" (func (param i32) (result i32)))',
            abi="0_2_0", names="proxy_get_log_level"),
    Variant("no_abi_version", False, abi="", names="proxy_abi_version"),
    Variant("no_allocator", False, allocator=False, names="malloc"),
    Variant("wasi_proc_raise", False,
            f'(import "{WASI}" "proc_raise" (func (param i32) (result i32)))', names="proc_raise"),
    Variant("wasi_path_link_7_params", False,
            f'(import "{WASI}" "path_link" (func (param i32 i32 i32 i32 i32 i32 i32) (result i32)))',
            names="path_link"),
    Variant("wasi_path_link_6_params", True,
            f'(import "{WASI}" "path_link" (func (param i32 i32 i32 i32 i32 i32) (result i32)))'),
    Variant("wasi_path_symlink_5_params", False,
            f'(import "{WASI}" "path_symlink" (func (param i32 i32 i32 i32 i32) (result i32)))',
            names="path_symlink"),
]


@pytest.fixture(scope="module")
def upstream() -> Iterator[EchoUpstream]:
    with run_echo_upstream() as up:
        yield up


def _setup(variant: Variant, upstream: EchoUpstream, workdir: Path) -> ProxySetup:
    import wasmtime

    workdir.mkdir(parents=True, exist_ok=True)
    wasm = workdir / f"{variant.name}.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(variant.wat()))
    return ProxySetup(upstream=upstream.url, http_filters=[
        WasmPlugin("loading", wasm, fail_open=variant.fail_open)])


def _loads(runner: object, setup: ProxySetup, workdir: Path) -> tuple[bool, str]:
    try:
        with runner(setup, workdir):  # type: ignore[operator]
            return True, ""
    except RuntimeError as exc:
        return False, str(exc)


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_envoy_loads(variant: Variant, upstream: EchoUpstream, tmp_path: Path) -> None:
    loaded, message = _loads(run_envoy, _setup(variant, upstream, tmp_path), tmp_path / "envoy")
    assert loaded == variant.envoy_loads, message


def _wasmetool_params() -> list[object]:
    return [pytest.param(v, id=v.name, marks=[pytest.mark.xfail(strict=True, reason=v.gap)]
                         if v.gap else []) for v in VARIANTS]


@pytest.mark.parametrize("variant", _wasmetool_params())
def test_wasmetool_loads(variant: Variant, upstream: EchoUpstream, tmp_path: Path) -> None:
    loaded, message = _loads(run_wasmetool, _setup(variant, upstream, tmp_path),
                             tmp_path / "wasmetool")
    assert loaded == variant.envoy_loads, message
    if not loaded:
        assert "error:" in message and variant.names in message   # one line naming it
        assert "Traceback" not in message
