import json
import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime

from tests.unit.store.oci_layout_reader import read_layout
from wasmetool import paths
from wasmetool.errors import WasmetoolError
from wasmetool.oci import mediatypes as mt
from wasmetool.oci.runtime_config import RuntimeConfig
from wasmetool.store import Store

MODULE = bytes(
    wasmtime.wat2wasm(
        '(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1"))'
        ' (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1))'
    )
)


@pytest.fixture
def store() -> Store:
    return Store.open()


def test_layout_is_a_valid_oci_image_layout(store: Store) -> None:
    config = RuntimeConfig(abi_versions=["v0.2.1"], root_ids=["my_root"])
    store.add_image(MODULE, config, "me/filter:v1")
    store.tag("localhost:5000/filter:v2", store.resolve("me/filter:v1").manifest_descriptor)

    images = read_layout(paths.store_dir())

    assert set(images) == {"docker.io/me/filter:v1", "localhost:5000/filter:v2"}
    image = images["docker.io/me/filter:v1"]
    manifest = image["manifest"]
    assert manifest["config"]["mediaType"] == mt.WASM_CONFIG
    assert json.loads(image["config"]) == {
        "type": "envoy_proxy",
        "abiVersions": ["v0.2.1"],
        "config": {"rootIds": ["my_root"]},
    }
    # wasme's layout: exactly two layers, the config and the raw module.
    assert [layer["mediaType"] for layer in manifest["layers"]] == [mt.WASM_CONFIG, mt.WASM_LAYER]
    assert image["layers"][1] == MODULE


def test_same_module_stored_twice_shares_blobs(store: Store) -> None:
    config = RuntimeConfig(abi_versions=["v0.2.1"])
    first = store.add_image(MODULE, config, "me/a:v1")
    second = store.add_image(MODULE, config, "me/b:v1")
    assert first.manifest_descriptor.digest == second.manifest_descriptor.digest
    assert len(list((paths.store_dir() / "blobs" / "sha256").iterdir())) == 3


def test_sixteen_parallel_tag_processes_lose_nothing(store: Store) -> None:
    store.add_image(MODULE, RuntimeConfig(abi_versions=["v0.2.1"]), "me/base:v1")
    code = (
        "import sys; from wasmetool.cli.main import main; "
        "sys.exit(main(['tag', 'me/base:v1', f'me/copy:v{sys.argv[1]}']))"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(n)]) for n in range(16)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 16
    refs = {str(image.ref) for image in store.images()}
    assert refs == {"docker.io/me/base:v1"} | {f"docker.io/me/copy:v{n}" for n in range(16)}
    read_layout(paths.store_dir())


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_blob_is_reported_by_name_and_never_served(store: Store) -> None:
    image = store.add_image(MODULE, RuntimeConfig(abi_versions=["v0.2.1"]), "me/filter:v1")
    _flip_last_byte(store.blob_path(image.wasm_digest))
    with pytest.raises(WasmetoolError) as info:
        store.resolve("me/filter:v1").wasm_bytes()
    assert image.wasm_digest in str(info.value)
    assert "corrupt" in str(info.value)


def test_rm_of_last_ref_reclaims_blobs_and_shared_ones_survive(store: Store) -> None:
    config = RuntimeConfig(abi_versions=["v0.2.1"])
    store.add_image(MODULE, config, "me/a:v1")
    store.tag("me/a:v2", store.resolve("me/a:v1").manifest_descriptor)
    blobs = paths.store_dir() / "blobs" / "sha256"
    assert store.remove("me/a:v1") == 0  # v2 still uses every blob
    assert len(list(blobs.iterdir())) == 3
    assert store.remove("me/a:v2") > 0
    assert list(blobs.iterdir()) == []


def test_prune_reclaims_unreferenced_blobs(store: Store) -> None:
    store.put_blob(b"orphan", "application/octet-stream")
    store.add_image(MODULE, RuntimeConfig(abi_versions=["v0.2.1"]), "me/a:v1")
    count, freed = store.prune()
    assert (count, freed) == (1, len(b"orphan"))
    assert store.resolve("me/a:v1").wasm_bytes() == MODULE


def test_put_blob_refuses_content_that_does_not_match_its_digest(store: Store) -> None:
    with pytest.raises(WasmetoolError):
        store.put_blob(b"tampered", "application/octet-stream", expected_digest="sha256:" + "0" * 64)
    assert list((paths.store_dir() / "blobs" / "sha256").iterdir()) == []


def test_corrupt_index_is_a_clear_error(store: Store) -> None:
    (paths.store_dir() / "index.json").write_text("{not json")
    with pytest.raises(WasmetoolError) as info:
        store.images()
    assert "index.json" in str(info.value) and "corrupt" in str(info.value)
