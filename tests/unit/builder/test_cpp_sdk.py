"""The header-only C++ SDK compiles cleanly and exports the whole proxy-wasm ABI.

Uses the real clang for wasm32-wasi (the same command as the builder) and reads
the module's exports and imports with wasmtime.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from wasmetool.builder.cpp import CppBuilder

pytestmark = pytest.mark.integration

TEMPLATE = Path(__file__).resolve().parents[3] / "wasmetool" / "templates" / "cpp"

CALLBACKS = {
    "proxy_on_context_create", "proxy_on_vm_start", "proxy_on_configure",
    "proxy_validate_configuration", "proxy_on_tick", "proxy_on_queue_ready",
    "proxy_on_foreign_function", "proxy_on_done", "proxy_on_log", "proxy_on_delete",
    "proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers",
    "proxy_on_response_headers", "proxy_on_response_body", "proxy_on_response_trailers",
    "proxy_on_new_connection", "proxy_on_downstream_data", "proxy_on_upstream_data",
    "proxy_on_downstream_connection_close", "proxy_on_upstream_connection_close",
    "proxy_on_http_call_response", "proxy_on_grpc_receive_initial_metadata",
    "proxy_on_grpc_receive", "proxy_on_grpc_receive_trailing_metadata", "proxy_on_grpc_close",
}

# A second translation unit written against the official SDK's header name.
SECOND_UNIT = """
#include "proxy_wasm_intrinsics.h"

uint64_t second_unit_time() { return getCurrentTimeNanoseconds(); }
"""


def render_template(directory: Path) -> Path:
    shutil.copytree(TEMPLATE, directory)
    for path in directory.rglob("*"):
        if path.is_file():
            text = path.read_text()
            path.write_text(text.replace("{{NAME}}", "sdk-check").replace("{{ROOT_ID}}", "sdk_root"))
    return directory


def compile_module(project: Path, extra_flags: list[str]) -> bytes:
    toolchain = CppBuilder().toolchain()
    assert toolchain is not None, "clang for wasm32-wasi is not installed"
    sources = sorted(p.name for p in project.glob("*.cc"))
    argv = toolchain.compile_argv(sources, ".", "out.wasm")
    position = argv.index("-I.")  # after the builder's flags, so a later -std wins
    argv[position:position] = extra_flags
    done = subprocess.run(argv, cwd=project, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # no warnings either
    return (project / "out.wasm").read_bytes()


def test_sdk_compiles_without_warnings_in_two_units_and_exports_the_abi(tmp_path: Path) -> None:
    import wasmtime

    project = render_template(tmp_path / "project")
    (project / "second.cc").write_text(SECOND_UNIT)
    wasm = compile_module(project, ["-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Werror"])

    module = wasmtime.Module(wasmtime.Engine(), wasm)
    exports = {export.name for export in module.exports}
    assert CALLBACKS <= exports
    assert {"proxy_abi_version_0_2_1", "_initialize", "malloc", "proxy_on_memory_allocate",
            "memory"} <= exports
    imports = {(item.module, item.name) for item in module.imports}
    assert {module_name for module_name, _ in imports} == {"env"}  # no WASI needed
    assert ("env", "proxy_add_header_map_value") in imports
    assert ("env", "proxy_get_configuration") not in imports  # ABI 0.1.0 only


def test_sdk_builds_as_cxx20(tmp_path: Path) -> None:
    project = render_template(tmp_path / "project")
    wasm = compile_module(project, ["-std=c++20", "-Wall", "-Wextra", "-Werror"])
    assert wasm[:4] == b"\0asm"
