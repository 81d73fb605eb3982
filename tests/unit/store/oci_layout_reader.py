"""An independent reader of OCI image layouts, written from the image-spec
(image-layout.md, image-index.md, manifest.md, descriptor.md) and sharing no
code with wasmetool.store. It raises AssertionError on anything the spec forbids.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")


def _blob(root: Path, digest: str) -> bytes:
    assert DIGEST.match(digest), f"bad digest {digest}"
    algorithm, encoded = digest.split(":", 1)
    assert algorithm == "sha256", f"unsupported algorithm {algorithm}"
    assert re.fullmatch(r"[a-f0-9]{64}", encoded), f"bad sha256 encoding {encoded}"
    data = (root / "blobs" / algorithm / encoded).read_bytes()
    assert hashlib.sha256(data).hexdigest() == encoded, f"blob {digest} does not match its name"
    return data


def _descriptor(root: Path, desc: dict) -> bytes:
    assert set(desc) >= {"mediaType", "digest", "size"}, f"descriptor lacks required fields: {desc}"
    assert MEDIA_TYPE.match(desc["mediaType"]), f"bad media type {desc['mediaType']}"
    assert isinstance(desc["size"], int) and desc["size"] >= 0
    data = _blob(root, desc["digest"])
    assert len(data) == desc["size"], f"size of {desc['digest']} is {len(data)}, descriptor says {desc['size']}"
    if "annotations" in desc:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in desc["annotations"].items())
    return data


def read_layout(root: Path) -> dict[str, dict]:
    """Validate the layout at ``root``; return {ref.name: {"manifest": ..., "config": bytes, "layers": [bytes]}}."""
    layout = json.loads((root / "oci-layout").read_text())
    assert layout == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((root / "index.json").read_text())
    assert index["schemaVersion"] == 2
    assert index.get("mediaType", "application/vnd.oci.image.index.v1+json") == (
        "application/vnd.oci.image.index.v1+json"
    )
    images: dict[str, dict] = {}
    for desc in index["manifests"]:
        manifest_bytes = _descriptor(root, desc)
        manifest = json.loads(manifest_bytes)
        assert manifest["schemaVersion"] == 2
        if "mediaType" in manifest:
            assert manifest["mediaType"] == desc["mediaType"]
        config = _descriptor(root, manifest["config"])
        layers = [_descriptor(root, layer) for layer in manifest["layers"]]
        name = desc.get("annotations", {}).get("org.opencontainers.image.ref.name")
        assert name, "every index entry of a wasmetool store carries a ref name"
        images[name] = {"manifest": manifest, "config": config, "layers": layers}
    return images
