"""The store itself: an OCI image layout on disk.

    <root>/oci-layout            {"imageLayoutVersion": "1.0.0"}
    <root>/index.json            manifests, each tagged with org.opencontainers.image.ref.name
    <root>/blobs/sha256/<hex>    content, named by its digest
    <root>/.lock, <root>/.tmp/   our lock file and temporary files (not part of the layout)

Blobs are written atomically and verified on every read. index.json changes
happen under an exclusive flock, read-modify-write, so concurrent processes
(16 parallel `tag`s) lose nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from wasmetool import paths
from wasmetool.errors import WasmetoolError
from wasmetool.oci import mediatypes as mt
from wasmetool.oci.descriptor import Descriptor, check_digest, sha256_digest
from wasmetool.oci.reference import Reference, parse_reference
from wasmetool.oci.runtime_config import RuntimeConfig
from wasmetool.store.files import atomic_write, locked
from wasmetool.store.image import Image

LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
UPDATED = mt.CREATED  # index entry annotation: when this ref was last written


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _as_ref(ref: Reference | str) -> Reference:
    return ref if isinstance(ref, Reference) else parse_reference(ref)


def wasme_manifest(config: Descriptor, wasm: Descriptor, runtime: RuntimeConfig) -> bytes:
    """The manifest wasme pushed: config also listed as a layer, so exactly two layers."""
    config_layer = Descriptor(config.media_type, config.digest, config.size, {mt.TITLE: "runtime-config.json"})
    wasm_layer = Descriptor(wasm.media_type, wasm.digest, wasm.size, {mt.TITLE: "filter.wasm"})
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": config.to_dict(),
        "layers": [config_layer.to_dict(), wasm_layer.to_dict()],
        "annotations": {
            mt.ABI_VERSION: ",".join(runtime.abi_versions),
            mt.RUNTIME_TYPE: runtime.type,
        },
    }
    return json.dumps(manifest, separators=(",", ":")).encode()


class Ingest:
    """Blobs being received straight into the store's temporary directory.

    Each is written while it downloads (overlapping disk and network) and becomes
    visible only by ``commit`` — a rename into blobs/ — once the caller has checked
    it against its digest. Whatever is not committed is deleted on close.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._files: dict[str, tuple[str, BinaryIO]] = {}

    def open(self, digest: str) -> BinaryIO:
        check_digest(digest)
        fd, name = tempfile.mkstemp(prefix=".ingest-", dir=self.store.tmp)
        handle = os.fdopen(fd, "wb")
        self._files[digest] = (name, handle)
        return handle

    def commit(self, digest: str) -> None:
        """Move a fully received, already verified blob into place."""
        name, handle = self._files.pop(digest)
        handle.close()
        os.chmod(name, 0o644)
        os.replace(name, self.store.blob_path(digest))

    def close(self) -> None:
        for name, handle in self._files.values():
            handle.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        self._files.clear()


class Store:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.index_path = self.root / "index.json"
        self.lock_path = self.root / ".lock"
        self.tmp = self.root / ".tmp"
        self._ensure_layout()

    @classmethod
    def open(cls) -> Store:
        return cls(paths.store_dir())

    # -- layout ---------------------------------------------------------------

    def _ensure_layout(self) -> None:
        try:
            self.blobs.mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir(exist_ok=True)
            if not (self.root / "oci-layout").exists():
                atomic_write(self.root / "oci-layout", json.dumps(LAYOUT_VERSION).encode(), self.tmp)
            if not self.index_path.exists():
                with locked(self.lock_path):
                    if not self.index_path.exists():
                        self._write_index([])
        except OSError as exc:
            raise WasmetoolError(
                f"cannot use the store at {self.root}: {exc.strerror or exc}",
                "check permissions, or point WASMETOOL_HOME somewhere writable",
            ) from None

    def _read_index(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.index_path.read_bytes())
            manifests = data["manifests"]
            if not isinstance(manifests, list):
                raise TypeError("manifests is not a list")
            for entry in manifests:
                Descriptor.from_dict(entry)
            return manifests
        except FileNotFoundError:
            return []
        except (ValueError, KeyError, TypeError, WasmetoolError) as exc:
            raise WasmetoolError(
                f"the store index {self.index_path} is corrupt ({exc})",
                "restore it, or move the store aside and build or pull your images again",
            ) from None

    def _write_index(self, manifests: list[dict[str, Any]]) -> None:
        index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests}
        atomic_write(self.index_path, json.dumps(index, indent=2).encode(), self.tmp)

    # -- blobs ----------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blobs / check_digest(digest).split(":", 1)[1]

    def has_blob(self, digest: str) -> bool:
        """The blob's file is there (its content is not checked: see blob_state)."""
        return self.blob_path(digest).is_file()

    def blob_state(self, digest: str) -> str:
        """"ok", "missing" or "corrupt" (the content does not hash to its name)."""
        try:
            with open(self.blob_path(digest), "rb") as handle:
                actual = "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()
        except FileNotFoundError:
            return "missing"
        except IsADirectoryError:
            return "corrupt"
        return "ok" if actual == digest else "corrupt"

    def has_valid_blob(self, digest: str) -> bool:
        """The blob is there and its content matches its digest."""
        return self.blob_state(digest) == "ok"

    def put_blob(self, data: bytes, media_type: str, expected_digest: str | None = None) -> Descriptor:
        digest = sha256_digest(data)
        if expected_digest is not None and digest != expected_digest:
            raise WasmetoolError(
                f"content does not match its digest: expected {expected_digest}, got {digest}",
                "the data was corrupted or tampered with; nothing was stored",
            )
        path = self.blob_path(digest)
        if not path.is_file() or self.blob_state(digest) != "ok":
            atomic_write(path, data, self.tmp, durable=False)  # new, or repairs a corrupt copy
        return Descriptor(media_type, digest, len(data))

    @contextlib.contextmanager
    def ingest(self) -> Iterator[Ingest]:
        """Receive blobs into temporary files; see :class:`Ingest`."""
        ingest = Ingest(self)
        try:
            yield ingest
        finally:
            ingest.close()

    def read_blob(self, digest: str) -> bytes:
        path = self.blob_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise WasmetoolError(
                f"blob {digest} is missing from the store at {self.root}",
                "remove the image that needs it (wasmetool rm) and build or pull it again",
            ) from None
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise WasmetoolError(
                f"blob {digest} in the store is corrupt (its content hashes to {actual})",
                "remove the image that uses it (wasmetool rm) and build or pull it again",
            )
        return data

    def put_manifest(self, raw: bytes, media_type: str, expected_digest: str | None = None) -> Descriptor:
        try:
            manifest = json.loads(raw)
        except ValueError:
            raise WasmetoolError("the image manifest is not valid JSON") from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
            raise WasmetoolError("the image manifest has no layers list")
        return self.put_blob(raw, media_type, expected_digest)

    # -- refs -----------------------------------------------------------------

    def tag(self, ref: Reference | str, manifest: Descriptor) -> None:
        """Point ``ref`` at ``manifest`` (replacing what it pointed at before)."""
        reference = _as_ref(ref)
        if not self.has_blob(manifest.digest):
            raise WasmetoolError(f"manifest {manifest.digest} is not in the store")
        entry = Descriptor(
            manifest.media_type,
            manifest.digest,
            manifest.size,
            {mt.REF_NAME: str(reference), UPDATED: _now()},
        ).to_dict()
        with locked(self.lock_path):
            entries = [e for e in self._read_index() if self._entry_ref(e) != str(reference)]
            entries.append(entry)
            self._write_index(entries)

    def add_image(self, wasm: bytes, config: RuntimeConfig, ref: Reference | str) -> Image:
        """Store a module and its runtime config as a wasme-format image under ``ref``."""
        reference = _as_ref(ref)
        if reference.digest:
            raise WasmetoolError(
                f"cannot store a new image under a digest reference ({reference.familiar})",
                "give a name and tag, e.g. me/filter:v1",
            )
        config_desc = self.put_blob(config.to_json_bytes(), mt.WASM_CONFIG)
        wasm_desc = self.put_blob(wasm, mt.WASM_LAYER)
        raw = wasme_manifest(config_desc, wasm_desc, config)
        manifest = self.put_manifest(raw, mt.OCI_MANIFEST)
        self.tag(reference, manifest)
        return self.resolve(reference)

    @staticmethod
    def _entry_ref(entry: dict[str, Any]) -> str | None:
        return (entry.get("annotations") or {}).get(mt.REF_NAME)

    def _entries(self) -> Iterable[tuple[Reference, Descriptor, datetime | None]]:
        for entry in self._read_index():
            name = self._entry_ref(entry)
            if not name:
                continue
            try:
                reference = parse_reference(name)
            except WasmetoolError:
                continue
            descriptor = Descriptor.from_dict(entry)
            yield reference, descriptor, _parse_time(descriptor.annotations.get(UPDATED))

    def resolve(self, ref: Reference | str) -> Image:
        return Image.load(self, *self.find(ref))

    def find(self, ref: Reference | str) -> tuple[Reference, Descriptor, datetime | None]:
        """The index entry of ``ref`` (no blob is read)."""
        reference = _as_ref(ref)
        for entry_ref, descriptor, updated in self._entries():
            if reference.digest:
                if descriptor.digest == reference.digest and entry_ref.name == reference.name:
                    return entry_ref, descriptor, updated
            elif str(entry_ref) == str(reference):
                return entry_ref, descriptor, updated
        raise WasmetoolError(
            f"no image {reference.familiar} in the local store",
            "see 'wasmetool list' for what is stored, or build or pull it first",
        )

    def images(self) -> list[Image]:
        return [Image.load(self, ref, desc, updated) for ref, desc, updated in self._entries()]

    def entries(self) -> list[tuple[Reference, Descriptor, datetime | None]]:
        """Every reference with its manifest descriptor, without reading any blob."""
        return list(self._entries())

    def remove(self, ref: Reference | str) -> int:
        """Remove ``ref`` and reclaim blobs no other ref uses. Returns bytes freed."""
        reference = _as_ref(ref)
        with locked(self.lock_path):
            entries = self._read_index()
            keep, dropped = [], []
            for entry in entries:
                name = self._entry_ref(entry)
                if name == str(reference) or (
                    reference.digest
                    and entry.get("digest") == reference.digest
                    and name is not None
                    and parse_reference(name).name == reference.name
                ):
                    dropped.append(entry)
                else:
                    keep.append(entry)
            if not dropped:
                raise WasmetoolError(
                    f"no image {reference.familiar} in the local store",
                    "see 'wasmetool list' for what is stored",
                )
            self._write_index(keep)
            candidates: set[str] = set()
            for entry in dropped:
                candidates |= self._closure(entry["digest"], strict=False)
            used = self._referenced(keep)
            return self._delete_blobs(candidates - used)

    def prune(self) -> tuple[int, int]:
        """Delete every blob no ref reaches. Returns (blobs removed, bytes freed)."""
        with locked(self.lock_path):
            used = self._referenced(self._read_index())
            present = {"sha256:" + p.name for p in self.blobs.iterdir() if not p.name.startswith(".")}
            unused = present - used
            freed = self._delete_blobs(unused)
            for leftover in self.tmp.iterdir():
                leftover.unlink(missing_ok=True)
            return len(unused), freed

    def _closure(self, manifest_digest: str, strict: bool) -> set[str]:
        """The manifest digest plus every blob it names."""
        digests = {manifest_digest}
        path = self.blob_path(manifest_digest)
        try:
            manifest = json.loads(path.read_bytes())
        except (OSError, ValueError):
            if strict:
                raise
            return digests
        for child in [manifest.get("config") or {}, *(manifest.get("layers") or [])]:
            digest = child.get("digest") if isinstance(child, dict) else None
            if isinstance(digest, str) and digest.startswith("sha256:"):
                digests.add(digest)
        return digests

    def _referenced(self, entries: list[dict[str, Any]]) -> set[str]:
        used: set[str] = set()
        for entry in entries:
            used |= self._closure(entry["digest"], strict=False)
        return used

    def _delete_blobs(self, digests: Iterable[str]) -> int:
        freed = 0
        for digest in digests:
            path = self.blob_path(digest)
            try:
                freed += path.stat().st_size
                os.unlink(path)
            except FileNotFoundError:
                continue
        return freed
