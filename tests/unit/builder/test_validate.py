"""The fast module check (proxy_abi_version) agrees with inspect_module, which compiles."""

from __future__ import annotations

import pytest

from wasmetool.errors import WasmetoolError
from wasmetool.module_info import export_names, inspect_module
from wasmetool.module_info import proxy_abi_version as built_module_abi

MODULES = {
    "abi_0_2_1": """(module (memory (export "memory") 1)
        (global (export "g") i32 (i32.const 1)) (table (export "t") 1 funcref)
        (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 0)
        (func (export "proxy_abi_version_0_2_1")))""",
    "abi_0_1_0": """(module (import "env" "proxy_log" (func (param i32 i32 i32) (result i32)))
        (func (export "proxy_abi_version_0_1_0")))""",
    "abi_0_2_0_many_exports": "(module " + " ".join(
        f'(func (export "export_with_a_long_name_{i}"))' for i in range(200))
        + ' (func (export "proxy_abi_version_0_2_0")))',
    "no_marker": """(module (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
        i32.const 1))""",
}


def _wasm(text: str) -> bytes:
    import wasmtime

    return wasmtime.wat2wasm(text)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_agrees_with_inspect_module(name: str) -> None:
    data = _wasm(MODULES[name])
    try:
        expected = inspect_module(data, "m").abi_version
    except WasmetoolError:
        with pytest.raises(WasmetoolError, match="not a proxy-wasm filter"):
            built_module_abi(data, "m")
        return
    assert built_module_abi(data, "m") == expected
    assert sorted(export_names(data)) == sorted(n for n, _ in inspect_module(data, "m").exports)


@pytest.mark.parametrize(("data", "message"), [
    (b"not wasm at all", "no \\\\0asm magic"),
    (b"\0asm\x01\0\0\0\x07\x05garbage", "not a valid WebAssembly module"),
    (b"\0asm\x01\0\0\0\x01\x04\x01\x60\x00\x00\x03\x02\x01\x05", "not a valid WebAssembly"),
])
def test_broken_modules_are_refused_like_inspect_module(data: bytes, message: str) -> None:
    with pytest.raises(WasmetoolError, match=message):
        built_module_abi(data, "m")
    with pytest.raises(WasmetoolError):
        inspect_module(data, "m")
