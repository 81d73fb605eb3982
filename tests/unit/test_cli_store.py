"""The store commands as a user runs them: output, exit codes, and refusals."""

import json
from pathlib import Path

import pytest
import wasmtime

from wasmetool import paths

FILTER = bytes(
    wasmtime.wat2wasm(
        '(module (import "env" "proxy_log" (func (param i32 i32 i32) (result i32)))'
        ' (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_0")))'
    )
)
NOT_PROXY_WASM = bytes(wasmtime.wat2wasm('(module (func (export "add") (result i32) i32.const 1))'))


@pytest.fixture
def filter_file(tmp_path: Path) -> Path:
    path = tmp_path / "filter.wasm"
    path.write_bytes(FILTER)
    return path


def _store_files() -> dict[str, bytes]:
    root = paths.store_dir()
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_build_precompiled_then_list(cli, filter_file: Path) -> None:
    built = cli("build", "precompiled", str(filter_file), "-t", "me/f:v1", "--root-id", "my_root")
    assert built.code == 0, built.err
    assert "me/f:v1" in built.out and "v0.2.0" in built.out

    listed = cli("list")
    header, row = listed.out.splitlines()
    assert header.split() == ["NAME", "TAG", "SIZE", "DIGEST", "UPDATED"]
    assert row.split()[:2] == ["me/f", "v1"]

    data = json.loads(cli("list", "-o", "json").out)
    assert data[0]["ref"] == "docker.io/me/f:v1" and data[0]["size"] == len(FILTER)

    inspected = json.loads(cli("inspect", "me/f:v1", "-o", "json").out)
    assert inspected["config"] == {"type": "envoy_proxy", "abiVersions": ["v0.2.0"], "config": {"rootIds": ["my_root"]}}
    assert {"module": "env", "name": "proxy_log", "type": "func(i32, i32, i32) -> (i32)"} in inspected["imports"]
    assert {"name": "proxy_abi_version_0_2_0", "type": "func() -> ()"} in inspected["exports"]


def test_build_precompiled_with_a_runtime_config(cli, filter_file: Path, tmp_path: Path) -> None:
    config = tmp_path / "runtime-config.json"
    config.write_text('{"type":"envoy_proxy","abiVersions":["v0.2.0","v0.2.1"],"config":{"rootIds":["a","b"]}}')
    assert cli("build", "precompiled", str(filter_file), "-t", "me/f:v1", "--config", str(config)).code == 0
    inspected = json.loads(cli("inspect", "me/f:v1", "-o", "json").out)
    assert inspected["config"]["abiVersions"] == ["v0.2.0", "v0.2.1"]
    assert inspected["config"]["config"]["rootIds"] == ["a", "b"]


def test_tag_rm_prune(cli, filter_file: Path) -> None:
    cli("build", "precompiled", str(filter_file), "-t", "me/f:v1")
    assert cli("tag", "me/f:v1", "localhost:5000/f:v2").code == 0
    refs = [i["ref"] for i in json.loads(cli("list", "-o", "json").out)]
    assert sorted(refs) == ["docker.io/me/f:v1", "localhost:5000/f:v2"]
    assert cli("rm", "me/f:v1", "localhost:5000/f:v2").code == 0
    assert json.loads(cli("list", "-o", "json").out) == []
    assert list((paths.store_dir() / "blobs" / "sha256").iterdir()) == []
    assert json.loads(cli("prune", "-o", "json").out) == {"blobsRemoved": 0, "bytesFreed": 0}


def test_inspect_a_wasm_file(cli, filter_file: Path) -> None:
    result = cli("inspect", str(filter_file))
    assert result.code == 0
    assert "Module ABI:   v0.2.0" in result.out and "env.proxy_log" in result.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "precompiled", "{missing}", "-t", "me/f:v1"], "does not exist"),
        (["build", "precompiled", "{text}", "-t", "me/f:v1"], "not a WebAssembly module"),
        (["build", "precompiled", "{broken}", "-t", "me/f:v1"], "not a valid WebAssembly module"),
        (["build", "precompiled", "{plain}", "-t", "me/f:v1"], "not a proxy-wasm filter"),
        (["build", "precompiled", "{good}", "-t", "Me/F:"], "invalid"),
        (["build", "precompiled", "{good}", "-t", "me/f:v1", "--config", "{text}"], "not valid JSON"),
        (["build", "precompiled", "{good}", "-t", "me/f:v1", "--config", "{badconfig}"], "abiVersions"),
        (["tag", "me/unknown:v1", "me/x:v1"], "no image me/unknown:v1"),
        (["rm", "me/unknown:v1"], "no image me/unknown:v1"),
        (["inspect", "me/unknown:v1"], "no image me/unknown:v1"),
        (["inspect", "{missing}"], "does not exist"),
        (["list", "-o", "yaml"], "unknown output format"),
        (["run", "{good}", "--plugins", "{binyaml}"], "is not UTF-8 text"),
        (["build", "precompiled", "{good}"], "Missing option"),
        (["no-such-command"], "No such command"),
    ],
)
def test_bad_input_is_one_line_exit_1_and_store_unchanged(
    cli, tmp_path: Path, filter_file: Path, args: list[str], message: str
) -> None:
    files = {
        "missing": tmp_path / "missing.wasm",
        "text": tmp_path / "notes.txt",
        "broken": tmp_path / "broken.wasm",
        "plain": tmp_path / "plain.wasm",
        "good": filter_file,
        "badconfig": tmp_path / "bad-config.json",
        "binyaml": tmp_path / "plugins.yaml",
    }
    files["binyaml"].write_bytes(b"\xff\xfe\x00binary")
    files["text"].write_text("hello, not wasm")
    files["broken"].write_bytes(b"\0asm\x01\0\0\0\xff\xff")
    files["plain"].write_bytes(NOT_PROXY_WASM)
    files["badconfig"].write_text('{"abiVersions": "v0.2.1"}')
    cli("build", "precompiled", str(filter_file), "-t", "me/keep:v1")
    before = _store_files()

    result = cli(*[a.format(**files) for a in args])

    assert result.code == 1
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    assert message in lines[0]
    assert "Traceback" not in result.err
    assert _store_files() == before


def test_rm_with_one_unknown_ref_removes_nothing(cli, filter_file: Path) -> None:
    cli("build", "precompiled", str(filter_file), "-t", "me/f:v1")
    result = cli("rm", "me/f:v1", "me/nope:v1")
    assert result.code == 1
    assert [i["ref"] for i in json.loads(cli("list", "-o", "json").out)] == ["docker.io/me/f:v1"]


def test_corrupt_store_is_reported_not_crashed(cli, cli_process, filter_file: Path) -> None:
    cli("build", "precompiled", str(filter_file), "-t", "me/f:v1")
    (paths.store_dir() / "index.json").write_text("[]]")
    result = cli_process("list")
    assert result.code == 1
    assert result.err.startswith("error: the store index") and "Traceback" not in result.err


def test_version(cli) -> None:
    result = cli("version", "-o", "json")
    assert json.loads(result.out)["wasmetool"]


def test_run_refuses_a_file_that_is_not_wasm(cli_process, tmp_path: Path) -> None:
    text = tmp_path / "filter.wat"
    text.write_text("(module)")
    result = cli_process("run", str(text), "--listen", "127.0.0.1:0", "--admin", "off")
    assert result.code == 1
    assert result.err.strip() == (
        f"error: {text} is not a WebAssembly module (no \\0asm magic) "
        "(pass the compiled .wasm file, not source or text)"
    )
