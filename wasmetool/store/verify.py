"""Checking the store's content against its digests: per image, and for the whole store.

A blob altered on disk (or lost) makes every image that uses it unusable. The
readers already refuse such a blob (``Store.read_blob``); this module names
what is wrong so that ``list`` can mark it, ``inspect`` can explain it and
``verify`` can report on the whole store — and says how to repair it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from wasmetool.errors import WasmetoolError
from wasmetool.oci.descriptor import Descriptor
from wasmetool.oci.reference import Reference
from wasmetool.store.layout import Store

REPAIR_HINT = ("pull or build it again, which replaces the bad blobs, "
               "or remove it with 'wasmetool rm'")


@dataclass(frozen=True)
class BlobProblem:
    digest: str
    role: str      # "manifest", "config", "module" or "layer"
    state: str     # "missing" or "corrupt"

    def describe(self) -> str:
        what = "is missing" if self.state == "missing" else "does not match its digest"
        return f"the {self.role} blob {self.digest} {what}"

    def to_dict(self) -> dict[str, str]:
        return {"digest": self.digest, "role": self.role, "state": self.state}


@dataclass
class ImageHealth:
    ref: Reference
    descriptor: Descriptor
    updated: datetime | None
    problems: list[BlobProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        return "missing" if all(p.state == "missing" for p in self.problems) else "corrupt"

    def describe(self) -> str:
        return "; ".join(p.describe() for p in self.problems) or "every blob matches its digest"

    def to_dict(self) -> dict[str, object]:
        return {"ref": str(self.ref), "digest": self.descriptor.digest, "status": self.status,
                "problems": [p.to_dict() for p in self.problems]}


class BlobChecker:
    """Hashes each blob at most once however many images share it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._states: dict[str, str] = {}

    def seen(self, digest: str) -> bool:
        return digest in self._states

    def state(self, digest: str) -> str:
        if digest not in self._states:
            self._states[digest] = self.store.blob_state(digest)
        return self._states[digest]

    def image(self, ref: Reference, descriptor: Descriptor,
              updated: datetime | None = None) -> ImageHealth:
        health = ImageHealth(ref, descriptor, updated)
        state = self.state(descriptor.digest)
        if state != "ok":
            health.problems.append(BlobProblem(descriptor.digest, "manifest", state))
            return health  # the manifest cannot be trusted to name the other blobs
        try:
            manifest = json.loads(self.store.blob_path(descriptor.digest).read_bytes())
        except (OSError, ValueError):
            health.problems.append(BlobProblem(descriptor.digest, "manifest", "corrupt"))
            return health
        if not isinstance(manifest, dict):
            health.problems.append(BlobProblem(descriptor.digest, "manifest", "corrupt"))
            return health
        for role, item in _children(manifest):
            digest = item.get("digest")
            if not isinstance(digest, str) or not digest.startswith("sha256:"):
                continue
            state = self.state(digest)
            if state != "ok":
                health.problems.append(BlobProblem(digest, role, state))
        return health


def _children(manifest: dict) -> list[tuple[str, dict]]:
    from wasmetool.oci import mediatypes as mt

    children: list[tuple[str, dict]] = []
    seen: set[str] = set()
    config = manifest.get("config")
    if isinstance(config, dict):
        children.append(("config", config))
        seen.add(str(config.get("digest")))
    for layer in manifest.get("layers") or []:
        if not isinstance(layer, dict) or str(layer.get("digest")) in seen:
            continue
        seen.add(str(layer.get("digest")))
        media_type = str(layer.get("mediaType", ""))
        is_module = media_type == mt.WASM_LAYER or "tar" in media_type
        children.append(("module" if is_module else "layer", layer))
    return children


def check_image(store: Store, ref: Reference, descriptor: Descriptor,
                updated: datetime | None = None) -> ImageHealth:
    return BlobChecker(store).image(ref, descriptor, updated)


@dataclass
class StoreHealth:
    images: list[ImageHealth]
    unreferenced_corrupt: list[str]   # blobs no image uses that do not match their name

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.images) and not self.unreferenced_corrupt


def verify_store(store: Store, refs: list[Reference] | None = None) -> StoreHealth:
    """Hash every blob of every image (or of ``refs``); unused blobs too for the whole store."""
    checker = BlobChecker(store)
    entries = store.entries()
    if refs is not None:
        wanted = {str(r) for r in refs}
        entries = [e for e in entries if str(e[0]) in wanted]
    images = [checker.image(ref, desc, updated) for ref, desc, updated in entries]
    stray: list[str] = []
    if refs is None:
        for path in sorted(store.blobs.iterdir()):
            if path.name.startswith("."):
                continue
            digest = "sha256:" + path.name
            try:
                if not checker.seen(digest) and checker.state(digest) == "corrupt":
                    stray.append(digest)
            except WasmetoolError:  # a file whose name is no digest at all
                stray.append(digest)
    return StoreHealth(images, stray)
