"""The toolchain images `build --toolchain container` runs in, and how to get them.

One image per language, built from the Dockerfiles shipped in
``wasmetool/builder/toolchains/`` ``FROM`` a configurable base (default
:data:`DEFAULT_BASE`). They install the same Debian packages (and the same Go
release) as the local route, so a module built either way comes from the same
compiler versions.

Names: ``wasmetool/toolchain-LANGUAGE:TAG`` where TAG is a digest of the
Dockerfile and its build arguments, so a new wasmetool that changes a
toolchain asks for a new image. Where a local image is missing, the same tag is
pulled from :func:`published_repository` (``WASMETOOL_TOOLCHAIN_REGISTRY``,
default ``ghcr.io/wasmetool``); where that fails, the error names the
``wasmetool toolchain build`` command to run.

After the build, the compiler versions found inside the image are stored as
labels (``org.wasmetool.toolchain.version.NAME``); the build cache key of a
container build holds the image id and those versions.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wasmetool.builder.base import LANGUAGES, canonical_language
from wasmetool.builder.container import host_ca_bundle
from wasmetool.errors import WasmetoolError

DOCKERFILES = Path(__file__).parent / "toolchains"
DEFAULT_BASE = "debian:bookworm-slim"
LOCAL_REPOSITORY = "wasmetool/toolchain-{language}"
DEFAULT_PUBLISHED = "ghcr.io/wasmetool"
REGISTRY_ENV = "WASMETOOL_TOOLCHAIN_REGISTRY"
LABEL = "org.wasmetool.toolchain"
VERSION_LABEL = f"{LABEL}.version."

# Go for the tinygo/go image: Debian 12 has only 1.19. The archive is the Go
# module proxy's golang.org/toolchain module (what `go` fetches for
# GOTOOLCHAIN); its sha256 was recorded from proxy.golang.org.
GO_VERSION = "1.26.8"
GO_SHA256 = {
    "amd64": "30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7",
    "arm64": "02b36b6787b3ac767668f630e2998df45a3b1f9ffee08d1bf3ef6487cd658d99",
}

Write = Callable[[str], None]


def dockerfile(language: str) -> Path:
    return DOCKERFILES / f"{canonical_language(language)}.Dockerfile"


def build_args(language: str) -> dict[str, str]:
    """Build arguments besides BASE (the pinned versions)."""
    if canonical_language(language) == "tinygo":
        return {"GO_VERSION": GO_VERSION, "GO_SHA256_AMD64": GO_SHA256["amd64"],
                "GO_SHA256_ARM64": GO_SHA256["arm64"]}
    return {}


def image_tag(language: str) -> str:
    """Digest of the Dockerfile and its pinned arguments (not the base: see the labels)."""
    digest = hashlib.sha256(dockerfile(language).read_bytes())
    digest.update(json.dumps(build_args(language), sort_keys=True).encode())
    return digest.hexdigest()[:12]


def repository(language: str) -> str:
    return LOCAL_REPOSITORY.format(language=canonical_language(language))


def image_name(language: str) -> str:
    """The local name of the image this wasmetool uses for ``language``."""
    return f"{repository(language)}:{image_tag(language)}"


def published_repository() -> str:
    return (os.environ.get(REGISTRY_ENV) or DEFAULT_PUBLISHED).rstrip("/")


def published_name(language: str) -> str:
    return f"{published_repository()}/toolchain-{canonical_language(language)}:{image_tag(language)}"


def build_command(language: str) -> str:
    return f"wasmetool toolchain build {canonical_language(language)}"


@dataclass
class ToolchainImage:
    language: str
    name: str           # repository:tag
    id: str             # sha256:... (the image config digest)
    size: int
    created: datetime | None
    base: str
    versions: dict[str, str] = field(default_factory=dict)
    current: bool = True  # the tag this wasmetool uses (older tags are listed too)

    def toolchain_id(self) -> str:
        """The part of the build cache key that names this toolchain."""
        versions = "; ".join(f"{k}={v}" for k, v in sorted(self.versions.items()))
        return f"{self.name}@{self.id} {versions}"

    def to_json(self) -> dict[str, Any]:
        return {"language": self.language, "image": self.name, "id": self.id, "size": self.size,
                "created": self.created.isoformat() if self.created else None,
                "base": self.base, "versions": self.versions, "current": self.current}


def _from_sdk(image: Any, name: str) -> ToolchainImage:
    attrs = image.attrs
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    created = None
    raw = attrs.get("Created") or ""
    if raw:
        try:  # 2026-12-06T15:40:00.123456789Z: seconds are enough
            created = datetime.fromisoformat(raw[:19]).replace(tzinfo=UTC)
        except ValueError:
            created = None
    language = labels.get(f"{LABEL}.language") or name.split("toolchain-", 1)[-1].split(":")[0]
    versions = {key[len(VERSION_LABEL):]: value for key, value in labels.items()
                if key.startswith(VERSION_LABEL)}
    return ToolchainImage(language, name, image.id, int(attrs.get("Size") or 0), created,
                          labels.get(f"{LABEL}.base", "?"), versions,
                          current=name == image_name(language) if language in LANGUAGES else False)


def find_local(client: Any, language: str) -> ToolchainImage | None:
    from docker.errors import ImageNotFound

    name = image_name(language)
    try:
        return _from_sdk(client.images.get(name), name)
    except ImageNotFound:
        return None


def list_images(client: Any) -> list[ToolchainImage]:
    """Every wasmetool toolchain image in the engine (current and older tags)."""
    found: list[ToolchainImage] = []
    for image in client.images.list(filters={"label": f"{LABEL}.language"}):
        for tag in image.tags or []:
            if tag.startswith("wasmetool/toolchain-"):
                found.append(_from_sdk(image, tag))
    return sorted(found, key=lambda item: (item.language, not item.current, item.name))


def ensure_image(client: Any, language: str, write: Write) -> ToolchainImage:
    """The local image for ``language``; pulled from the published registry if missing."""
    from docker.errors import DockerException

    local = find_local(client, language)
    if local is not None:
        return local
    published = published_name(language)
    write(f"pulling {published} (no local {image_name(language)}) ...\n")
    try:
        image = client.images.pull(published)
        image.tag(repository(language), image_tag(language))
    except DockerException as exc:
        reason = " ".join(str(exc).split())[:160]
        raise WasmetoolError(
            f"no {canonical_language(language)} toolchain image: {image_name(language)} is not "
            f"built here and {published} could not be pulled ({reason})",
            f"build it with: {build_command(language)} [--base IMAGE]",
        ) from None
    local = find_local(client, language)
    if local is None or not local.versions:
        raise WasmetoolError(f"{published} is not a wasmetool toolchain image (no version labels)",
                             f"build one with: {build_command(language)}")
    return local


VERSION_LINE = "wasmetool-version "
RUNNING_IN = " ---> Running in "
VERSIONS_FILE = "/etc/wasmetool/versions"  # written by each Dockerfile's RUN step


class BuildStreamError(Exception):
    """The engine reported a failed build step (its output is already shown)."""


@dataclass
class _BuildOutput:
    image_id: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    step_container: str | None = None


def _stream(chunks: Any, write: Write, result: _BuildOutput | None = None) -> _BuildOutput:
    """Show a build's output; collect the image id, the versions the RUN step printed,
    and the container of the step running now (to stop it on Ctrl-C)."""
    result = result if result is not None else _BuildOutput()
    for chunk in chunks:
        if "stream" in chunk:
            text = chunk["stream"]
            write(text)
            for line in text.splitlines():
                if line.startswith(RUNNING_IN):
                    result.step_container = line[len(RUNNING_IN):].strip()
                elif line.startswith(VERSION_LINE):
                    key, sep, value = line[len(VERSION_LINE):].partition("=")
                    if sep and key.strip():
                        result.versions[key.strip()] = " ".join(value.split())
        elif "error" in chunk:
            raise BuildStreamError(" ".join(str(chunk["error"]).split())[:300])
        elif isinstance(chunk.get("aux"), dict) and "ID" in chunk["aux"]:
            result.image_id = chunk["aux"]["ID"]
    return result


def _read_versions(client: Any, image_id: str) -> dict[str, str]:
    output = client.containers.run(image_id, ["cat", VERSIONS_FILE], remove=True,
                                   network_mode="none")
    versions: dict[str, str] = {}
    for line in output.decode("utf-8", errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            versions[key.strip()] = " ".join(value.split())
    if not versions:
        raise WasmetoolError(f"the toolchain image {image_id[:19]} has no {VERSIONS_FILE}",
                             "rebuild it from wasmetool's Dockerfile")
    return versions


def _label_dockerfile(image_id: str, versions: dict[str, str]) -> bytes:
    """One LABEL instruction (on vfs every instruction copies the whole image)."""
    pairs = " ".join(f"{json.dumps(VERSION_LABEL + key)}={json.dumps(value)}"
                     for key, value in sorted(versions.items()))
    return f"FROM {image_id}\nLABEL {pairs}\n".encode()


def _ensure_base(client: Any, base: str, write: Write) -> None:
    """The base on the engine (pulled if missing), or one error saying how to get one."""
    from docker.errors import DockerException, ImageNotFound

    try:
        client.images.get(base)
        return
    except ImageNotFound:
        pass
    except DockerException as exc:
        raise WasmetoolError(f"cannot look up the base image {base}: {exc}") from None
    write(f"pulling the base image {base} ...\n")
    try:
        client.images.pull(base)
    except DockerException as exc:
        reason = " ".join(str(exc).split())[:200]
        raise WasmetoolError(
            f"the base image {base} is not on the engine and cannot be pulled ({reason})",
            "pass --base with a Debian 12 image the engine has, e.g. one made with "
            "mmdebstrap and `docker import` (see docs/build.md)") from None


def build_image(client: Any, language: str, base: str, write: Write) -> ToolchainImage:
    """Build (or rebuild) the toolchain image for ``language`` FROM ``base``.

    The build runs with host networking (so apt, and the Go proxy for Go, are
    reached the way the host reaches them). Interrupting it (Ctrl-C) closes the
    connection, which stops the build; the engine removes its containers.
    """
    from docker.errors import APIError, BuildError, DockerException

    language = canonical_language(language)
    name = image_name(language)
    _ensure_base(client, base, write)
    progress = _BuildOutput()
    try:
        with tempfile.TemporaryDirectory(prefix="wasmetool-toolchain-") as context:
            (Path(context) / "Dockerfile").write_bytes(dockerfile(language).read_bytes())
            # The CA bundle the host trusts, for downloads during the build.
            bundle = host_ca_bundle()
            (Path(context) / "host-ca.crt").write_bytes(bundle.read_bytes() if bundle else b"")
            built = _stream(client.api.build(path=context, dockerfile="Dockerfile",
                                             buildargs={"BASE": base, **build_args(language)},
                                             network_mode="host", rm=True, forcerm=True,
                                             pull=False, decode=True), write, progress)
        if built.image_id is None:
            raise WasmetoolError(f"the {language} toolchain build ended without an image",
                                 "see its output above")
        if not built.versions:  # every step came from the engine's cache: ask the image
            built.versions = _read_versions(client, built.image_id)
        labelled = _stream(client.api.build(
            fileobj=io.BytesIO(_label_dockerfile(built.image_id, built.versions)), tag=name,
            rm=True, forcerm=True, pull=False, decode=True, network_mode="none"),
            lambda _text: None)
    except KeyboardInterrupt:
        # The classic builder runs a step to its end even when its client has gone:
        # stop the step's container, and the engine drops the build (nothing is tagged).
        if progress.step_container:
            with contextlib.suppress(DockerException):
                client.api.remove_container(progress.step_container, force=True)
        client.close()
        raise
    except BuildStreamError as exc:
        raise WasmetoolError(f"building {name} FROM {base} failed: {exc}",
                             "its output is shown above") from None
    except (BuildError, APIError) as exc:
        explanation = getattr(exc, "explanation", None) or str(exc)
        raise WasmetoolError(f"building {name} FROM {base} failed: "
                             f"{' '.join(explanation.split())[:300]}",
                             "check the engine and the network") from None
    except DockerException as exc:
        raise WasmetoolError(f"building {name} failed: {' '.join(str(exc).split())[:300]}",
                             "check the Docker engine") from None
    image = find_local(client, language) if labelled.image_id else None
    if image is None:
        raise WasmetoolError(f"the {language} toolchain build ended without an image")
    return image


def remove_images(client: Any, language: str | None) -> list[str]:
    """Remove the toolchain images of ``language`` (every tag), or of all languages."""
    from docker.errors import APIError, ImageNotFound

    wanted = canonical_language(language) if language else None
    removed: list[str] = []
    for image in list_images(client):
        if wanted and image.language != wanted:
            continue
        try:
            client.images.remove(image.name, noprune=False)
        except ImageNotFound:
            continue
        except APIError as exc:
            raise WasmetoolError(f"cannot remove {image.name}: {exc.explanation or exc}",
                                 "stop the containers using it and try again") from None
        removed.append(image.name)
    return removed
