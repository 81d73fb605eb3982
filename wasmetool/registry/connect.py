"""Open a RegistryClient for a registry with the right credentials.

Credentials, first hit wins: ``-u/-p`` given on the command line, what
``wasmetool login`` saved, then Docker's config.json (read only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from wasmetool.errors import WasmetoolError
from wasmetool.registry.client import RegistryClient, TransportOptions
from wasmetool.registry.credentials import Credentials, find_credentials

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
MAX_PARALLEL_BLOBS = 4


def in_parallel(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """Run ``work`` on each item, a few at a time; the first error is raised.

    Blobs of one image are independent, so their HEAD/upload or download round
    trips overlap instead of adding up.
    """
    todo = list(items)
    if len(todo) <= 1:
        return [work(item) for item in todo]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_BLOBS, len(todo)),
                            thread_name_prefix="wasmetool-blob") as pool:
        return list(pool.map(work, todo))


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
