"""push / pull against a real docker-registry (distribution 2.8) with no auth."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime

from tests.support.registry import RegistryServer, istio_select_wasm, registry_get, start_registry
from wasmetool import paths
from wasmetool.oci.runtime_config import RuntimeConfig
from wasmetool.store import Store

pytestmark = pytest.mark.integration

FILTER = bytes(
    wasmtime.wat2wasm(
        '(module (import "env" "proxy_log" (func (param i32 i32 i32) (result i32)))'
        ' (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1"))'
        ' (data (i32.const 16) "wasmetool registry round trip"))'
    )
)
MANIFEST_TYPES = {
    "wasme": "application/vnd.oci.image.manifest.v1+json",
    "oci": "application/vnd.oci.image.manifest.v1+json",
    "docker": "application/vnd.docker.distribution.manifest.v2+json",
}
ACCEPT = ", ".join(sorted(set(MANIFEST_TYPES.values())))


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("registry-open"))
    yield server
    server.stop()


def _store_files() -> dict[str, bytes]:
    root = paths.store_dir()
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".lock" not in p.name and ".tmp" not in p.parts}


def _build(ref: str, wasm: bytes = FILTER) -> None:
    Store.open().add_image(wasm, RuntimeConfig(abi_versions=["v0.2.1"], root_ids=["rt"]), ref)


@pytest.mark.parametrize("fmt", ["wasme", "oci", "docker"])
def test_round_trip_in_each_format(cli, registry: RegistryServer, fmt: str) -> None:
    ref = f"{registry.host}/team/filter-{fmt}:v1"
    _build(ref)
    pushed = cli("push", ref, "--format", fmt, "-o", "json")
    assert pushed.code == 0, pushed.err
    result = json.loads(pushed.out)
    assert result["format"] == fmt and result["blobsUploaded"] >= 1

    # What is in the registry, read without wasmetool: the digest matches, and
    # Istio's selection rule finds exactly our module.
    raw, headers = registry_get(registry, f"/v2/team/filter-{fmt}/manifests/v1", ACCEPT)
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == result["digest"]
    assert headers["Docker-Content-Digest"] == result["digest"]
    manifest = json.loads(raw)
    assert manifest["mediaType"] == MANIFEST_TYPES[fmt]
    variant, module = istio_select_wasm(
        manifest, lambda d: registry_get(registry, f"/v2/team/filter-{fmt}/blobs/{d}")[0])
    assert (variant, module) == (fmt, FILTER)

    assert cli("rm", ref).code == 0
    pulled = cli("pull", ref, "-o", "json")
    assert pulled.code == 0, pulled.err
    info = json.loads(pulled.out)
    assert info["digest"] == result["digest"] and info["format"] == fmt
    assert info["moduleSha256"] == hashlib.sha256(FILTER).hexdigest()
    image = Store.open().resolve(ref)
    assert image.wasm_bytes() == FILTER
    assert image.manifest_descriptor.digest == result["digest"]
    assert image.raw_manifest == raw
    assert image.runtime_config.abi_versions == ["v0.2.1"]


def test_wasme_format_lists_the_config_as_a_layer(cli, registry: RegistryServer) -> None:
    ref = f"{registry.host}/team/wasme-layout:v1"
    _build(ref)
    assert cli("push", ref).code == 0
    raw, _ = registry_get(registry, "/v2/team/wasme-layout/manifests/v1", ACCEPT)
    manifest = json.loads(raw)
    assert manifest["config"]["mediaType"] == "application/vnd.module.wasm.config.v1+json"
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.module.wasm.config.v1+json",
        "application/vnd.module.wasm.content.layer.v1+wasm",
    ]
    assert manifest["layers"][0]["digest"] == manifest["config"]["digest"]


def test_pull_by_digest_and_to_another_name(cli, registry: RegistryServer) -> None:
    ref = f"{registry.host}/team/bydigest:v1"
    _build(ref)
    digest = json.loads(cli("push", ref, "-o", "json").out)["digest"]
    assert cli("push", ref, f"{registry.host}/team/copy:v2").code == 0
    cli("rm", ref)
    pinned = f"{registry.host}/team/bydigest@{digest}"
    pulled = cli("pull", pinned, "-o", "json")
    assert pulled.code == 0, pulled.err
    assert json.loads(pulled.out)["digest"] == digest
    assert Store.open().resolve(pinned).wasm_bytes() == FILTER
    copy = cli("pull", f"{registry.host}/team/copy:v2", "-o", "json")
    assert json.loads(copy.out)["digest"] == digest
    both = cli("pull", f"{registry.host}/team/copy:v3@{digest}", "-o", "json")  # digest wins
    assert both.code == 0 and json.loads(both.out)["ref"] == f"{registry.host}/team/copy:v3"
    assert Store.open().resolve(f"{registry.host}/team/copy:v3").manifest_descriptor.digest == digest


def test_repush_uploads_no_blobs(cli, registry: RegistryServer) -> None:
    ref = f"{registry.host}/team/repush:v1"
    _build(ref, FILTER + b"\0")  # distinct content, so the first push must upload
    before = registry.blob_uploads()
    first = json.loads(cli("push", ref, "-o", "json").out)
    assert first["blobsUploaded"] == 2 and registry.blob_uploads() == before + 2
    for fmt in ("wasme", "wasme", "oci", "oci"):
        cli("push", ref, "--format", fmt)
    middle = registry.blob_uploads()
    again = json.loads(cli("push", ref, "-o", "json").out)
    again_oci = json.loads(cli("push", ref, "--format", "oci", "-o", "json").out)
    assert again["blobsUploaded"] == 0 and again["blobsSkipped"] == 2
    assert again_oci["blobsUploaded"] == 0
    assert registry.blob_uploads() == middle  # counted by the registry itself
    assert again["digest"] == first["digest"]


def test_tampered_blob_is_refused_and_store_unchanged(cli, registry: RegistryServer) -> None:
    ref = f"{registry.host}/team/tampered:v1"
    wasm = FILTER + b"tamper-me"
    _build(ref, wasm)
    assert cli("push", ref).code == 0
    image = Store.open().resolve(ref)
    wasm_digest = image.wasm_digest
    cli("rm", ref)
    blob = registry.blob_path(wasm_digest)
    original = blob.read_bytes()
    blob.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))  # same size, one bit pattern off
    try:
        before = _store_files()
        result = cli("pull", ref)
        assert result.code == 1
        assert "does not match its digest" in result.err and "nothing was stored" in result.err
        assert "Traceback" not in result.err
        assert _store_files() == before
        assert list((paths.store_dir() / ".tmp").iterdir()) == []  # no ingest file left
    finally:
        blob.write_bytes(original)
    assert cli("pull", ref).code == 0


def test_unknown_repository_and_unknown_tag(cli, registry: RegistryServer) -> None:
    ref = f"{registry.host}/team/known:v1"
    _build(ref)
    assert cli("push", ref).code == 0
    missing_tag = cli("pull", f"{registry.host}/team/known:v9")
    assert missing_tag.code == 1
    assert "tag 'v9' not found" in missing_tag.err and "available tags: v1" in missing_tag.err
    missing_repo = cli("pull", f"{registry.host}/team/never-pushed:v1")
    assert missing_repo.code == 1 and "repository team/never-pushed does not exist" in missing_repo.err


def test_push_of_unknown_local_image(cli, registry: RegistryServer) -> None:
    result = cli("push", f"{registry.host}/team/nothing:v1")
    assert result.code == 1 and "no image" in result.err and "local store" in result.err


def test_unreachable_registry_is_one_clear_line(cli, tmp_path: Path) -> None:
    from tests.support.ports import free_port

    result = cli("pull", f"127.0.0.1:{free_port()}/team/x:v1")
    assert result.code == 1
    assert "connection refused" in result.err and result.err.count("\n") == 1


def test_pull_refuses_a_non_filter_image(cli, registry: RegistryServer) -> None:
    """An ordinary container image (no wasm layer, no compat layer) is refused, store unchanged."""
    import urllib.request

    config = b"{}"
    layer = b"not a filter"
    for data in (config, layer):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        post = urllib.request.Request(f"{registry.base_url}/v2/team/plain/blobs/uploads/",
                                      method="POST", data=b"")
        location = urllib.request.urlopen(post).headers["Location"]
        put = urllib.request.Request(f"{location}&digest={digest}", method="PUT", data=data,
                                     headers={"Content-Type": "application/octet-stream"})
        urllib.request.urlopen(put)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest(), "size": len(layer)}],
    }).encode()
    urllib.request.urlopen(urllib.request.Request(
        f"{registry.base_url}/v2/team/plain/manifests/v1", method="PUT", data=manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}))
    Store.open()  # an empty store exists before, so "unchanged" compares like with like
    before = _store_files()
    result = cli("pull", f"{registry.host}/team/plain:v1")
    assert result.code == 1 and "not a wasm filter" in result.err
    assert _store_files() == before


def test_list_remote_tags(cli, registry: RegistryServer) -> None:
    for tag in ("v1", "v2"):
        _build(f"{registry.host}/team/listed:{tag}")
        assert cli("push", f"{registry.host}/team/listed:{tag}").code == 0
    table = cli("list", "--remote", f"{registry.host}/team/listed")
    assert table.code == 0, table.err
    assert [line.split() for line in table.out.splitlines()] == [
        ["NAME", "TAG"], [f"{registry.host}/team/listed", "v1"], [f"{registry.host}/team/listed", "v2"]]
    data = json.loads(cli("list", "--remote", f"{registry.host}/team/listed", "-o", "json").out)
    assert [item["tag"] for item in data] == ["v1", "v2"]
    missing = cli("list", "--remote", f"{registry.host}/team/unknown")
    assert missing.code == 1 and "does not exist" in missing.err


def test_push_to_another_repository_mounts_instead_of_uploading(cli, registry: RegistryServer) -> None:
    ref = f"{registry.host}/team/mount-source:v1"
    _build(ref, FILTER + b"mount")
    assert json.loads(cli("push", ref, "-o", "json").out)["blobsUploaded"] == 2
    result = json.loads(cli("push", ref, f"{registry.host}/team/mount-target:v1", "-o", "json").out)
    assert result["blobsMounted"] == 2 and result["blobsUploaded"] == 0
    mounts = [(path, status) for method, path, status in registry.requests()
              if method == "POST" and "/team/mount-target/" in path]
    assert len(mounts) == 2 and all("mount=" in path and status == 201 for path, status in mounts)
    raw, _ = registry_get(registry, "/v2/team/mount-target/manifests/v1", ACCEPT)
    variant, module = istio_select_wasm(
        json.loads(raw), lambda d: registry_get(registry, f"/v2/team/mount-target/blobs/{d}")[0])
    assert (variant, module) == ("wasme", FILTER + b"mount")


def test_failed_mount_reuses_the_upload_session(cli, registry: RegistryServer) -> None:
    wasm = FILTER + b"never-pushed"
    _build(f"{registry.host}/team/local-only:v1", wasm)   # same blobs, never pushed
    ref = f"{registry.host}/team/fresh:v1"
    _build(ref, wasm)
    result = json.loads(cli("push", ref, "-o", "json").out)
    assert result["blobsMounted"] == 0 and result["blobsUploaded"] == 2
    posts = [(path, status) for method, path, status in registry.requests()
             if method == "POST" and "/team/fresh/" in path]
    # One POST per blob: the mount attempt's 202 session carried the upload.
    assert len(posts) == 2 and all("mount=" in path and status == 202 for path, status in posts)
    cli("rm", ref)
    assert cli("pull", ref).code == 0 and Store.open().resolve(ref).wasm_bytes() == wasm
