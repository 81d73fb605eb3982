"""The images push builds, checked with an independent reading of Istio's rule,
and the safety of plugin.wasm extraction from compat layers."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest

from tests.support.registry import istio_select_wasm
from wasmetool.errors import WasmetoolError
from wasmetool.oci.formats import extract_plugin_wasm
from wasmetool.oci.runtime_config import RuntimeConfig
from wasmetool.registry.convert import compat_image, push_content
from wasmetool.store import Store

WASM = b"\0asm\x01\0\0\0" + bytes(range(256)) * 40


@pytest.mark.parametrize("fmt", ["oci", "docker"])
def test_compat_images_are_deterministic_and_istio_loadable(fmt: str) -> None:
    runtime = RuntimeConfig(abi_versions=["v0.2.1"])
    first = compat_image(WASM, runtime, fmt)
    assert compat_image(WASM, runtime, fmt) == first  # same bytes -> same digests -> no re-upload
    raw, media_type, blobs = first
    manifest = json.loads(raw)
    assert manifest["mediaType"] == media_type
    by_digest = {d: b for d, b in blobs.items()}
    assert istio_select_wasm(manifest, by_digest.__getitem__) == (fmt, WASM)


@pytest.mark.parametrize("fmt", ["wasme", "oci", "docker"])
def test_push_content_for_a_stored_image(fmt: str, tmp_path) -> None:
    store = Store(tmp_path / "store")
    image = store.add_image(WASM, RuntimeConfig(abi_versions=["v0.2.1"]), "me/f:v1")
    content = push_content(store, image, fmt)
    manifest = json.loads(content.manifest)
    assert istio_select_wasm(manifest, content.load) == (fmt, WASM)
    assert len({b.digest for b in content.blobs}) == len(content.blobs)
    if fmt == "wasme":
        assert content.manifest == image.raw_manifest  # pushed byte for byte
    # A second conversion reuses the first (no re-compression, same digest).
    assert push_content(store, image, fmt).digest == content.digest


def test_unknown_format_is_refused(tmp_path) -> None:
    store = Store(tmp_path / "store")
    image = store.add_image(WASM, RuntimeConfig(), "me/f:v1")
    with pytest.raises(WasmetoolError, match="unknown image format"):
        push_content(store, image, "helm")


def _tar_gz(entries: list[tarfile.TarInfo], payloads: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for info in entries:
            data = payloads.get(info.name)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(buffer.getvalue())


def _file(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def test_extraction_ignores_links_named_plugin_wasm() -> None:
    link = tarfile.TarInfo("plugin.wasm")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    blob = _tar_gz([link], {})
    with pytest.raises(WasmetoolError, match="no plugin.wasm"):
        extract_plugin_wasm(blob)
    hard = tarfile.TarInfo("plugin.wasm")
    hard.type = tarfile.LNKTYPE
    hard.linkname = "other"
    blob = _tar_gz([_file("other", 4), hard], {"other": b"\0asm"})
    with pytest.raises(WasmetoolError, match="no plugin.wasm"):
        extract_plugin_wasm(blob)


def test_extraction_never_writes_traversal_paths(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    blob = _tar_gz([_file("../../plugin.wasm", len(WASM))], {"../../plugin.wasm": WASM})
    assert extract_plugin_wasm(blob) == WASM  # read in memory only
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / "plugin.wasm").exists()


def test_extraction_caps_sizes() -> None:
    blob = _tar_gz([_file("plugin.wasm", 8000)], {"plugin.wasm": b"\0" * 8000})
    with pytest.raises(WasmetoolError, match="over the 6000 byte limit"):
        extract_plugin_wasm(blob, max_size=6000)
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))
    with pytest.raises(WasmetoolError, match="more than"):
        extract_plugin_wasm(bomb, max_size=1024 * 1024)


def test_extraction_of_garbage_is_a_clear_error() -> None:
    with pytest.raises(WasmetoolError, match="not valid gzip"):
        extract_plugin_wasm(b"definitely not gzip")
