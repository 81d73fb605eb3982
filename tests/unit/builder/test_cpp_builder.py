"""The C++ builder: toolchain discovery, the clang command, cache inputs, container spec."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from wasmetool.builder import cpp
from wasmetool.builder.base import CONTAINER_OUT
from wasmetool.builder.cpp import CppBuilder, CppToolchain
from wasmetool.errors import WasmetoolError


@pytest.fixture(autouse=True)
def no_wasi_sdk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WASI_SDK_PATH", raising=False)
    monkeypatch.setattr(cpp, "DEFAULT_WASI_SDK", tmp_path / "no-wasi-sdk")


def write_project(root: Path) -> Path:
    (root / "proxy_wasm").mkdir(parents=True)
    (root / "filter.cc").write_text("int main() {}\n")
    (root / "util.c").write_text("int util(void) { return 1; }\n")
    (root / "proxy_wasm" / "proxy_wasm.h").write_text("#pragma once\n")
    (root / "README.md").write_text("docs")
    (root / "build").mkdir()
    (root / "build" / "generated.cc").write_text("")
    return root


def test_nothing_installed_names_every_missing_piece(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(cpp, "DEBIAN_WASI_LIBDIR", tmp_path / "no-lib")
    monkeypatch.setattr(cpp, "DEBIAN_WASI_INCLUDE", tmp_path / "no-include")
    builder = CppBuilder()
    text = "\n".join(builder.missing_local_tools(tmp_path))
    assert "clang++" in text and "wasm-ld" in text
    assert "wasi-libc" in text and "libc++-dev-wasm32" in text
    assert builder.toolchain() is None
    with pytest.raises(WasmetoolError, match="no local C\\+\\+ toolchain"):
        builder.build_local(write_project(tmp_path / "p"), tmp_path / "out.wasm",
                            lambda argv, *, cwd, env=None: None)


def test_clang_without_linker_asks_for_lld(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real_clang = shutil.which("clang++", path="/usr/bin")
    assert real_clang
    (bin_dir / "clang++").symlink_to(real_clang)
    monkeypatch.setenv("PATH", str(bin_dir))
    hints = CppBuilder().missing_local_tools(tmp_path)
    assert len(hints) == 1 and "wasm-ld" in hints[0] and "lld" in hints[0]


def test_installed_debian_toolchain_is_complete() -> None:
    builder = CppBuilder()
    assert builder.missing_local_tools(Path(".")) == []
    toolchain = builder.toolchain()
    assert toolchain is not None and toolchain.kind == "system"
    assert "clang version" in builder.toolchain_id()


def test_wasi_sdk_is_preferred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sdk = tmp_path / "wasi-sdk-25"
    (sdk / "bin").mkdir(parents=True)
    (sdk / "bin" / "clang++").write_text("")
    (sdk / "share" / "wasi-sysroot").mkdir(parents=True)
    monkeypatch.setenv("WASI_SDK_PATH", str(sdk))
    toolchain = CppBuilder().toolchain()
    assert toolchain == CppToolchain("wasi-sdk", str(sdk / "bin" / "clang++"),
                                     str(sdk / "share" / "wasi-sysroot"))
    argv = toolchain.compile_argv(["filter.cc"], ".", "/tmp/f.wasm")
    assert f"--sysroot={sdk / 'share' / 'wasi-sysroot'}" in argv


def test_compile_command() -> None:
    argv = CppToolchain("system", "/usr/bin/clang++").compile_argv(["a.cc", "b.c"], ".", "o.wasm")
    assert argv[0] == "/usr/bin/clang++"
    for flag in ("--target=wasm32-wasi", "-O2", "-std=c++17", "-fno-exceptions",
                 "-mexec-model=reactor", "-Wl,--strip-all", "-Wl,--export=malloc", "-I."):
        assert flag in argv
    assert argv[-2:] == ["-o", "o.wasm"]
    assert argv.index("a.cc") < argv.index("b.c")


def test_build_local_compiles_every_source_from_the_project(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p")
    calls: list[tuple[list[str], Path]] = []

    def record(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> None:
        calls.append((list(argv), cwd))

    builder = CppBuilder()
    builder.__dict__["_discovery"] = cpp.Discovery(CppToolchain("system", "clang++"), ())
    builder.build_local(project, tmp_path / "out" / "f.wasm", record)
    (argv, cwd), = calls
    assert cwd == project
    assert "filter.cc" in argv and "util.c" in argv
    assert "build/generated.cc" not in argv
    assert argv[-1] == str((tmp_path / "out" / "f.wasm").resolve())


def test_container_command_passes_file_names_as_arguments(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "my filter.cc").write_text("")
    command = CppBuilder().container_spec(project, tmp_path / "out").command
    assert "my filter.cc" in command  # an argv entry, no shell in between


def test_no_sources_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WasmetoolError, match="no C or C\\+\\+ sources"):
        CppBuilder().container_spec(tmp_path, tmp_path / "out")


def test_cache_inputs_are_sources_and_headers(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p")
    inputs = {p.relative_to(project).as_posix() for p in CppBuilder().cache_inputs(project)}
    assert inputs == {"filter.cc", "util.c", "proxy_wasm/proxy_wasm.h"}


def test_container_spec(tmp_path: Path) -> None:
    from wasmetool.builder.toolchain_images import image_name

    project = write_project(tmp_path / "p")
    out_dir = tmp_path / "out"
    spec = CppBuilder().container_spec(project, out_dir)
    assert spec.image == image_name("cpp")
    # The local system route's command, word for word, with the container's paths.
    assert spec.command == CppToolchain("system", "clang++").compile_argv(
        ["filter.cc", "util.c"], ".", f"{CONTAINER_OUT}/filter.wasm")
    assert "-mexec-model=reactor" in spec.command and "-fno-exceptions" in spec.command
    assert spec.workdir == "/src"
    assert (str(project.resolve()), "/src", True) in spec.mounts
    assert (str(out_dir.resolve()), "/out", False) in spec.mounts
    assert spec.host_output(out_dir) == out_dir / "filter.wasm"
    assert spec.user == f"{os.getuid()}:{os.getgid()}"


def test_discovery_is_remembered_until_something_it_depends_on_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    libdir = tmp_path / "wasm32-wasi"
    libdir.mkdir()
    monkeypatch.setattr(cpp, "DEBIAN_WASI_LIBDIR", libdir)
    calls: list[int] = []
    real_probe = cpp._probe

    def counting_probe() -> dict:
        calls.append(1)
        return real_probe()

    monkeypatch.setattr(cpp, "_probe", counting_probe)
    assert "wasi-libc" in "\n".join(CppBuilder().missing_local_tools(tmp_path))
    assert "wasi-libc" in "\n".join(CppBuilder().missing_local_tools(tmp_path))
    assert calls == [1]
    (libdir / "libc.a").write_bytes(b"!<arch>\n")      # wasi-libc gets installed
    missing = "\n".join(CppBuilder().missing_local_tools(tmp_path))
    assert calls == [1, 1]
    assert "wasi-libc" not in missing and "libc++" in missing
