"""`wasmetool login` / `logout`: check credentials against the registry, then keep them.

Unlike oras-py's login (which saves whatever it is given and writes it in
plaintext to Docker's config.json), the credentials are first used for an
authenticated ``GET /v2/`` — through the Basic or the Bearer-token flow,
whichever the registry asks for — and saved only when the registry accepts them.
Docker's config.json is never written.
"""

from __future__ import annotations

from dataclasses import dataclass

from wasmetool.errors import WasmetoolError
from wasmetool.registry.client import RegistryClient, TransportOptions
from wasmetool.registry.credentials import (
    Credentials,
    SavedCredentials,
    delete_credentials,
    docker_credentials,
    save_credentials,
    server_key,
)


@dataclass
class LoginResult:
    server: str
    checked: bool                # False: the registry did not ask for credentials at all
    saved: SavedCredentials


def check_credentials(server: str, credentials: Credentials,
                      transport: TransportOptions | None = None) -> bool:
    """True when the registry accepted the credentials; False when it asks for none.

    Raises WasmetoolError when the registry refuses them (or cannot be reached).
    """
    with RegistryClient(server_key(server), credentials=credentials, transport=transport) as client:
        response = client.ping()
        response.close()
        if response.status_code == 200:
            return client._basic is not None or bool(client._tokens)
        if response.status_code == 401:
            raise WasmetoolError(
                f"login to {client.registry} failed: the registry refused the username or password",
                "check them and try again; nothing was saved",
            )
        raise client.fail(response, "the registry API (/v2/)")


def login(server: str, credentials: Credentials,
          transport: TransportOptions | None = None) -> LoginResult:
    key = server_key(server)
    checked = check_credentials(key, credentials, transport)
    saved = save_credentials(key, credentials)
    return LoginResult(server=key, checked=checked, saved=saved)


@dataclass
class LogoutResult:
    server: str
    removed_from: list[str]      # every place the credentials were removed from
    docker_has_credentials: bool

    @property
    def removed(self) -> bool:
        return bool(self.removed_from)


def logout(server: str) -> LogoutResult:
    key = server_key(server)
    removed = delete_credentials(key)
    return LogoutResult(server=key, removed_from=removed,
                        docker_has_credentials=docker_credentials(key) is not None)
