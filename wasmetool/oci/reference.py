"""Image references, normalised the way Docker does it.

    repo/img:v0.1          -> docker.io/repo/img:v0.1
    img                    -> docker.io/library/img:latest
    localhost:5000/f       -> localhost:5000/f:latest
    ghcr.io/o/f@sha256:... -> pinned by digest (no default tag)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from wasmetool.errors import WasmetoolError

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
_LEGACY_REGISTRIES = {"index.docker.io", "registry-1.docker.io"}

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN = re.compile(
    r"^(?:localhost|(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*"
    r"|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_HINT = "use NAME[:TAG] or NAME@sha256:DIGEST, e.g. me/filter:v1 or localhost:5000/filter:v1"


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """registry/repository, with no tag or digest."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def familiar(self) -> str:
        """The short form a user would type: docker.io/ and library/ dropped."""
        name = self.repository
        if self.registry != DEFAULT_REGISTRY:
            name = f"{self.registry}/{name}"
        elif name.startswith("library/") and name.count("/") == 1:
            name = name[len("library/") :]
        if self.tag:
            name += f":{self.tag}"
        if self.digest:
            name += f"@{self.digest}"
        return name

    @property
    def familiar_name(self) -> str:
        return replace(self, tag=None, digest=None).familiar

    def with_tag(self, tag: str) -> Reference:
        if not _TAG.match(tag):
            raise WasmetoolError(f"invalid tag '{tag}'", "a tag is up to 128 of [A-Za-z0-9_.-]")
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        return replace(self, digest=digest)


def parse_reference(text: str) -> Reference:
    """Parse and normalise an image reference; raise WasmetoolError if it is not one."""
    original = text
    if not text or text != text.strip() or any(c.isspace() for c in text):
        raise WasmetoolError(f"invalid image reference '{original}'", _HINT)
    if "://" in text:
        raise WasmetoolError(
            f"invalid image reference '{original}': no URL scheme is allowed", _HINT
        )
    if len(text) > 255 + 72:
        raise WasmetoolError(f"invalid image reference '{original[:40]}...': too long", _HINT)

    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.match(digest):
            raise WasmetoolError(
                f"invalid digest in '{original}'", "a digest is sha256: followed by 64 hex characters"
            )

    tag = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG.match(tag):
            raise WasmetoolError(
                f"invalid tag '{tag}' in '{original}'", "a tag is up to 128 of [A-Za-z0-9_.-]"
            )

    parts = text.split("/")
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        registry, path = first, parts[1:]
        if not _DOMAIN.match(registry):
            raise WasmetoolError(f"invalid registry '{registry}' in '{original}'", _HINT)
    else:
        registry, path = DEFAULT_REGISTRY, parts
    if registry in _LEGACY_REGISTRIES:
        registry = DEFAULT_REGISTRY

    if not path or not all(path):
        raise WasmetoolError(f"invalid image reference '{original}': empty name component", _HINT)
    for component in path:
        if not _COMPONENT.match(component):
            lower = " (repository names must be lower-case)" if component != component.lower() else ""
            raise WasmetoolError(
                f"invalid repository name '{'/'.join(path)}' in '{original}'{lower}", _HINT
            )
    if registry == DEFAULT_REGISTRY and len(path) == 1:
        path = ["library", *path]
    repository = "/".join(path)
    if len(registry) + 1 + len(repository) > 255:
        raise WasmetoolError(f"invalid image reference '{original[:40]}...': name too long", _HINT)
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(registry=registry, repository=repository, tag=tag, digest=digest)


def looks_like_reference(text: str) -> bool:
    try:
        parse_reference(text)
    except WasmetoolError:
        return False
    return True
