"""Push an image from the local store to a registry.

Every blob is checked with HEAD first and only sent when the registry lacks it,
then the manifest is PUT under the tag (or digest).  The manifest digest the
registry reports must equal the one computed locally.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from wasmetool.errors import WasmetoolError
from wasmetool.oci.descriptor import Descriptor
from wasmetool.oci.reference import Reference, parse_reference
from wasmetool.registry.auth import repository_scope
from wasmetool.registry.client import TransportOptions
from wasmetool.registry.connect import in_parallel, open_client
from wasmetool.registry.convert import push_content
from wasmetool.registry.progress import transfer_progress
from wasmetool.store import Store


@dataclass
class PushResult:
    ref: Reference
    digest: str
    media_type: str
    format: str
    uploaded: int
    skipped: int
    bytes_sent: int
    mounted: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "ref": str(self.ref), "digest": self.digest, "mediaType": self.media_type,
            "format": self.format, "blobsUploaded": self.uploaded,
            "blobsSkipped": self.skipped, "blobsMounted": self.mounted,
            "bytesUploaded": self.bytes_sent,
        }


class _LazySources:
    """Mount sources, computed the first time a blob is missing (never on a re-push)."""

    def __init__(self, store: Store, dst: Reference) -> None:
        self._store, self._dst = store, dst
        self._lock = threading.Lock()
        self._sources: dict[str, str] | None = None

    def get(self, digest: str) -> str | None:
        with self._lock:
            if self._sources is None:
                self._sources = _mount_sources(self._store, self._dst)
            return self._sources.get(digest)


def _mount_sources(store: Store, dst: Reference) -> dict[str, str]:
    """digest -> another repository on the same registry that should hold it.

    Taken from the local store: images stored under that registry's name were
    pushed there or pulled from there, so their blobs can be mounted instead of
    uploaded (the registry checks; a wrong guess costs nothing but the attempt).
    """
    sources: dict[str, str] = {}
    try:
        images = store.images()
    except WasmetoolError:  # an unrelated broken image must not stop a push
        return sources
    for image in images:
        if image.ref.registry != dst.registry or image.ref.repository == dst.repository:
            continue
        for item in [image.manifest.get("config") or {}, *(image.manifest.get("layers") or [])]:
            digest = item.get("digest") if isinstance(item, dict) else None
            if isinstance(digest, str):
                sources.setdefault(digest, image.ref.repository)
    return sources


def push_image(store: Store, source: Reference | str, target: Reference | str | None = None, *,
               image_format: str | None = None, username: str | None = None,
               password: str | None = None, transport: TransportOptions | None = None,
               progress: bool | None = None) -> PushResult:
    """Push ``source`` (a ref in the local store) to ``target`` (default: the same ref)."""
    src = source if isinstance(source, Reference) else parse_reference(source)
    dst = target if isinstance(target, Reference) else parse_reference(target) if target else src
    if target is None and src.digest and not src.tag:
        raise WasmetoolError(
            f"cannot push {src.familiar} without a tag",
            "give a target, e.g. wasmetool push NAME@sha256:... registry/name:v1",
        )
    image = store.resolve(src)
    content = push_content(store, image, image_format)
    if dst.digest and dst.digest != content.digest:
        raise WasmetoolError(
            f"the target digest {dst.digest[:19]}… does not match the manifest to push "
            f"({content.digest[:19]}…)",
            "push to a tag instead",
        )
    scope = repository_scope(dst.repository, push=True)
    with open_client(dst.registry, username=username, password=password,
                     transport=transport) as client, transfer_progress(progress) as bars:
        sources = _LazySources(store, dst)

        def send(blob: Descriptor) -> None:
            if client.blob_exists(dst.repository, blob.digest, scope):
                client.count(skipped=1)
                return
            session_url = None
            origin = sources.get(blob.digest)
            if origin:
                session_url = client.mount_blob(dst.repository, blob.digest, origin, scope)
                if session_url == "mounted":
                    return
            data = content.load(blob.digest)
            client.upload_blob(dst.repository, blob.digest, data, scope,
                               progress=bars.task(f"push {blob.digest[7:19]}", len(data)),
                               session_url=session_url)

        in_parallel(send, content.blobs)
        reference = dst.tag or content.digest  # a digest target equals content.digest
        remote_digest = client.put_manifest(dst.repository, reference, content.manifest,
                                            content.media_type, scope)
        if remote_digest and remote_digest != content.digest:
            raise WasmetoolError(
                f"{dst.registry} stored the manifest under digest {remote_digest[:19]}… "
                f"instead of {content.digest[:19]}…",
                "the registry rewrote the manifest; pull by tag to get its version",
            )
        stats = client.stats
    return PushResult(ref=dst, digest=content.digest, media_type=content.media_type,
                      format=content.format, uploaded=stats.uploaded, skipped=stats.skipped,
                      bytes_sent=stats.bytes_sent, mounted=stats.mounted)
