"""Registry authentication: WWW-Authenticate challenges, Basic and Bearer tokens.

Distribution registries answer an unauthenticated request with 401 and either
``WWW-Authenticate: Basic realm="..."`` (htpasswd) or
``WWW-Authenticate: Bearer realm="https://auth/token",service="...",scope="..."``
(Docker Hub, GHCR, Harbor, GitLab...).  For Bearer, the client fetches a token
from the realm with ``service`` and ``scope`` query parameters, using Basic
credentials when it has them (anonymous otherwise), and retries with
``Authorization: Bearer <token>``.

oras-py treats every realm as a token URL, so a Basic realm such as
``basic-realm`` becomes an invalid URL; this module picks the scheme from the
challenge instead.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

from wasmetool.registry.credentials import Credentials

_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


@dataclass
class Challenge:
    scheme: str                              # "basic" or "bearer" (lower-case)
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenge(header: str | None) -> Challenge | None:
    """Parse the first challenge of a WWW-Authenticate header (registries send one)."""
    if not header:
        return None
    text = header.strip()
    scheme, _, rest = text.partition(" ")
    params = {}
    for match in _PARAM.finditer(rest):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params[match.group(1).lower()] = value.replace('\\"', '"')
    return Challenge(scheme=scheme.lower(), params=params)


def basic_header(credentials: Credentials) -> str:
    token = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(token).decode()


def repository_scope(repository: str, push: bool) -> str:
    return f"repository:{repository}:{'pull,push' if push else 'pull'}"
