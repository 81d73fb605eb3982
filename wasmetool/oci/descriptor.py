"""OCI content descriptors and digests."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from wasmetool.errors import WasmetoolError

DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest: str) -> str:
    """Return the digest if it is a well-formed sha256 digest, else raise."""
    if not DIGEST_RE.match(digest):
        raise WasmetoolError(
            f"'{digest}' is not a sha256 digest",
            "a digest looks like sha256: followed by 64 lower-case hex characters",
        )
    return digest


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Descriptor:
        try:
            return cls(
                media_type=str(data["mediaType"]),
                digest=check_digest(str(data["digest"])),
                size=int(data["size"]),
                annotations=dict(data.get("annotations") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WasmetoolError(f"malformed OCI descriptor: {exc}") from None
