"""Where credentials are kept: a real keyring when there is one, else a 0600 file."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from wasmetool.registry import credentials as creds
from wasmetool.registry.credentials import Credentials


class MemoryKeyring(KeyringBackend):
    """Stands in for Secret Service / Keychain, which this headless machine lacks."""

    priority = 5  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.items[(service, username)]


@pytest.fixture
def docker_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "docker"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    return directory


@pytest.fixture
def memory_keyring(monkeypatch: pytest.MonkeyPatch):
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    monkeypatch.delenv("WASMETOOL_KEYRING", raising=False)
    yield backend
    keyring.set_keyring(previous)


@pytest.mark.parametrize(("given", "key"), [
    ("docker.io", "docker.io"), ("index.docker.io", "docker.io"),
    ("https://index.docker.io/v1/", "docker.io"), ("GHCR.io", "ghcr.io"),
    ("http://localhost:5000", "localhost:5000"), ("127.0.0.1:5000/path", "127.0.0.1:5000"),
])
def test_server_key(given: str, key: str) -> None:
    assert creds.server_key(given) == key


def test_keyrings_alt_plaintext_is_not_a_keyring() -> None:
    from keyrings.alt.file import PlaintextKeyring

    assert not creds._is_real_backend(PlaintextKeyring())
    assert creds._is_real_backend(MemoryKeyring())


def test_fallback_file_is_0600(monkeypatch: pytest.MonkeyPatch, docker_dir: Path) -> None:
    monkeypatch.setenv("WASMETOOL_KEYRING", "file")
    saved = creds.save_credentials("ghcr.io", Credentials("me", "pw-1"))
    assert saved.plaintext_file and saved.location == str(creds.credentials_file())
    assert stat.S_IMODE(creds.credentials_file().stat().st_mode) == 0o600
    assert creds.saved_credentials("ghcr.io") == Credentials("me", "pw-1")
    creds.save_credentials("ghcr.io", Credentials("me", "pw-2"))
    assert stat.S_IMODE(creds.credentials_file().stat().st_mode) == 0o600
    assert creds.find_credentials("ghcr.io") == (Credentials("me", "pw-2"), "wasmetool login")
    assert creds.delete_credentials("ghcr.io") and not creds.delete_credentials("ghcr.io")
    assert creds.saved_credentials("ghcr.io") is None


def test_real_keyring_is_used_and_no_file_written(memory_keyring: MemoryKeyring) -> None:
    saved = creds.save_credentials("https://ghcr.io", Credentials("me", "pw"))
    assert not saved.plaintext_file and "keyring" in saved.location
    assert json.loads(memory_keyring.items[("wasmetool", "ghcr.io")]) == {
        "username": "me", "password": "pw"}
    assert not creds.credentials_file().exists()
    assert creds.saved_credentials("ghcr.io") == Credentials("me", "pw")
    assert creds.delete_credentials("ghcr.io") and memory_keyring.items == {}


def test_docker_config_auths_are_read(docker_dir: Path) -> None:
    auth = base64.b64encode(b"alice:pa:ss").decode()
    (docker_dir / "config.json").write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": auth},
        "registry.example.com:5000": {"username": "bob", "password": "pw"},
        "ghcr.io": {"identitytoken": "tok"},
    }}))
    assert creds.docker_credentials("docker.io") == Credentials("alice", "pa:ss")
    assert creds.docker_credentials("registry.example.com:5000") == Credentials("bob", "pw")
    assert creds.docker_credentials("ghcr.io") == Credentials("<token>", "tok")
    assert creds.docker_credentials("quay.io") is None
    assert creds.find_credentials("docker.io")[1] == "docker config"


def test_saved_credentials_win_over_docker_config(monkeypatch: pytest.MonkeyPatch,
                                                  docker_dir: Path) -> None:
    monkeypatch.setenv("WASMETOOL_KEYRING", "file")
    auth = base64.b64encode(b"docker-user:docker-pw").decode()
    (docker_dir / "config.json").write_text(json.dumps({"auths": {"ghcr.io": {"auth": auth}}}))
    creds.save_credentials("ghcr.io", Credentials("mine", "pw"))
    assert creds.find_credentials("ghcr.io") == (Credentials("mine", "pw"), "wasmetool login")


def test_corrupt_credential_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from wasmetool.errors import WasmetoolError

    monkeypatch.setenv("WASMETOOL_KEYRING", "file")
    path = creds.credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    with pytest.raises(WasmetoolError, match="unreadable or corrupt"):
        creds.saved_credentials("ghcr.io")
