"""The three image layouts Istio's fetcher accepts, and safe extraction of plugin.wasm.

Istio tries, in order (wasme_anchor.md §3):
  docker  - Docker v2 manifest whose LAST layer is a rootfs tar+gzip holding plugin.wasm
  oci     - any manifest whose LAST layer is an OCI tar+gzip holding plugin.wasm
  wasme   - exactly two layers, one of them the raw wasm layer
"""

from __future__ import annotations

import gzip
import io
import posixpath
import tarfile
import zlib
from typing import Any, Literal

from wasmetool.errors import WasmetoolError
from wasmetool.oci import mediatypes as mt

ImageFormat = Literal["wasme", "oci", "docker"]
PLUGIN_FILE = "plugin.wasm"
MAX_WASM_BYTES = 256 * 1024 * 1024  # Istio's default ISTIO_WASM_MAX_BINARY_SIZE_BYTES


def _layers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    layers = manifest.get("layers")
    if not isinstance(layers, list) or not layers:
        raise WasmetoolError("the image manifest has no layers", "is this a wasm filter image?")
    return layers


def image_format(manifest: dict[str, Any]) -> ImageFormat:
    """Classify a manifest by Istio's selection rules; raise if Istio would refuse it."""
    layers = _layers(manifest)
    last = layers[-1].get("mediaType")
    if manifest.get("mediaType") == mt.DOCKER_MANIFEST and last == mt.DOCKER_LAYER_TAR_GZIP:
        return "docker"
    if last == mt.OCI_LAYER_TAR_GZIP:
        return "oci"
    if len(layers) == 2 and any(layer.get("mediaType") == mt.WASM_LAYER for layer in layers):
        return "wasme"
    if any(layer.get("mediaType") == mt.WASM_LAYER for layer in layers):
        # wasme-style with a number of layers Istio refuses; we can still read it.
        return "wasme"
    raise WasmetoolError(
        "the image is not a wasm filter in any format Istio accepts",
        "expected a raw wasm layer, or a last tar+gzip layer holding plugin.wasm",
    )


def wasm_layer(manifest: dict[str, Any]) -> dict[str, Any]:
    """The layer descriptor that carries the module (raw, or tar+gzip with plugin.wasm)."""
    layers = _layers(manifest)
    if image_format(manifest) == "wasme":
        return next(layer for layer in layers if layer.get("mediaType") == mt.WASM_LAYER)
    return layers[-1]


def extract_plugin_wasm(blob: bytes, max_size: int = MAX_WASM_BYTES) -> bytes:
    """Return plugin.wasm from a gzipped tar layer.

    Safe by construction: the tar is only read in memory (nothing is written to
    disk, so no path can escape), links and devices are ignored, and both the
    decompressed stream and the file are capped at ``max_size``.
    """
    try:
        raw = _gunzip_capped(blob, max_size * 2)
    except (OSError, EOFError, zlib.error) as exc:
        raise WasmetoolError(f"the image layer is not valid gzip: {exc}") from None
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as archive:
            for member in archive:
                name = posixpath.normpath(member.name.lstrip("/"))
                if posixpath.basename(name) != PLUGIN_FILE or not member.isreg():
                    continue
                if member.size > max_size:
                    raise WasmetoolError(
                        f"plugin.wasm in the image is {member.size} bytes, over the {max_size} byte limit"
                    )
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                return handle.read()
    except tarfile.TarError as exc:
        raise WasmetoolError(f"the image layer is not a valid tar archive: {exc}") from None
    raise WasmetoolError("the image layer holds no plugin.wasm", "build the image with plugin.wasm at its root")


def _gunzip_capped(blob: bytes, cap: int) -> bytes:
    stream = gzip.GzipFile(fileobj=io.BytesIO(blob))
    out = stream.read(cap + 1)
    if len(out) > cap:
        raise WasmetoolError(f"the image layer unpacks to more than {cap} bytes", "refusing a decompression bomb")
    return out


def make_plugin_tar_gz(wasm: bytes) -> bytes:
    """A deterministic gzipped tar holding one file, plugin.wasm (for the compat formats)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo(PLUGIN_FILE)
        info.size = len(wasm)
        info.mode = 0o644
        info.mtime = 0
        archive.addfile(info, io.BytesIO(wasm))
    return gzip.compress(buffer.getvalue(), mtime=0)
