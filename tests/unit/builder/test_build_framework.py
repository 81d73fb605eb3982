"""The build framework: registry, container specs, route choice, cache, runner."""

from __future__ import annotations

import io
import json
import os
import shlex
import sys
from pathlib import Path

import pytest

from wasmetool.builder import base, container
from wasmetool.builder.assemblyscript import AssemblyScriptBuilder
from wasmetool.builder.base import BuildFailed, ContainerSpec, canonical_language, get_builder
from wasmetool.builder.cache import BuildCache, compute_key, new_entry
from wasmetool.builder.pipeline import BuildRequest, choose_route, run_build
from wasmetool.builder.runner import SubprocessRunner
from wasmetool.builder.tinygo import TinyGoBuilder
from wasmetool.builder.toolchain_images import image_name
from wasmetool.errors import WasmetoolError

MODULE_WAT = """(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 0))"""


def proxy_wasm_module() -> bytes:
    import wasmtime

    return wasmtime.wat2wasm(MODULE_WAT)


@pytest.mark.parametrize(("name", "canonical"), [("go", "tinygo"), ("TinyGo", "tinygo"),
                                                 ("as", "assemblyscript"), ("c++", "cpp"),
                                                 ("rust", "rust")])
def test_language_names_and_aliases(name: str, canonical: str) -> None:
    assert canonical_language(name) == canonical


def test_unknown_language_lists_the_choices() -> None:
    with pytest.raises(WasmetoolError, match="tinygo, go"):
        canonical_language("zig")


@pytest.mark.parametrize("language", sorted(base.LANGUAGES))
def test_registered_builders_match_the_registry(language: str) -> None:
    entry = base.LANGUAGES[language]
    builder = get_builder(language)
    assert builder.name == entry.name
    assert tuple(builder.aliases) == entry.aliases
    assert isinstance(builder, base.LanguageBuilder)


def test_tinygo_container_spec(tmp_path: Path, wasmetool_home: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    spec = TinyGoBuilder().container_spec(src, out)
    assert spec.image == image_name("tinygo")
    assert spec.image.startswith("wasmetool/toolchain-tinygo:")
    assert spec.command == ["go", "build", "-buildmode=c-shared", "-trimpath",
                            "-buildvcs=false", "-ldflags=-s -w", "-o", "/out/filter.wasm", "."]
    assert spec.workdir == "/src"
    assert {k: spec.env[k] for k in ("GOOS", "GOARCH", "GOMODCACHE", "GOCACHE")} == {
        "GOOS": "wasip1", "GOARCH": "wasm", "GOMODCACHE": "/cache/go-mod",
        "GOCACHE": "/cache/go-build"}
    caches = wasmetool_home / "cache" / "container" / "go"
    assert spec.mounts == [(str(src), "/src", True), (str(out), "/out", False),
                           (str(caches / "mod"), "/cache/go-mod", False),
                           (str(caches / "build"), "/cache/go-build", False)]
    assert (caches / "mod").is_dir()  # host directories, written as the user
    assert spec.user == f"{os.getuid()}:{os.getgid()}"
    assert spec.output == "/out/filter.wasm"
    assert spec.host_output(out) == out / "filter.wasm"
    argv = spec.docker_run_argv()
    assert argv[:5] == ["docker", "run", "--rm", "-w", "/src"]
    assert f"{src}:/src:ro" in argv and f"{caches / 'mod'}:/cache/go-mod" in argv
    assert argv[argv.index(spec.image) + 1:] == spec.command
    assert container.docker_volumes(spec)[str(src)] == {"bind": "/src", "mode": "ro"}


def test_assemblyscript_container_spec(tmp_path: Path, wasmetool_home: Path) -> None:
    spec = AssemblyScriptBuilder().container_spec(tmp_path, tmp_path / "o")
    assert spec.image == image_name("assemblyscript")
    assert spec.command[:2] == ["sh", "-c"]
    script = spec.command[2]
    assert "npm ci --no-audit --no-fund" in script
    assert "--exclude=./node_modules" in script
    assert script.endswith("asc.js assembly/index.ts --target release --outFile /out/filter.wasm")
    assert (str(wasmetool_home / "cache" / "container" / "npm"), "/cache/npm", False) in spec.mounts
    assert (str(tmp_path), "/src", True) in spec.mounts
    assert spec.env["npm_config_cache"] == "/cache/npm"
    assert spec.user == f"{os.getuid()}:{os.getgid()}"
    assert shlex.split(shlex.join(spec.docker_run_argv()))[-3:-1] == ["sh", "-c"]


def test_output_outside_the_out_mount_is_rejected(tmp_path: Path) -> None:
    spec = ContainerSpec("img", ["true"], "/src", {}, [], output="/src/filter.wasm")
    with pytest.raises(ValueError):
        spec.host_output(tmp_path)


def test_container_toolchain_without_engine_is_one_clear_error(cli, tmp_path: Path,
                                                               monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    project = tmp_path / "p"
    assert cli("init", str(project), "--language", "go").code == 0
    result = cli("build", str(project), "-t", "x:v1", "--toolchain", "container")
    assert result.code == 1
    assert result.err.startswith(f"error: no Docker engine answers at unix://{tmp_path}/no-such.sock")
    assert "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1


class FakeBuilder:
    """A builder whose 'compiler' is a real subprocess writing a real proxy-wasm module."""

    name = "tinygo"
    aliases = ("go",)

    def __init__(self, missing: list[str] | None = None, fail: bool = False) -> None:
        self.missing = missing or []
        self.fail = fail
        self.builds = 0

    def missing_local_tools(self, src: Path) -> list[str]:
        return self.missing

    def toolchain_id(self) -> str:
        return "fake 1.0"

    def cache_inputs(self, src: Path) -> list[Path]:
        return base.files_under(src, suffixes=(".go",), names=("go.mod",))

    def build_local(self, src: Path, out: Path, run) -> None:
        self.builds += 1
        if self.fail:
            run([sys.executable, "-c",
                 "import sys; sys.stderr.write('main.go:3:2: undefined: nope\\n'); sys.exit(2)"],
                cwd=src)
        module = proxy_wasm_module().hex()
        run([sys.executable, "-c",
             f"import sys; open(sys.argv[1], 'wb').write(bytes.fromhex('{module}'))", str(out)],
            cwd=src)

    def container_spec(self, src: Path, out_dir: Path) -> ContainerSpec:
        return ContainerSpec("fake:1", ["true"], "/src", {}, [], "/out/filter.wasm")


def _project(tmp_path: Path) -> Path:
    src = tmp_path / "proj"
    src.mkdir()
    (src / "main.go").write_text("package main\n")
    (src / "go.mod").write_text("module proj\n")
    (src / "README.md").write_text("docs\n")
    (src / "runtime-config.json").write_text(json.dumps(
        {"type": "envoy_proxy", "abiVersions": ["v0.2.1"], "config": {"rootIds": ["r"]}}))
    return src


def test_auto_route_without_tools_or_engine_lists_what_to_install(tmp_path: Path,
                                                                 monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    builder = FakeBuilder(missing=["Go >= 1.24 (go.dev)"])
    with pytest.raises(WasmetoolError) as info:
        choose_route(builder, tmp_path, "auto")
    text = str(info.value)
    assert "install Go >= 1.24 (go.dev)" in text and "start Docker" in text
    with pytest.raises(WasmetoolError, match="cannot build tinygo locally: missing Go"):
        choose_route(builder, tmp_path, "local")
    assert choose_route(FakeBuilder(), tmp_path, "auto") == "local"


def test_unchanged_inputs_hit_the_cache(tmp_path: Path) -> None:
    src = _project(tmp_path)
    builder = FakeBuilder()
    first = run_build(BuildRequest(src, "me/f:v1", language="go"), progress=False, builder=builder)
    assert not first.cached and builder.builds == 1
    second = run_build(BuildRequest(src, "me/f:v2", language="go", out=tmp_path / "o.wasm"),
                       progress=False, builder=builder)
    assert second.cached and builder.builds == 1
    assert second.image.wasm_digest == first.image.wasm_digest
    assert second.image.runtime_config.root_ids == ["r"]
    assert (tmp_path / "o.wasm").read_bytes() == proxy_wasm_module()

    (src / "runtime-config.json").write_text(json.dumps(
        {"type": "envoy_proxy", "abiVersions": ["v0.2.1"], "config": {"rootIds": ["new"]}}))
    restored = run_build(BuildRequest(src, "me/f:v2", language="go"), progress=False,
                         builder=builder)
    assert restored.cached and restored.image.runtime_config.root_ids == ["new"]

    (src / "README.md").write_text("docs changed\n")  # not an input
    assert run_build(BuildRequest(src, "me/f:v3", language="go"), progress=False,
                     builder=builder).cached
    (src / "main.go").write_text("package main // changed\n")
    assert not run_build(BuildRequest(src, "me/f:v4", language="go"), progress=False,
                         builder=builder).cached
    assert not run_build(BuildRequest(src, "me/f:v5", language="go", use_cache=False),
                         progress=False, builder=builder).cached
    assert builder.builds == 3


def test_a_cache_entry_whose_blob_is_gone_rebuilds(tmp_path: Path, wasmetool_home: Path) -> None:
    src = _project(tmp_path)
    builder = FakeBuilder()
    first = run_build(BuildRequest(src, "me/f:v1", language="go"), progress=False, builder=builder)
    blob = wasmetool_home.rglob(first.image.wasm_digest.split(":", 1)[1])
    for path in blob:
        path.unlink()
    again = run_build(BuildRequest(src, "me/f:v1", language="go"), progress=False, builder=builder)
    assert not again.cached and builder.builds == 2


def test_compiler_errors_pass_through_and_fail(tmp_path: Path, capsys) -> None:
    src = _project(tmp_path)
    with pytest.raises(BuildFailed) as info:
        run_build(BuildRequest(src, "me/f:v1", language="go"), progress=True,
                  builder=FakeBuilder(fail=True))
    assert "exited with status 2" in str(info.value)
    assert "main.go:3:2: undefined: nope\n" in capsys.readouterr().err


def test_cache_key_depends_on_content_toolchain_and_language(tmp_path: Path) -> None:
    src = _project(tmp_path)
    builder = FakeBuilder()
    inputs = builder.cache_inputs(src)
    key = compute_key("tinygo", "local:a", builder, src, inputs)
    assert key == compute_key("tinygo", "local:a", builder, src, list(reversed(inputs)))
    assert key != compute_key("tinygo", "local:b", builder, src, inputs)
    assert key != compute_key("rust", "local:a", builder, src, inputs)
    (src / "go.mod").write_text("module proj2\n")
    assert key != compute_key("tinygo", "local:a", builder, src, inputs)


def test_cache_index_survives_garbage(tmp_path: Path) -> None:
    cache = BuildCache(tmp_path / "c")
    cache.put("k", new_entry("sha256:" + "0" * 64, 1, "v0.2.1", "tinygo", "local:x"))
    assert cache.get("k").abi_version == "v0.2.1"
    cache.index_path.write_text("{not json")
    assert cache.get("k") is None
    cache.put("k2", new_entry("sha256:" + "1" * 64, 1, "v0.2.1", "tinygo", "local:x"))
    assert cache.get("k2") is not None


def test_runner_streams_or_buffers(tmp_path: Path) -> None:
    sink = io.StringIO()
    runner = SubprocessRunner(sink=sink, buffered=True)
    runner([sys.executable, "-c", "print('out'); import sys; sys.stderr.write('err\\n')"],
           cwd=tmp_path)
    assert sink.getvalue() == ""
    runner.flush()
    assert sink.getvalue() == "out\nerr\n"
    with pytest.raises(WasmetoolError, match="not found"):
        runner(["/no/such/compiler"], cwd=tmp_path)


def test_assemblyscript_inputs_are_sources_and_manifests_not_runtime_config(tmp_path: Path) -> None:
    for name in ("assembly/index.ts", "package.json", "package-lock.json", "asconfig.json",
                 "runtime-config.json", "README.md", "node_modules/x/index.ts", "build/a.js"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    names = {p.relative_to(tmp_path).as_posix()
             for p in AssemblyScriptBuilder().cache_inputs(tmp_path)}
    assert names == {"assembly/index.ts", "package.json", "package-lock.json", "asconfig.json"}


def test_go_inputs_are_sources_and_module_files(tmp_path: Path) -> None:
    for name in ("main.go", "internal/x.go", "go.mod", "go.sum", "runtime-config.json",
                 "README.md", "vendor/modules.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    names = {p.relative_to(tmp_path).as_posix() for p in TinyGoBuilder().cache_inputs(tmp_path)}
    assert names == {"main.go", "internal/x.go", "go.mod", "go.sum", "vendor/modules.txt"}


def test_build_without_project_file_names_the_fix(cli, tmp_path: Path) -> None:
    result = cli("build", str(tmp_path), "-t", "x:v1")
    assert result.code == 1
    assert "no wasmetool.toml" in result.err and "wasmetool build LANGUAGE SRC" in result.err


def test_build_of_a_missing_directory_is_refused(cli, tmp_path: Path) -> None:
    result = cli("build", "go", str(tmp_path / "nope"), "-t", "x:v1")
    assert result.code == 1 and "does not exist" in result.err


def test_unknown_toolchain_is_refused(cli, tmp_path: Path) -> None:
    assert cli("init", str(tmp_path / "p"), "--language", "go").code == 0
    result = cli("build", str(tmp_path / "p"), "-t", "x:v1", "--toolchain", "bazel")
    assert result.code == 1 and "unknown toolchain 'bazel'" in result.err
