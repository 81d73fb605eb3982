"""`deploy gloo` / `undeploy gloo` against Gloo Edge Gateway objects in a real kube-apiserver."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.kube import KubeCluster
from tests.support.registry import RegistryServer
from wasmetool.oci.runtime_config import RuntimeConfig
from wasmetool.store import Store

pytestmark = pytest.mark.integration

HELLO = (Path(__file__).resolve().parents[3] / "examples" / "hello.wasm").read_bytes()
GATEWAYS = "/apis/gateway.solo.io/v1/namespaces/{ns}/gateways"
THEIRS = {"name": "theirs", "image": "example.com/other/filter:1", "rootId": "other"}


def _gateway(kube: KubeCluster, ns: str, name: str, spec: dict, labels: dict | None = None) -> None:
    kube.request("POST", GATEWAYS.format(ns=ns), {
        "apiVersion": "gateway.solo.io/v1", "kind": "Gateway",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}}, "spec": spec})


def _get(kube: KubeCluster, ns: str, name: str) -> dict:
    return kube.request("GET", GATEWAYS.format(ns=ns) + "/" + name)


def _filters(gateway: dict) -> list[dict]:
    return (((gateway["spec"].get("httpGateway") or {}).get("options") or {}).get("wasm") or {}).get(
        "filters") or []


def test_gloo_deploy_redeploy_list_undeploy(cli, kube: KubeCluster, namespace: str,
                                            open_registry: RegistryServer) -> None:
    ref = f"{open_registry.host}/team/gloo:v1"
    Store.open().add_image(HELLO, RuntimeConfig(abi_versions=["v0.2.1"], root_ids=["gloo_root"]), ref)
    _gateway(kube, namespace, "edge", {"bindPort": 8080, "httpGateway": {
        "options": {"wasm": {"filters": [THEIRS]}}}})
    _gateway(kube, namespace, "edge-ssl", {"bindPort": 8443, "ssl": True, "httpGateway": {}},
             labels={"tier": "public"})
    _gateway(kube, namespace, "tcp", {"bindPort": 9000, "tcpGateway": {"tcpHosts": []}})
    kc = ["--kubeconfig", str(kube.kubeconfig)]

    local_only = cli("deploy", "gloo", ref, "--id", "hello", "-n", namespace, *kc)
    assert local_only.code == 1 and "only in the local store" in local_only.err
    dry = cli("deploy", "gloo", ref, "--id", "hello", "-n", namespace, "--push", "--dry-run", *kc)
    assert dry.code == 0 and "(server dry run)" in dry.out
    assert _filters(_get(kube, namespace, "edge")) == [THEIRS]

    args = ["deploy", "gloo", ref, "--id", "hello", "-n", namespace, "--config", '{"a": 1}', *kc]
    first = cli(*args)
    assert first.code == 0, first.err
    assert sorted(first.out.splitlines()) == [
        f"gateway/edge configured (namespace {namespace})",
        f"gateway/edge-ssl configured (namespace {namespace})"]
    edge = _get(kube, namespace, "edge")
    assert _filters(edge) == [THEIRS, {
        "name": "hello", "image": ref, "vmType": "V8", "rootId": "gloo_root",
        "config": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": '{"a":1}'}}]
    assert "tcpHosts" in _get(kube, namespace, "tcp")["spec"]["tcpGateway"]
    assert not _filters(_get(kube, namespace, "tcp"))

    version = edge["metadata"]["resourceVersion"]
    again = cli(*args)
    assert again.code == 0 and all(" unchanged " in line for line in again.out.splitlines())
    assert _get(kube, namespace, "edge")["metadata"]["resourceVersion"] == version

    only_public = cli("deploy", "gloo", ref, "--id", "public", "-n", namespace, "-l", "tier=public", *kc)
    assert only_public.code == 0 and only_public.out.count("configured") == 1
    assert [f["name"] for f in _filters(_get(kube, namespace, "edge-ssl"))] == ["hello", "public"]

    listed = json.loads(cli("deploy", "list", "-n", namespace, "-o", "json", *kc).out)
    assert sorted((r["id"], r["name"]) for r in listed) == [
        ("hello", "edge"), ("hello", "edge-ssl"), ("public", "edge-ssl")]
    assert all(r["kind"] == "Gateway" and r["digest"].startswith("sha256:") for r in listed)

    gone = cli("undeploy", "gloo", "--id", "hello", "-n", namespace, *kc)
    assert gone.code == 0, gone.err
    assert _filters(_get(kube, namespace, "edge")) == [THEIRS]
    assert [f["name"] for f in _filters(_get(kube, namespace, "edge-ssl"))] == ["public"]
    assert cli("undeploy", "gloo", "--id", "public", "-n", namespace, *kc).code == 0
    ssl = _get(kube, namespace, "edge-ssl")
    assert _filters(ssl) == [] and not any(k.startswith("wasmetool.io/")
                                           for k in ssl["metadata"].get("annotations") or {})
    again_gone = cli("undeploy", "gloo", "--id", "hello", "-n", namespace, *kc)
    assert again_gone.code == 1 and "no Gloo Gateway" in again_gone.err

    nothing = cli("deploy", "gloo", ref, "--id", "x", "-n", namespace, "-l", "tier=none", *kc)
    assert nothing.code == 1 and "no Gateway labelled tier=none" in nothing.err
    wrong_ns = cli("deploy", "gloo", ref, "--id", "x", "-n", "no-such-ns", *kc)
    assert wrong_ns.code == 1 and "namespace 'no-such-ns' does not exist" in wrong_ns.err
