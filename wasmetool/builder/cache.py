"""The build cache: which module a given set of build inputs produced.

The key is the sha256 of: the language, the route and toolchain versions
(``local:go1.26.8`` / ``container:golang:1.26``), the builder's own code (its
flags live there), and the path and content of every input file the builder
names (sources, manifests, lock files). The module itself stays in the store;
the index at ``cache_dir()/build/index.json`` only maps keys to blob digests,
so a hit costs one small JSON read and one blob read. The runtime config is not
part of the key: changing it re-stores the image without recompiling.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from wasmetool import paths
from wasmetool.store.files import atomic_write, locked

CACHE_FORMAT = 1
MAX_ENTRIES = 500


@dataclass(frozen=True)
class CacheEntry:
    wasm_digest: str
    size: int
    abi_version: str
    language: str
    route: str
    created: float


def builder_fingerprint(builder: object) -> str:
    """sha256 of the builder module's source: new flags -> new keys."""
    try:
        source = inspect.getsourcefile(type(builder))
        data = Path(source).read_bytes() if source else b""
    except (OSError, TypeError):
        data = type(builder).__qualname__.encode()
    return hashlib.sha256(data).hexdigest()


def compute_key(language: str, route: str, builder: object, src: Path,
                inputs: list[Path]) -> str:
    digest = hashlib.sha256()
    header = {"format": CACHE_FORMAT, "language": language, "route": route,
              "builder": builder_fingerprint(builder)}
    digest.update(json.dumps(header, sort_keys=True).encode() + b"\n")
    base = src.resolve()
    for path in sorted(set(inputs)):
        resolved = path.resolve()
        try:
            name = resolved.relative_to(base).as_posix()
        except ValueError:
            name = str(resolved)
        content = hashlib.sha256(resolved.read_bytes()).hexdigest()
        digest.update(f"{name}\0{content}\n".encode())
    return "sha256:" + digest.hexdigest()


class BuildCache:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or paths.cache_dir() / "build"
        self.index_path = self.directory / "index.json"
        self.lock_path = self.directory / "index.lock"

    def _read(self) -> dict[str, dict]:
        try:
            data = json.loads(self.index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        entries = data.get("entries") if isinstance(data, dict) else None
        if not isinstance(entries, dict) or data.get("format") != CACHE_FORMAT:
            return {}
        return entries

    def get(self, key: str) -> CacheEntry | None:
        raw = self._read().get(key)
        if not isinstance(raw, dict):
            return None
        try:
            return CacheEntry(**raw)
        except TypeError:
            return None

    def put(self, key: str, entry: CacheEntry) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with locked(self.lock_path):
            entries = self._read()
            entries[key] = asdict(entry)
            if len(entries) > MAX_ENTRIES:
                newest = sorted(entries.items(), key=lambda kv: kv[1].get("created", 0))
                entries = dict(newest[-MAX_ENTRIES:])
            payload = {"format": CACHE_FORMAT, "entries": entries}
            atomic_write(self.index_path, json.dumps(payload, indent=1).encode())


def new_entry(wasm_digest: str, size: int, abi_version: str, language: str,
              route: str) -> CacheEntry:
    return CacheEntry(wasm_digest, size, abi_version, language, route, time.time())
