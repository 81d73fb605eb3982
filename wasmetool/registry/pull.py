"""Pull an image from a registry into the local store.

Order matters for "nothing half-written": the manifest is fetched and checked
against its digest, the format is checked against Istio's rules, every blob
the store lacks is downloaded and checked against its digest, the module is
checked to be wasm — and only then is anything written to the store.  A
tampered or truncated blob therefore leaves the store exactly as it was.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from wasmetool.errors import WasmetoolError
from wasmetool.oci import mediatypes as mt
from wasmetool.oci.descriptor import Descriptor
from wasmetool.oci.formats import MAX_WASM_BYTES, extract_plugin_wasm, image_format, wasm_layer
from wasmetool.oci.reference import Reference, parse_reference
from wasmetool.registry.auth import repository_scope
from wasmetool.registry.client import TransportOptions
from wasmetool.registry.connect import in_parallel, open_client
from wasmetool.registry.progress import transfer_progress
from wasmetool.store import Store

WASM_MAGIC = b"\0asm"


@dataclass
class PullResult:
    ref: Reference
    digest: str
    format: str
    wasm_digest: str
    wasm_size: int
    module_sha256: str
    downloaded: int
    reused: int

    def to_dict(self) -> dict[str, object]:
        return {
            "ref": str(self.ref), "digest": self.digest, "format": self.format,
            "wasmDigest": self.wasm_digest, "size": self.wasm_size,
            "moduleSha256": self.module_sha256,
            "blobsDownloaded": self.downloaded, "blobsReused": self.reused,
        }


def _parse_manifest(raw: bytes, media_type: str, ref: Reference) -> dict:
    manifest = json.loads(raw)
    if not isinstance(manifest, dict):
        raise WasmetoolError(f"the manifest of {ref.familiar} is malformed")
    if media_type in (mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST) or "manifests" in manifest:
        children = [str(m.get("digest", ""))[:19] for m in manifest.get("manifests") or []
                    if isinstance(m, dict)]
        raise WasmetoolError(
            f"{ref.familiar} is a multi-platform index, not a single filter image",
            "pull one of its manifests by digest: " + ", ".join(children[:4]),
        )
    if media_type not in mt.MANIFEST_TYPES:
        raise WasmetoolError(f"{ref.familiar} has an unsupported manifest type '{media_type}'")
    return manifest


def pull_image(store: Store, ref: Reference | str, *, username: str | None = None,
               password: str | None = None, transport: TransportOptions | None = None,
               progress: bool | None = None) -> PullResult:
    reference = ref if isinstance(ref, Reference) else parse_reference(ref)
    scope = repository_scope(reference.repository, push=False)
    with open_client(reference.registry, username=username, password=password,
                     transport=transport) as client, transfer_progress(progress) as bars, \
            store.ingest() as ingest:
        raw, media_type, digest = client.get_manifest(
            reference.repository, reference.digest or reference.tag or "latest", scope)
        manifest = _parse_manifest(raw, media_type, reference)
        fmt = image_format(manifest)          # refuses what Istio could not load
        layer = Descriptor.from_dict(wasm_layer(manifest))
        children: dict[str, Descriptor] = {}
        for item in [manifest.get("config") or {}, *manifest["layers"]]:
            desc = Descriptor.from_dict(item)
            children.setdefault(desc.digest, desc)
        missing = [d for d in children.values() if not store.has_valid_blob(d.digest)]
        reused = len(children) - len(missing)
        for desc in missing:
            if desc.size > MAX_WASM_BYTES * 2:
                raise WasmetoolError(
                    f"blob {desc.digest[:19]} of {reference.familiar} is {desc.size} bytes, "
                    "over the size limit for a filter image")

        def download(desc: Descriptor) -> bytes:
            return client.get_blob(reference.repository, desc.digest, desc.size, scope,
                                   progress=bars.task(f"pull {desc.digest[7:19]}", desc.size),
                                   sink=ingest.open(desc.digest))

        fetched = dict(zip((d.digest for d in missing), in_parallel(download, missing),
                           strict=True))
        downloaded = client.stats.downloaded

        layer_bytes = fetched[layer.digest] if layer.digest in fetched else store.read_blob(layer.digest)
        wasm = layer_bytes if layer.media_type == mt.WASM_LAYER else extract_plugin_wasm(layer_bytes)
        if not wasm.startswith(WASM_MAGIC):
            raise WasmetoolError(
                f"{reference.familiar} does not hold a WebAssembly module",
                "the wasm layer lacks the \\0asm magic; nothing was stored",
            )
        module_sha256 = (layer.hex if layer.media_type == mt.WASM_LAYER
                         else hashlib.sha256(wasm).hexdigest())
        # Everything is verified: only now does the store change.
        for blob_digest in fetched:
            # client.get_blob hashed each blob against its digest as it arrived and
            # wrote it to its ingest file: moving that into place is all that is left.
            ingest.commit(blob_digest)
        descriptor = store.put_manifest(raw, media_type, expected_digest=digest)
        # name:tag@digest was checked against the digest; keep it under its tag.
        stored_as = reference.with_tag(reference.tag) if reference.tag and reference.digest else reference
        store.tag(stored_as, descriptor)
    return PullResult(ref=stored_as, digest=digest, format=fmt, wasm_digest=layer.digest,
                      wasm_size=len(wasm), module_sha256=module_sha256,
                      downloaded=downloaded, reused=reused)
