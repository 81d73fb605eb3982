"""An image as the store holds it: a ref, its manifest, its config and its module."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from wasmetool.errors import WasmetoolError
from wasmetool.oci import mediatypes as mt
from wasmetool.oci.descriptor import Descriptor
from wasmetool.oci.formats import ImageFormat, extract_plugin_wasm, image_format, wasm_layer
from wasmetool.oci.reference import Reference
from wasmetool.oci.runtime_config import RuntimeConfig


class BlobSource(Protocol):
    """Where an image's blobs come from (the store's layout; digest-checked on read)."""

    def read_blob(self, digest: str) -> bytes: ...


@dataclass
class Image:
    store: BlobSource
    ref: Reference
    manifest_descriptor: Descriptor
    raw_manifest: bytes
    manifest: dict[str, Any]
    updated: datetime | None

    @classmethod
    def load(cls, store: BlobSource, ref: Reference, descriptor: Descriptor, updated: datetime | None) -> Image:
        raw = store.read_blob(descriptor.digest)
        try:
            manifest = json.loads(raw)
        except ValueError:
            raise WasmetoolError(
                f"the manifest of {ref.familiar} in the store is not JSON",
                f"remove it with 'wasmetool rm {ref.familiar}' and build or pull it again",
            ) from None
        if not isinstance(manifest, dict):
            raise WasmetoolError(f"the manifest of {ref.familiar} in the store is malformed")
        return cls(store, ref, descriptor, raw, manifest, updated)

    @property
    def format(self) -> ImageFormat:
        return image_format(self.manifest)

    @property
    def wasm_descriptor(self) -> Descriptor:
        return Descriptor.from_dict(wasm_layer(self.manifest))

    @property
    def wasm_digest(self) -> str:
        return self.wasm_descriptor.digest

    @property
    def wasm_size(self) -> int:
        return self.wasm_descriptor.size

    @property
    def config_descriptor(self) -> Descriptor:
        return Descriptor.from_dict(self.manifest.get("config") or {})

    @property
    def runtime_config(self) -> RuntimeConfig:
        config = self.config_descriptor
        raw = self.store.read_blob(config.digest)
        if config.media_type == mt.WASM_CONFIG:
            return RuntimeConfig.from_json_bytes(raw, f"the config of {self.ref.familiar}")
        # Compat images carry a container config; wasme's runtime settings, if any,
        # sit in the manifest annotations (OCI) or the config's labels (Docker v2
        # manifests have no annotations).
        settings: dict[str, str] = {}
        try:
            labels = (json.loads(raw).get("config") or {}).get("Labels") or {}
            if isinstance(labels, dict):
                settings.update({k: v for k, v in labels.items() if isinstance(v, str)})
        except (ValueError, AttributeError):
            pass
        settings.update(self.manifest.get("annotations") or {})
        abi = settings.get(mt.ABI_VERSION, "")
        return RuntimeConfig(
            type=settings.get(mt.RUNTIME_TYPE, "envoy_proxy"),
            abi_versions=[v for v in abi.split(",") if v],
        )

    def wasm_bytes(self) -> bytes:
        layer = self.wasm_descriptor
        blob = self.store.read_blob(layer.digest)
        if layer.media_type == mt.WASM_LAYER:
            return blob
        return extract_plugin_wasm(blob)
