"""login / logout / push / pull against real registries that want credentials.

Two registries: htpasswd (Basic, bcrypt) and token auth (Bearer: the registry
sends clients to a small token service started by the test, which signs JWTs
the registry verifies).  Every CLI run is checked for the password leaking to
stdout or stderr.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime

from tests.support.registry import RegistryServer, start_registry
from wasmetool.oci.runtime_config import RuntimeConfig
from wasmetool.registry import credentials as creds
from wasmetool.registry.remote import list_remote_tags
from wasmetool.store import Store

pytestmark = pytest.mark.integration

FILTER = bytes(wasmtime.wat2wasm(
    '(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_0")))'))


@pytest.fixture(scope="module", params=["htpasswd", "token"])
def registry(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp(f"registry-{request.param}"),
                            auth=request.param)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point DOCKER_CONFIG at an empty directory so the user's Docker logins don't interfere."""
    directory = tmp_path / "docker-config"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    monkeypatch.setenv("WASMETOOL_KEYRING", "file")
    return directory


@pytest.fixture
def run(cli, registry: RegistryServer):
    """Run the CLI and assert the registry password never shows in its output."""

    def runner(*args: str):
        result = cli(*args)
        assert registry.password not in result.out and registry.password not in result.err
        assert "Traceback" not in result.err
        return result

    return runner


def _build(ref: str) -> None:
    Store.open().add_image(FILTER, RuntimeConfig(abi_versions=["v0.2.0"]), ref)


def test_401_without_login_then_success_after_login(run, registry: RegistryServer) -> None:
    ref = f"{registry.host}/team/secured:v1"
    _build(ref)
    refused = run("push", ref)
    assert refused.code == 1
    assert "requires authentication" in refused.err
    assert f"wasmetool login {registry.host}" in refused.err

    logged_in = run("login", registry.host, "-u", registry.username, "-p", registry.password)
    assert logged_in.code == 0, logged_in.err
    assert "Login succeeded" in logged_in.out
    assert "no system keyring" in logged_in.err  # the fallback is announced

    assert run("push", ref).code == 0
    assert run("rm", ref).code == 0
    pulled = run("pull", ref)
    assert pulled.code == 0, pulled.err
    assert Store.open().resolve(ref).wasm_bytes() == FILTER
    assert list_remote_tags(f"{registry.host}/team/secured") == ["v1"]

    assert run("logout", registry.host).out.startswith("Removed")
    assert run("pull", ref).code == 1
    assert run("logout", registry.host).out.startswith("Not logged in")


def test_wrong_password_is_refused_at_login_and_nothing_saved(run, registry: RegistryServer) -> None:
    wrong = "definitely-not-" + registry.password
    result = run("login", registry.host, "-u", registry.username, "-p", wrong)
    assert result.code == 1
    assert "refused" in result.err
    assert wrong not in result.err and wrong not in result.out
    assert not creds.credentials_file().exists()
    assert creds.saved_credentials(registry.host) is None


def test_fallback_credential_file_is_0600(run, registry: RegistryServer) -> None:
    assert run("login", registry.host, "-u", registry.username, "-p", registry.password).code == 0
    path = creds.credentials_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["auths"][registry.host]["username"] == registry.username


def test_password_stdin_in_a_real_process(cli_process, registry: RegistryServer) -> None:
    result = cli_process("-v", "login", registry.host, "-u", registry.username, "--password-stdin",
                         input=registry.password + "\n")
    assert result.code == 0, result.err
    assert registry.password not in result.out + result.err
    ref = f"{registry.host}/team/stdin:v1"
    _build(ref)
    pushed = cli_process("-v", "push", ref)   # debug logging on: still no secret
    assert pushed.code == 0, pushed.err
    assert registry.password not in pushed.out + pushed.err
    assert "Authorization" not in pushed.err


def test_one_off_credentials_on_push_and_pull(run, registry: RegistryServer) -> None:
    ref = f"{registry.host}/team/oneoff:v1"
    _build(ref)
    assert run("push", ref, "-u", registry.username, "-p", registry.password).code == 0
    run("rm", ref)
    assert run("pull", ref, "-u", registry.username, "-p", registry.password).code == 0
    wrong = run("pull", ref, "-u", registry.username, "-p", "nope-" + registry.password)
    assert wrong.code == 1 and "refused" in wrong.err
    assert not creds.credentials_file().exists()  # one-off credentials are never saved


def test_docker_config_is_read_and_never_written(run, registry: RegistryServer,
                                                 no_docker_config: Path) -> None:
    config = no_docker_config / "config.json"
    auth = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    config.write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))
    before = (config.read_bytes(), config.stat().st_mtime_ns)
    ref = f"{registry.host}/team/dockercfg:v1"
    _build(ref)
    assert run("push", ref).code == 0
    assert run("login", registry.host, "-u", registry.username, "-p", registry.password).code == 0
    assert run("logout", registry.host).code == 0
    assert (config.read_bytes(), config.stat().st_mtime_ns) == before
    assert os.listdir(no_docker_config) == ["config.json"]


@pytest.mark.parametrize("registry", ["token"], indirect=True)
def test_token_service_was_used(registry: RegistryServer, run) -> None:
    assert registry.token_server is not None
    ref = f"{registry.host}/team/token:v1"
    _build(ref)
    assert run("push", ref, "-u", registry.username, "-p", registry.password).code == 0
    scopes = [r["path"] for r in registry.token_server.requests if r["has_auth"]]
    assert any("scope=repository%3Ateam%2Ftoken%3Apull%2Cpush" in p
               or "scope=repository:team/token:pull,push" in p for p in scopes)


@pytest.mark.parametrize("registry", ["token"], indirect=True)
def test_docker_identity_token_is_exchanged_as_a_refresh_token(
        registry: RegistryServer, run, no_docker_config: Path) -> None:
    assert registry.token_server is not None
    (no_docker_config / "config.json").write_text(json.dumps(
        {"auths": {registry.host: {"auth": "", "identitytoken": registry.password}}}))
    ref = f"{registry.host}/team/identity:v1"
    _build(ref)
    assert run("push", ref).code == 0
    assert any(r.get("grant_type") == "refresh_token" for r in registry.token_server.requests)


def test_push_to_a_second_repository(run, registry: RegistryServer) -> None:
    """The blobs are mounted from the first repository, with Basic auth and with a
    Bearer token that covers both repositories."""
    ref = f"{registry.host}/team/first:v1"
    _build(ref)
    assert run("login", registry.host, "-u", registry.username, "-p", registry.password).code == 0
    assert run("push", ref).code == 0
    second = run("push", ref, f"{registry.host}/team/second:v1", "-o", "json")
    assert second.code == 0, second.err
    result = json.loads(second.out)
    assert result["blobsMounted"] == 2 and result["blobsUploaded"] == 0
    run("rm", ref)
    assert run("pull", f"{registry.host}/team/second:v1").code == 0
    assert Store.open().resolve(f"{registry.host}/team/second:v1").wasm_bytes() == FILTER


@pytest.mark.parametrize("registry", ["token"], indirect=True)
def test_read_only_account_gets_a_permission_error_on_push(registry: RegistryServer, run) -> None:
    assert registry.token_server is not None
    ref = f"{registry.host}/team/readonly:v1"
    _build(ref)
    registry.token_server.allowed_actions = {"pull"}
    try:
        result = run("push", ref, "-u", registry.username, "-p", registry.password)
    finally:
        registry.token_server.allowed_actions = None
    assert result.code == 1
    assert "denied access" in result.err and "permission to push to repository team/readonly" in result.err
