"""Session fixtures for the deploy tests: one real API server (etcd + kube-apiserver,
CRDs installed) and two real registries (open, and htpasswd-protected), shared by
every deploy test; each test works in its own namespace."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kube import KubeCluster, start_cluster
from tests.support.registry import RegistryServer, start_registry

_names = itertools.count(1)


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("kube"))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def open_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("deploy-registry"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("deploy-registry-auth"), auth="htpasswd")
    yield server
    server.stop()


@pytest.fixture
def namespace(kube: KubeCluster, request: pytest.FixtureRequest) -> str:
    """A fresh namespace per test (no controllers: namespaces are never reclaimed)."""
    name = f"t{next(_names)}-{request.node.name.split('[')[0][5:25].replace('_', '-').strip('-')}"
    kube.create_namespace(name)
    return name


@pytest.fixture(autouse=True)
def isolated_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user Docker logins or keyring; credentials go to WASMETOOL_HOME's 0600 file."""
    directory = tmp_path / "docker-config"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    monkeypatch.setenv("WASMETOOL_KEYRING", "file")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
