"""What a push sends: a manifest and its blobs, in one of the three formats.

  wasme   config application/vnd.module.wasm.config.v1+json, and the layers
          [config, raw wasm] — Istio's OCI-wasm rule wants exactly two layers,
          one of them the wasm layer, and wasme listed the config as a layer too.
  oci     OCI image manifest; config application/vnd.oci.image.config.v1+json;
          one (last) layer application/vnd.oci.image.layer.v1.tar+gzip holding
          plugin.wasm.  Annotations keep the ABI versions and runtime type.
  docker  Docker v2 manifest; config application/vnd.docker.container.image.v1+json;
          last layer application/vnd.docker.image.rootfs.diff.tar.gzip holding
          plugin.wasm.

An image already stored in the requested format is pushed byte for byte (same
manifest digest).  Otherwise it is converted; conversions are deterministic
(tar and gzip with fixed times), so converting the same module twice gives the
same digests, and the result is kept in the local store (and remembered in the
cache directory) so a re-push does not re-compress the module.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wasmetool import paths
from wasmetool.errors import WasmetoolError
from wasmetool.oci import mediatypes as mt
from wasmetool.oci.descriptor import Descriptor, sha256_digest
from wasmetool.oci.formats import make_plugin_tar_gz
from wasmetool.oci.runtime_config import RuntimeConfig
from wasmetool.store import Image, Store

log = logging.getLogger(__name__)

FORMATS = ("wasme", "oci", "docker")
COMPAT_VARIANT = "module.wasm.image/variant"


@dataclass
class PushContent:
    manifest: bytes
    media_type: str
    digest: str
    blobs: list[Descriptor]                 # unique, in upload order (layers, then config)
    load: Callable[[str], bytes]            # digest -> verified bytes
    format: str


def _container_config(runtime: RuntimeConfig, tar_digest: str) -> bytes:
    config: dict[str, Any] = {
        "architecture": "wasm",
        "os": "wasip1",
        "config": {"Labels": {
            mt.ABI_VERSION: ",".join(runtime.abi_versions),
            mt.RUNTIME_TYPE: runtime.type,
        }},
        "rootfs": {"type": "layers", "diff_ids": [tar_digest]},
    }
    return json.dumps(config, separators=(",", ":"), sort_keys=True).encode()


def compat_image(wasm: bytes, runtime: RuntimeConfig, fmt: str) -> tuple[bytes, str, dict[str, bytes]]:
    """(manifest, media type, blobs by digest) of an oci or docker compat image."""
    layer = make_plugin_tar_gz(wasm)
    tar_digest = sha256_digest(gzip.decompress(layer))
    config = _container_config(runtime, tar_digest)
    if fmt == "oci":
        manifest_type, config_type, layer_type = mt.OCI_MANIFEST, mt.OCI_CONFIG, mt.OCI_LAYER_TAR_GZIP
    elif fmt == "docker":
        manifest_type, config_type, layer_type = (
            mt.DOCKER_MANIFEST, mt.DOCKER_CONFIG, mt.DOCKER_LAYER_TAR_GZIP)
    else:
        raise ValueError(fmt)
    config_desc = Descriptor(config_type, sha256_digest(config), len(config))
    layer_desc = Descriptor(layer_type, sha256_digest(layer), len(layer),
                            {mt.TITLE: "plugin.wasm"} if fmt == "oci" else {})
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": config_desc.to_dict(),
        "layers": [layer_desc.to_dict()],
    }
    if fmt == "oci":
        manifest["annotations"] = {
            COMPAT_VARIANT: "compat",
            mt.ABI_VERSION: ",".join(runtime.abi_versions),
            mt.RUNTIME_TYPE: runtime.type,
        }
    raw = json.dumps(manifest, separators=(",", ":")).encode()
    return raw, manifest_type, {config_desc.digest: config, layer_desc.digest: layer}


def _children(manifest: dict[str, Any]) -> list[Descriptor]:
    seen: dict[str, Descriptor] = {}
    for item in [*(manifest.get("layers") or []), manifest.get("config") or {}]:
        desc = Descriptor.from_dict(item)
        seen.setdefault(desc.digest, desc)
    return list(seen.values())


def _from_store(store: Store, raw: bytes, media_type: str, fmt: str) -> PushContent:
    manifest = json.loads(raw)
    return PushContent(manifest=raw, media_type=media_type, digest=sha256_digest(raw),
                       blobs=_children(manifest), load=store.read_blob, format=fmt)


def _cache_file() -> Any:
    return paths.cache_dir() / "registry" / "conversions.json"


def _read_cache() -> dict[str, str]:
    try:
        data = json.loads(_cache_file().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _remember(key: str, digest: str) -> None:
    cache = _read_cache()
    cache[key] = digest
    path = _cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".conversions-", dir=path.parent)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(cache))
        os.replace(tmp, path)
    except OSError as exc:  # a cache: losing it only costs time
        log.debug("cannot write %s: %s", path, exc)


def push_content(store: Store, image: Image, fmt: str | None) -> PushContent:
    """The manifest and blobs that pushing ``image`` as ``fmt`` sends."""
    stored_format = image.format
    fmt = fmt or stored_format
    if fmt not in FORMATS:
        raise WasmetoolError(f"unknown image format '{fmt}'", "use --format wasme, oci or docker")
    media_type = image.manifest.get("mediaType") or image.manifest_descriptor.media_type
    if fmt == stored_format:
        return _from_store(store, image.raw_manifest, media_type, fmt)

    key = f"{image.manifest_descriptor.digest}:{fmt}"
    cached = _read_cache().get(key)
    if cached and store.has_valid_blob(cached):
        raw = store.read_blob(cached)
        content = _from_store(store, raw, json.loads(raw).get("mediaType", mt.OCI_MANIFEST), fmt)
        if all(store.has_valid_blob(b.digest) for b in content.blobs):
            return content

    wasm = image.wasm_bytes()
    runtime = image.runtime_config
    if fmt == "wasme":
        config = runtime.to_json_bytes()
        config_desc = store.put_blob(config, mt.WASM_CONFIG)
        wasm_desc = store.put_blob(wasm, mt.WASM_LAYER)
        from wasmetool.store.layout import wasme_manifest

        raw = wasme_manifest(config_desc, wasm_desc, runtime)
        manifest_type = mt.OCI_MANIFEST
    else:
        raw, manifest_type, blobs = compat_image(wasm, runtime, fmt)
        for digest, data in blobs.items():
            store.put_blob(data, "application/octet-stream", expected_digest=digest)
    store.put_manifest(raw, manifest_type)
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    _remember(key, digest)
    return _from_store(store, raw, manifest_type, fmt)
