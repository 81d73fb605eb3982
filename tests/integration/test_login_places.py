"""login / logout as a new user meets them, against real registries.

- a registry that allows anonymous access: login says nothing was checked;
- no system keyring: the plaintext file is announced with its path every time it
  is written or used; WASMETOOL_KEYRING_PASSPHRASE keeps them encrypted instead;
- logout removes them from every place; ``--password`` warns as docker does;
- no secret is ever printed, not even with ``-v``.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.registry import RegistryServer, start_registry
from wasmetool.registry import credentials as creds
from wasmetool.store import Store

pytestmark = pytest.mark.integration

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello.wasm"
PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def open_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("registry-anonymous"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("registry-htpasswd"), auth="htpasswd")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No system keyring (as on this headless machine) and no Docker logins."""
    (tmp_path / "docker-config").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("WASMETOOL_KEYRING", "file")
    monkeypatch.delenv(creds.PASSPHRASE_ENV, raising=False)
    creds._warned.clear()


def _secrets(registry: RegistryServer) -> list[str]:
    assert registry.username and registry.password
    basic = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    return [registry.password, basic, PASSPHRASE]


@pytest.fixture
def run(cli, secured: RegistryServer):
    def runner(*args: str):
        creds._warned.clear()  # a new command, as a new process would be
        result = cli(*args)
        for secret in _secrets(secured):
            assert secret not in result.out and secret not in result.err
        assert "Traceback" not in result.err
        return result

    return runner


def _stdin_login(cli_process, registry: RegistryServer, *extra: str):
    return cli_process("login", registry.host, "-u", str(registry.username), "--password-stdin",
                       *extra, input=str(registry.password))


def test_anonymous_registry_login_says_nothing_was_checked(cli, open_registry: RegistryServer) -> None:
    result = cli("login", open_registry.host, "-u", "me", "-p", "secret-value", "-o", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["checked"] is False and data["anonymousAccess"] is True
    text = cli("login", open_registry.host, "-u", "me", "-p", "secret-value").out
    assert "Login succeeded" not in text
    assert "allows anonymous access" in text and "not checked" in text and "unverified" in text
    assert "secret-value" not in text


def test_plaintext_file_is_announced_each_time(run, secured: RegistryServer) -> None:
    logged_in = run("login", secured.host, "-u", secured.username, "-p", secured.password)
    assert logged_in.code == 0 and "Login succeeded" in logged_in.out
    path = creds.credentials_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    warnings = [line for line in logged_in.err.splitlines() if "unencrypted" in line]
    assert len(warnings) == 1 and str(path) in warnings[0]
    assert creds.PASSPHRASE_ENV in warnings[0] and "keyring" in warnings[0]

    ref = f"{secured.host}/team/plain:v1"
    Store.open().add_image(HELLO.read_bytes(), _config(), ref)
    for args in (["push", ref], ["pull", ref]):
        used = run(*args)
        assert used.code == 0, used.err
        assert [line for line in used.err.splitlines() if str(path) in line and "unencrypted" in line]


def _config():
    from wasmetool.oci.runtime_config import RuntimeConfig

    return RuntimeConfig(abi_versions=["v0.2.1"], root_ids=["r"])


def test_passphrase_keeps_them_encrypted(run, secured: RegistryServer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(creds.PASSPHRASE_ENV, PASSPHRASE)
    logged_in = run("login", secured.host, "-u", secured.username, "-p", secured.password)
    assert logged_in.code == 0, logged_in.err
    assert "unencrypted" not in logged_in.err and "(encrypted)" in logged_in.out
    encrypted = creds.encrypted_file()
    assert not creds.credentials_file().exists()
    assert stat.S_IMODE(encrypted.stat().st_mode) == 0o600
    on_disk = encrypted.read_text()
    assert secured.password not in on_disk and secured.username not in on_disk.split("]", 1)[-1]

    ref = f"{secured.host}/team/sealed:v1"
    Store.open().add_image(HELLO.read_bytes(), _config(), ref)
    pushed = run("push", ref)
    assert pushed.code == 0 and "unencrypted" not in pushed.err

    monkeypatch.setenv(creds.PASSPHRASE_ENV, "not the passphrase")
    refused = run("push", ref)
    assert refused.code == 1
    lines = refused.err.strip().splitlines()
    assert len(lines) == 1 and f"{creds.PASSPHRASE_ENV} does not unlock {encrypted}" in lines[0]

    # without the passphrase they are not used, and the user is told why
    monkeypatch.delenv(creds.PASSPHRASE_ENV)
    unset = run("push", ref)
    assert unset.code == 1
    assert f"{creds.PASSPHRASE_ENV} is not set" in unset.err and str(encrypted) in unset.err

    # logout needs no passphrase to forget them
    out = run("logout", secured.host).out
    assert out.startswith("Removed") and str(encrypted) in out
    monkeypatch.setenv(creds.PASSPHRASE_ENV, PASSPHRASE)
    assert creds.saved_credentials(secured.host) is None


def test_logout_removes_them_from_every_place(run, secured: RegistryServer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("login", secured.host, "-u", secured.username, "-p", secured.password).code == 0
    monkeypatch.setenv(creds.PASSPHRASE_ENV, PASSPHRASE)
    # a second copy, as a user who set the passphrase later would have
    creds._encrypted_keyring().set_password(creds.KEYRING_SERVICE, secured.host, json.dumps(
        {"username": secured.username, "password": secured.password}))
    out = run("logout", secured.host).out
    assert str(creds.credentials_file()) in out and str(creds.encrypted_file()) in out
    assert creds.saved_credentials(secured.host) is None
    monkeypatch.delenv(creds.PASSPHRASE_ENV)
    assert creds.saved_credentials(secured.host) is None
    assert run("logout", secured.host).out.startswith("Not logged in")


@pytest.mark.parametrize("command", ["login", "push", "pull"])
def test_password_flag_warns_like_docker(run, secured: RegistryServer, command: str) -> None:
    ref = f"{secured.host}/team/flag:v1"
    Store.open().add_image(HELLO.read_bytes(), _config(), ref)
    args = {"login": ["login", secured.host], "push": ["push", ref], "pull": ["pull", ref]}[command]
    result = run(*args, "-u", secured.username, "-p", secured.password)
    assert result.code == 0, result.err
    assert "--password on the command line is insecure" in result.err
    assert "--password-stdin" in result.err


def test_no_secret_in_verbose_output(cli_process, secured: RegistryServer, tmp_path: Path) -> None:
    env_passphrase = os.environ.get(creds.PASSPHRASE_ENV)
    assert env_passphrase is None
    logged_in = _stdin_login(cli_process, secured)
    assert logged_in.code == 0, logged_in.err
    ref = f"{secured.host}/team/verbose:v1"
    results = [logged_in,
               cli_process("-v", "build", "precompiled", str(HELLO), "-t", ref),
               cli_process("-v", "push", ref),
               cli_process("-v", "pull", ref),
               cli_process("-v", "login", secured.host, "-u", str(secured.username), "-p",
                           "wrong-" + str(secured.password)[:4]),
               cli_process("-v", "logout", secured.host)]
    assert [r.code for r in results] == [0, 0, 0, 0, 1, 0], [r.err for r in results]
    assert "DEBUG" in results[2].err  # -v really was verbose
    for result in results:
        for secret in _secrets(secured):
            assert secret not in result.out and secret not in result.err


def test_an_unwritable_config_directory_is_one_line(cli, secured: RegistryServer, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("WASMETOOL_HOME", str(blocker / "home"))
    result = cli("login", secured.host, "-u", str(secured.username), "-p", str(secured.password))
    assert result.code == 1
    lines = [line for line in result.err.strip().splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: cannot save the credentials in ")
    assert str(secured.password) not in result.err
