"""Questions about a remote repository that need no local store: its tags."""

from __future__ import annotations

from pathlib import Path

from wasmetool.errors import WasmetoolError
from wasmetool.oci.reference import Reference, parse_reference
from wasmetool.registry.auth import repository_scope
from wasmetool.registry.client import TransportOptions
from wasmetool.registry.connect import open_client


def list_remote_tags(repo_ref: Reference | str, *, username: str | None = None,
                     password: str | None = None, plain_http: bool = False,
                     insecure: bool = False, ca_file: Path | None = None) -> list[str]:
    """The tags of a registry repository, sorted (``wasmetool list --remote REPO``).

    ``repo_ref`` is a repository reference such as ``ghcr.io/me/filter`` (a tag
    or digest in it is ignored).  Credentials come from ``-u/-p``, then
    ``wasmetool login``, then Docker's config.json.
    """
    ref = repo_ref if isinstance(repo_ref, Reference) else parse_reference(repo_ref)
    transport = TransportOptions(plain_http=plain_http, insecure=insecure, ca_file=ca_file)
    with open_client(ref.registry, username=username, password=password,
                     transport=transport) as client:
        tags = client.try_list_tags(ref.repository, repository_scope(ref.repository, push=False))
    if tags is None:
        raise WasmetoolError(
            f"repository {ref.repository} does not exist on {ref.registry}",
            "check the name; 'wasmetool push' creates it",
        )
    return sorted(tags)
