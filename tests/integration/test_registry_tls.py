"""A registry serving HTTPS with a certificate from a throw-away CA."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import wasmtime

from tests.support.registry import RegistryServer, start_registry
from wasmetool.oci.runtime_config import RuntimeConfig
from wasmetool.store import Store

pytestmark = pytest.mark.integration

FILTER = bytes(wasmtime.wat2wasm(
    '(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1")))'))


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("registry-tls"), tls=True)
    yield server
    server.stop()


def _build(ref: str) -> None:
    Store.open().add_image(FILTER, RuntimeConfig(abi_versions=["v0.2.1"]), ref)


def test_tls_with_the_ca_file_works(cli, registry: RegistryServer) -> None:
    ref = f"{registry.host}/team/tls:v1"
    _build(ref)
    pushed = cli("push", ref, "--ca-file", str(registry.ca_file), "-o", "json")
    assert pushed.code == 0, pushed.err
    cli("rm", ref)
    pulled = cli("pull", ref, "--ca-file", str(registry.ca_file), "-o", "json")
    assert pulled.code == 0, pulled.err
    assert json.loads(pulled.out)["digest"] == json.loads(pushed.out)["digest"]
    assert Store.open().resolve(ref).wasm_bytes() == FILTER
    # The access log proves the traffic was HTTPS to this server (it only speaks TLS).
    assert any(method == "PUT" and "/manifests/v1" in path for method, path, _ in registry.requests())


def test_tls_without_the_ca_fails_clearly(cli, registry: RegistryServer) -> None:
    ref = f"{registry.host}/team/untrusted:v1"
    _build(ref)
    result = cli("push", ref)
    assert result.code == 1
    assert result.err.startswith("error: the TLS certificate of") and "not trusted" in result.err
    assert "--ca-file" in result.err and "--insecure" in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


def test_insecure_skips_verification(cli, registry: RegistryServer) -> None:
    ref = f"{registry.host}/team/insecure:v1"
    _build(ref)
    assert cli("push", ref, "--insecure").code == 0
    cli("rm", ref)
    assert cli("pull", ref, "--insecure").code == 0
    assert Store.open().resolve(ref).wasm_bytes() == FILTER


def test_plain_http_against_tls_is_refused(cli, registry: RegistryServer) -> None:
    ref = f"{registry.host}/team/plain:v1"
    _build(ref)
    result = cli("push", ref, "--plain-http")
    assert result.code == 1 and "HTTP 400" in result.err


def test_missing_ca_file(cli, registry: RegistryServer, tmp_path) -> None:
    result = cli("pull", f"{registry.host}/team/x:v1", "--ca-file", str(tmp_path / "nope.pem"))
    assert result.code == 1 and "does not exist" in result.err
