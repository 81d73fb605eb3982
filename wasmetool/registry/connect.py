"""Open a RegistryClient for a registry with the right credentials.

Credentials, first hit wins: ``-u/-p`` given on the command line, what
``wasmetool login`` saved, then Docker's config.json (read only).
"""

from __future__ import annotations

import logging

from wasmetool.errors import WasmetoolError
from wasmetool.registry.client import RegistryClient, TransportOptions
from wasmetool.registry.credentials import Credentials, find_credentials

log = logging.getLogger(__name__)


def explicit_credentials(username: str | None, password: str | None) -> Credentials | None:
    if username is None and password is None:
        return None
    if not username:
        raise WasmetoolError("a password was given without a username", "pass -u USER as well")
    if password is None:
        raise WasmetoolError(
            f"no password given for user '{username}'",
            "pass -p PASSWORD, or run 'wasmetool login' once and omit -u",
        )
    return Credentials(username, password)


def open_client(registry: str, *, username: str | None = None, password: str | None = None,
                transport: TransportOptions | None = None) -> RegistryClient:
    credentials = explicit_credentials(username, password)

    def lookup() -> Credentials | None:
        found, source = find_credentials(registry)
        if found is not None:
            log.debug("using credentials for %s from %s", registry, source)
        return found

    return RegistryClient(registry, credentials=credentials, transport=transport,
                          credential_source=lookup)
