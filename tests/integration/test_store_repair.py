"""A blob altered in the local store, against a real registry: pull replaces it,
push refuses to send it (and the registry gets no manifest)."""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime

from tests.support.registry import RegistryServer, registry_get, start_registry
from wasmetool import paths

pytestmark = pytest.mark.integration

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello.wasm"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("registry-repair"))
    yield server
    server.stop()


def _tamper(digest: str) -> None:
    path = paths.store_dir() / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.write_bytes(path.read_bytes()[:-1] + b"!")


def _entry(cli, ref: str) -> dict:
    return next(e for e in json.loads(cli("list", "-o", "json").out) if e["ref"] == ref)


def test_pull_replaces_a_corrupt_blob(cli, registry: RegistryServer) -> None:
    ref = f"{registry.host}/team/repair:v1"
    assert cli("build", "precompiled", str(HELLO), "-t", ref).code == 0
    assert cli("push", ref).code == 0
    _tamper(_entry(cli, ref)["wasmDigest"])
    assert _entry(cli, ref)["status"] == "corrupt"

    pulled = cli("pull", ref, "-o", "json")
    assert pulled.code == 0, pulled.err
    assert json.loads(pulled.out)["blobsDownloaded"] == 1  # only the bad one
    assert _entry(cli, ref)["status"] == "ok"
    assert cli("verify").code == 0


def test_push_refuses_a_corrupt_module(cli, tmp_path: Path, registry: RegistryServer) -> None:
    module = tmp_path / "other.wasm"
    module.write_bytes(wasmtime.wat2wasm(
        '(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_0"))'
        ' (data (i32.const 8) "a module the registry has not seen"))'))
    ref = f"{registry.host}/team/tampered:v1"
    assert cli("build", "precompiled", str(module), "-t", ref).code == 0
    _tamper(_entry(cli, ref)["wasmDigest"])
    pushed = cli("push", ref)
    assert pushed.code == 1
    lines = pushed.err.strip().splitlines()
    assert len(lines) == 1 and "corrupt" in lines[0], pushed.err
    with pytest.raises(urllib.error.HTTPError) as refused:
        registry_get(registry, "/v2/team/tampered/manifests/v1")
    assert refused.value.code == 404  # no manifest reached the registry
