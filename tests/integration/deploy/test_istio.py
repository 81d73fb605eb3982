"""`deploy istio` / `undeploy istio` / `deploy list` against a real kube-apiserver.

No controllers run: the tests check what the API server stores — objects created,
re-deploys that change nothing (resourceVersion unmoved), annotations backed up and
restored, Secret contents, undeploy leaving nothing behind, server-side dry run —
and that bad input leaves the cluster as it was.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import wasmtime
import yaml

from tests.support.kube import KubeCluster
from tests.support.registry import RegistryServer
from wasmetool.oci.runtime_config import RuntimeConfig
from wasmetool.registry.client import RegistryClient
from wasmetool.store import Store

pytestmark = pytest.mark.integration

HELLO = (Path(__file__).resolve().parents[3] / "examples" / "hello.wasm").read_bytes()
WP = "/apis/extensions.istio.io/v1alpha1/namespaces/{ns}/wasmplugins"
EF = "/apis/networking.istio.io/v1alpha3/namespaces/{ns}/envoyfilters"
CM = "/api/v1/namespaces/{ns}/configmaps"
SECRETS = "/api/v1/namespaces/{ns}/secrets"
DEPLOYMENTS = "/apis/apps/v1/namespaces/{ns}/deployments"
SELECTOR = "?labelSelector=app.kubernetes.io/managed-by%3Dwasmetool"


def _store(ref: str, wasm: bytes = HELLO, root_ids: list[str] | None = None) -> str:
    Store.open().add_image(wasm, RuntimeConfig(abi_versions=["v0.2.1"], root_ids=root_ids or []), ref)
    return ref


def _names(kube: KubeCluster, path: str) -> list[str]:
    return sorted(item["metadata"]["name"] for item in (kube.request("GET", path + SELECTOR) or {}).get("items", []))


def _deployment(kube: KubeCluster, ns: str, name: str, annotations: dict[str, str] | None = None,
                kind: str = "deployments") -> dict:
    body = {"apiVersion": "apps/v1", "kind": {"deployments": "Deployment", "daemonsets": "DaemonSet"}[kind],
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name},
                                               "annotations": annotations or {}},
                                  "spec": {"containers": [{"name": "app", "image": "example/app:1"}]}}}}
    return kube.request("POST", f"/apis/apps/v1/namespaces/{ns}/{kind}", body)


@pytest.fixture
def run(cli, kube: KubeCluster):
    """The CLI with --kubeconfig for the test cluster; every run is one line on error."""

    def runner(*args: str, kubeconfig: bool = True):
        to_cluster = args[0] in ("deploy", "undeploy") and kubeconfig
        extra = ["--kubeconfig", str(kube.kubeconfig)] if to_cluster else []
        result = cli(*args, *extra)
        assert "Traceback" not in result.err
        if result.code != 0:
            assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
        return result

    return runner


def test_wasmplugin_deploy_redeploy_list_undeploy(run, kube: KubeCluster, namespace: str,
                                                  open_registry: RegistryServer) -> None:
    ref = _store(f"{open_registry.host}/team/hello:v1", root_ids=["hello_root"])
    assert run("push", ref).code == 0
    args = ["deploy", "istio", ref, "--id", "hello", "-n", namespace, "-l", "app=web",
            "--config", '{"header": "x-hello"}', "--phase", "STATS", "--priority", "10",
            "--fail-open", "--match", "SERVER:8080", "--env", "A=1", "--image-pull-policy",
            "Always"]
    first = run(*args)
    assert first.code == 0, first.err
    assert first.out.strip() == f"wasmplugin/hello created (namespace {namespace})"
    plugin = kube.request("GET", WP.format(ns=namespace) + "/hello")
    digest = RegistryClient(open_registry.host).get_manifest("team/hello", "v1", "")[2]
    assert plugin["spec"]["url"] == f"oci://{ref}"
    assert plugin["spec"]["sha256"] == digest.removeprefix("sha256:")
    assert plugin["spec"]["pluginName"] == "hello_root"
    assert plugin["spec"]["pluginConfig"] == {"header": "x-hello"}
    assert plugin["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert (plugin["spec"]["phase"], plugin["spec"]["priority"]) == ("STATS", 10)
    assert plugin["spec"]["failStrategy"] == "FAIL_OPEN"
    assert plugin["metadata"]["labels"]["wasmetool.io/id"] == "hello"
    assert plugin["metadata"]["managedFields"][0]["manager"] == "wasmetool"
    version = plugin["metadata"]["resourceVersion"]

    again = run(*args)
    assert again.code == 0 and again.out.strip().endswith(f"unchanged (namespace {namespace})")
    assert kube.request("GET", WP.format(ns=namespace) + "/hello")["metadata"]["resourceVersion"] == version

    changed = run(*args[:-2], "--config", '{"header": "x-other"}')
    assert changed.code == 0 and "configured" in changed.out
    assert kube.request("GET", WP.format(ns=namespace) + "/hello")["spec"]["pluginConfig"] == {
        "header": "x-other"}

    listed = run("deploy", "list", "-n", namespace, "-o", "json")
    assert listed.code == 0
    assert json.loads(listed.out) == [{"namespace": namespace, "id": "hello", "kind": "WasmPlugin",
                                       "name": "hello", "image": ref, "digest": digest}]
    table = run("deploy", "list", "-A")
    assert namespace in table.out and "WasmPlugin" in table.out

    gone = run("undeploy", "istio", "--id", "hello", "-n", namespace)
    assert gone.code == 0 and "wasmplugin/hello deleted" in gone.out
    assert kube.request("GET", WP.format(ns=namespace) + "/hello") is None
    assert json.loads(run("deploy", "list", "-n", namespace, "-o", "json").out) == []
    nothing = run("undeploy", "istio", "--id", "hello", "-n", namespace)
    assert nothing.code == 1 and "nothing deployed with id 'hello'" in nothing.err


def test_local_only_ref_is_refused_and_push_pushes(run, kube: KubeCluster, namespace: str,
                                                  open_registry: RegistryServer) -> None:
    ref = _store(f"{open_registry.host}/team/local-only:v1")
    refused = run("deploy", "istio", ref, "--id", "local", "-n", namespace)
    assert refused.code == 1
    assert "only in the local store" in refused.err and "--push" in refused.err
    assert _names(kube, WP.format(ns=namespace)) == []
    pushed = run("deploy", "istio", ref, "--id", "local", "-n", namespace, "--push")
    assert pushed.code == 0, pushed.err
    assert _names(kube, WP.format(ns=namespace)) == ["local"]
    unknown = run("deploy", "istio", f"{open_registry.host}/team/nothing:v1", "--id", "x",
                  "-n", namespace)
    assert unknown.code == 1 and "no image" in unknown.err


def test_private_registry_needs_a_pull_secret(run, kube: KubeCluster, namespace: str,
                                              auth_registry: RegistryServer) -> None:
    ref = _store(f"{auth_registry.host}/team/private:v1")
    password = auth_registry.password
    assert run("login", auth_registry.host, "-u", auth_registry.username, "-p", password).code == 0
    assert run("push", ref).code == 0

    refused = run("deploy", "istio", ref, "--id", "priv", "-n", namespace)
    assert refused.code == 1 and "refuses anonymous pulls" in refused.err
    assert "--create-pull-secret" in refused.err
    missing = run("deploy", "istio", ref, "--id", "priv", "-n", namespace, "--pull-secret", "nope")
    assert missing.code == 1 and "Secret 'nope' does not exist" in missing.err
    assert _names(kube, WP.format(ns=namespace)) == []

    dry = run("deploy", "istio", ref, "--id", "priv", "-n", namespace, "--create-pull-secret",
              "--dry-run", kubeconfig=False)
    assert dry.code == 0 and password not in dry.out
    docs = list(yaml.safe_load_all(dry.out))
    assert [d["kind"] for d in docs] == ["Secret", "WasmPlugin"]
    assert docs[0]["data"][".dockerconfigjson"].startswith("<redacted")
    shown = run("deploy", "istio", ref, "--id", "priv", "-n", namespace, "--create-pull-secret",
                "--dry-run", "--show-secrets", "-o", "json", kubeconfig=False)
    secret_doc = json.loads(shown.out)["items"][0]
    assert password in base64.b64decode(secret_doc["data"][".dockerconfigjson"]).decode()

    deployed = run("deploy", "istio", ref, "--id", "priv", "-n", namespace, "--create-pull-secret")
    assert deployed.code == 0, deployed.err
    assert password not in deployed.out + deployed.err
    assert "secret/wasmetool-priv-pull created" in deployed.out
    secret = kube.request("GET", SECRETS.format(ns=namespace) + "/wasmetool-priv-pull")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    entry = config["auths"][auth_registry.host]
    assert (entry["username"], entry["password"]) == (auth_registry.username, password)
    plugin = kube.request("GET", WP.format(ns=namespace) + "/priv")
    assert plugin["spec"]["imagePullSecret"] == "wasmetool-priv-pull"
    # a Secret wasmetool did not create is never overwritten, but can be referenced
    kube.request("POST", SECRETS.format(ns=namespace), {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "theirs"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(b'{"auths":{}}').decode()}})
    clash = run("deploy", "istio", ref, "--id", "priv2", "-n", namespace, "--pull-secret", "theirs",
                "--create-pull-secret")
    assert clash.code == 1 and "was not created by wasmetool" in clash.err
    referenced = run("deploy", "istio", ref, "--id", "priv2", "-n", namespace, "--pull-secret", "theirs")
    assert referenced.code == 0, referenced.err

    assert run("undeploy", "istio", "--id", "priv", "-n", namespace).code == 0
    assert run("undeploy", "istio", "--id", "priv2", "-n", namespace).code == 0
    assert _names(kube, SECRETS.format(ns=namespace)) == []
    assert kube.request("GET", SECRETS.format(ns=namespace) + "/theirs") is not None
    assert _names(kube, WP.format(ns=namespace)) == []


def test_image_in_a_format_istio_cannot_pull_is_refused(run, kube: KubeCluster, namespace: str,
                                                         open_registry: RegistryServer) -> None:
    # wasme-style, but with a third layer (a README): Istio's fetcher takes none of its paths.
    client = RegistryClient(open_registry.host)
    scope = "repository:team/three:pull,push"
    blobs = {}
    for media_type, data in (("application/vnd.module.wasm.config.v1+json", b'{"type":"envoy_proxy"}'),
                             ("application/vnd.module.wasm.content.layer.v1+wasm", HELLO),
                             ("text/markdown", b"# readme")):
        import hashlib

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        client.upload_blob("team/three", digest, data, scope)
        blobs[media_type] = {"mediaType": media_type, "digest": digest, "size": len(data)}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": blobs["application/vnd.module.wasm.config.v1+json"],
                "layers": list(blobs.values())}
    client.put_manifest("team/three", "v1", json.dumps(manifest).encode(),
                        "application/vnd.oci.image.manifest.v1+json", scope)
    ref = f"{open_registry.host}/team/three:v1"
    refused = run("deploy", "istio", ref, "--id", "three", "-n", namespace)
    assert refused.code == 1
    assert "not in a format Istio's agent can pull" in refused.err
    assert f"wasmetool push {ref} --format oci" in refused.err
    assert _names(kube, WP.format(ns=namespace)) == []


def test_legacy_configmap_annotations_envoyfilter(run, kube: KubeCluster, namespace: str,
                                                  open_registry: RegistryServer) -> None:
    ref = _store(f"{open_registry.host}/team/legacy:v1", root_ids=["legacy_root"])
    original = {"sidecar.istio.io/userVolume": '[{"name":"certs","secret":{"secretName":"c"}}]',
                "other": "kept"}
    _deployment(kube, namespace, "web", original)
    _deployment(kube, namespace, "db")
    args = ["deploy", "istio", ref, "--id", "hello", "-n", namespace, "--legacy", "-l", "app=web",
            "--config", "plain-config"]
    first = run(*args)
    assert first.code == 0, first.err
    assert first.out.splitlines() == [
        f"configmap/wasmetool-hello created (namespace {namespace})",
        f"envoyfilter/wasmetool-hello created (namespace {namespace})",
        f"deployment/web annotated (namespace {namespace})"]
    configmap = kube.request("GET", CM.format(ns=namespace) + "/wasmetool-hello")
    assert base64.b64decode(configmap["binaryData"]["filter.wasm"]) == HELLO
    envoy_filter = kube.request("GET", EF.format(ns=namespace) + "/wasmetool-hello")
    value = envoy_filter["spec"]["configPatches"][0]["patch"]["value"]
    assert value["name"] == "envoy.filters.http.wasm"
    assert value["typed_config"]["config"]["root_id"] == "legacy_root"
    assert value["typed_config"]["config"]["configuration"]["value"] == "plain-config"
    assert envoy_filter["spec"]["workloadSelector"] == {"labels": {"app": "web"}}
    web = kube.request("GET", DEPLOYMENTS.format(ns=namespace) + "/web")
    annotations = web["spec"]["template"]["metadata"]["annotations"]
    volumes = json.loads(annotations["sidecar.istio.io/userVolume"])
    assert [v["name"] for v in volumes] == ["certs", "wasmetool-hello"]
    assert json.loads(annotations["sidecar.istio.io/userVolumeMount"]) == [
        {"name": "wasmetool-hello", "mountPath": "/var/local/lib/wasmetool/hello", "readOnly": True}]
    assert "wasmetool.io/backup.hello" in web["metadata"]["annotations"]
    db = kube.request("GET", DEPLOYMENTS.format(ns=namespace) + "/db")
    assert db["spec"]["template"]["metadata"].get("annotations") in (None, {})

    versions = {name: kube.request("GET", path)["metadata"]["resourceVersion"] for name, path in (
        ("cm", CM.format(ns=namespace) + "/wasmetool-hello"),
        ("ef", EF.format(ns=namespace) + "/wasmetool-hello"),
        ("web", DEPLOYMENTS.format(ns=namespace) + "/web"))}
    again = run(*args)
    assert again.code == 0 and all(line.split()[1] == "unchanged" for line in again.out.splitlines())
    assert {name: kube.request("GET", path)["metadata"]["resourceVersion"] for name, path in (
        ("cm", CM.format(ns=namespace) + "/wasmetool-hello"),
        ("ef", EF.format(ns=namespace) + "/wasmetool-hello"),
        ("web", DEPLOYMENTS.format(ns=namespace) + "/web"))} == versions

    # a new module: the ConfigMap changes, the pods are told to restart (they read it at start)
    _store(ref, wasm=HELLO + b"\x00\x04\x03new", root_ids=["legacy_root"])
    updated = run(*args)
    assert updated.code == 0, updated.err
    assert f"configmap/wasmetool-hello configured (namespace {namespace})" in updated.out
    assert f"kubectl rollout restart -n {namespace} deployment/web" in updated.err
    configmap = kube.request("GET", CM.format(ns=namespace) + "/wasmetool-hello")
    assert base64.b64decode(configmap["binaryData"]["filter.wasm"]).endswith(b"new")

    listed = json.loads(run("deploy", "list", "-n", namespace, "-o", "json").out)
    assert sorted((r["kind"], r["name"]) for r in listed) == [
        ("ConfigMap", "wasmetool-hello"), ("Deployment", "web"), ("EnvoyFilter", "wasmetool-hello")]

    gone = run("undeploy", "istio", "--id", "hello", "-n", namespace)
    assert gone.code == 0, gone.err
    web = kube.request("GET", DEPLOYMENTS.format(ns=namespace) + "/web")
    assert web["spec"]["template"]["metadata"]["annotations"] == original
    assert "wasmetool.io/backup.hello" not in (web["metadata"].get("annotations") or {})
    assert _names(kube, CM.format(ns=namespace)) == [] and _names(kube, EF.format(ns=namespace)) == []


def test_legacy_daemonset_network_filter_gateway_context(run, kube: KubeCluster, namespace: str,
                                                        open_registry: RegistryServer) -> None:
    ref = _store(f"{open_registry.host}/team/legacy-net:v1")
    _deployment(kube, namespace, "edge", kind="daemonsets")
    result = run("deploy", "istio", ref, "--id", "tcp", "-n", namespace, "--legacy", "-l",
                 "app=edge", "--workload-kind", "daemonset", "--type", "NETWORK",
                 "--patch-context", "gateway")
    assert result.code == 0, result.err
    patch = kube.request("GET", EF.format(ns=namespace) + "/wasmetool-tcp")["spec"]["configPatches"][0]
    assert (patch["applyTo"], patch["match"]["context"]) == ("NETWORK_FILTER", "GATEWAY")
    edge = kube.request("GET", f"/apis/apps/v1/namespaces/{namespace}/daemonsets/edge")
    assert "wasmetool-tcp" in edge["spec"]["template"]["metadata"]["annotations"]["sidecar.istio.io/userVolume"]
    assert run("undeploy", "istio", "--id", "tcp", "-n", namespace).code == 0
    edge = kube.request("GET", f"/apis/apps/v1/namespaces/{namespace}/daemonsets/edge")
    assert not edge["spec"]["template"]["metadata"].get("annotations")


def test_legacy_refusals_leave_the_cluster_as_it_was(run, kube: KubeCluster, namespace: str,
                                                     open_registry: RegistryServer) -> None:
    # A valid module over the 1 MiB a ConfigMap holds (a big custom section).
    big = bytes(wasmtime.wat2wasm('(module (memory (export "memory") 1) '
                                  '(func (export "proxy_abi_version_0_2_1")))'))
    section = b"x" * (1024 * 1024 + 10)
    name = b"pad"
    payload = bytes([len(name)]) + name + section

    def leb(n: int) -> bytes:
        out = bytearray()
        while True:
            byte = n & 0x7F
            n >>= 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)

    big += b"\x00" + leb(len(payload)) + payload
    ref = _store(f"{open_registry.host}/team/big:v1", wasm=big)
    _deployment(kube, namespace, "web")
    oversized = run("deploy", "istio", ref, "--id", "big", "-n", namespace, "--legacy", "-l", "app=web")
    assert oversized.code == 1 and "a ConfigMap holds at most" in oversized.err
    no_workload = run("deploy", "istio", _store(f"{open_registry.host}/team/small:v1"), "--id", "s",
                      "-n", namespace, "--legacy", "-l", "app=nothing")
    assert no_workload.code == 1 and "no deployment in namespace" in no_workload.err
    assert _names(kube, CM.format(ns=namespace)) == [] and _names(kube, EF.format(ns=namespace)) == []
    web = kube.request("GET", DEPLOYMENTS.format(ns=namespace) + "/web")
    assert not web["spec"]["template"]["metadata"].get("annotations")


def test_server_dry_run_validates_and_stores_nothing(run, kube: KubeCluster, namespace: str,
                                                     open_registry: RegistryServer) -> None:
    ref = _store(f"{open_registry.host}/team/dry:v1")
    assert run("push", ref).code == 0
    _deployment(kube, namespace, "web")
    for extra in ([], ["--legacy", "-l", "app=web"]):
        result = run("deploy", "istio", ref, "--id", "dry", "-n", namespace, "--dry-run=server", *extra)
        assert result.code == 0, result.err
        assert all("(server dry run)" in line for line in result.out.splitlines())
    assert _names(kube, WP.format(ns=namespace)) == [] and _names(kube, CM.format(ns=namespace)) == []
    web = kube.request("GET", DEPLOYMENTS.format(ns=namespace) + "/web")
    assert not web["spec"]["template"]["metadata"].get("annotations")
    # the API server's validation is what answers: a schema violation is caught without storing
    bad = run("deploy", "istio", ref, "--id", "dry", "-n", namespace, "--dry-run=server",
              "--root-id", "r" * 300)
    assert bad.code == 1 and "the API server rejected WasmPlugin dry" in bad.err
    assert _names(kube, WP.format(ns=namespace)) == []


def test_istio_version_is_read_and_old_istio_gets_legacy_advice(run, kube: KubeCluster,
                                                                 namespace: str,
                                                                 open_registry: RegistryServer) -> None:
    ref = _store(f"{open_registry.host}/team/version:v1")
    assert run("push", ref).code == 0
    for ns, image in ((f"{namespace}-old", "docker.io/istio/pilot:1.11.4"),
                      (f"{namespace}-new", "docker.io/istio/pilot:1.24.2-distroless")):
        kube.create_namespace(ns)
        body = _deployment(kube, ns, "istiod")
        body["metadata"]["labels"] = {"app": "istiod", "istio.io/rev": "default"}
        body["spec"]["template"]["spec"]["containers"][0]["image"] = image
        kube.request("PUT", f"/apis/apps/v1/namespaces/{ns}/deployments/istiod", body)
    old = run("deploy", "istio", ref, "--id", "v", "-n", namespace, "--istio-namespace",
              f"{namespace}-old")
    assert old.code == 1 and "Istio 1.11.4 has no WasmPlugin" in old.err and "--legacy" in old.err
    assert _names(kube, WP.format(ns=namespace)) == []
    new = run("deploy", "istio", ref, "--id", "v", "-n", namespace, "--istio-namespace",
              f"{namespace}-new", "-o", "json")
    assert new.code == 0, new.err
    assert json.loads(new.out)["istioVersion"] == "1.24.2"
    by_rev = run("deploy", "istio", ref, "--id", "v", "-n", namespace, "--istio-namespace",
                 f"{namespace}-new", "--revision", "default")
    assert by_rev.code == 0 and "unchanged" in by_rev.out
    no_rev = run("deploy", "istio", ref, "--id", "v", "-n", namespace, "--istio-namespace",
                 f"{namespace}-new", "--revision", "canary")
    assert no_rev.code == 1 and "no istiod with revision 'canary'" in no_rev.err


def test_cluster_errors_are_one_line(run, kube: KubeCluster, namespace: str, tmp_path: Path,
                                     open_registry: RegistryServer) -> None:
    from tests.support.ports import free_port

    ref = _store(f"{open_registry.host}/team/errors:v1")
    assert run("push", ref).code == 0
    unreachable = kube.write_kubeconfig(tmp_path / "down", server=f"https://127.0.0.1:{free_port()}")
    down = run("deploy", "istio", ref, "--id", "e", "-n", namespace, "--kubeconfig",
               str(unreachable), kubeconfig=False)
    assert down.code == 1 and "cannot reach the Kubernetes API server" in down.err
    wrong_ns = run("deploy", "istio", ref, "--id", "e", "-n", "no-such-namespace")
    assert wrong_ns.code == 1 and "namespace 'no-such-namespace' does not exist" in wrong_ns.err
    bad_token = kube.write_kubeconfig(tmp_path / "badtoken", token="wrong")
    refused = run("deploy", "istio", ref, "--id", "e", "-n", namespace, "--kubeconfig",
                  str(bad_token), kubeconfig=False)
    assert refused.code == 1 and "refused the credentials" in refused.err
    no_config = run("deploy", "istio", ref, "--id", "e", kubeconfig=False)
    assert no_config.code == 1 and "no Kubernetes configuration found" in no_config.err

    # forbidden: a user who may read everything but write nothing
    kube.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "wasmetool-test-reader"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list"]}]})
    kube.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "wasmetool-test-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "wasmetool-test-reader"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "viewer"}]})
    viewer = kube.write_kubeconfig(tmp_path / "viewer", token=kube.viewer_token)

    def forbidden() -> bool:
        result = run("deploy", "istio", ref, "--id", "e", "-n", namespace, "--kubeconfig",
                     str(viewer), kubeconfig=False)
        assert result.code == 1, result.out
        return "forbidden" in result.err

    from tests.support.ports import wait_until

    wait_until(forbidden, timeout=10, interval=0.2, what="RBAC to apply")  # role cache warm-up
    assert _names(kube, WP.format(ns=namespace)) == []


def test_missing_crd_is_named(run, kube: KubeCluster, namespace: str,
                              open_registry: RegistryServer) -> None:
    ref = _store(f"{open_registry.host}/team/crd:v1")
    assert run("push", ref).code == 0
    crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/wasmplugins.extensions.istio.io"
    kube.request("DELETE", crd_path)
    try:
        from tests.support.ports import wait_until

        wait_until(lambda: kube.request("GET", crd_path) is None
                   and kube.request("GET", WP.format(ns=namespace)) is None,
                   timeout=30, interval=0.2, what="CRD removal")
        result = run("deploy", "istio", ref, "--id", "c", "-n", namespace)
        assert result.code == 1
        assert "the cluster has no WasmPlugin resource" in result.err and "--legacy" in result.err
    finally:
        kube.install_crds()


def test_kubeconfig_resolution_like_kubectl(cli, kube: KubeCluster, namespace: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            open_registry: RegistryServer) -> None:
    ref = _store(f"{open_registry.host}/team/ctx:v1")
    assert cli("push", ref).code == 0
    config = yaml.safe_load(kube.kubeconfig.read_text())
    config["contexts"].append({"name": "mine", "context": {"cluster": "test", "user": "admin",
                                                           "namespace": namespace}})
    config["clusters"].append({"name": "down", "cluster": {"server": "https://127.0.0.1:1"}})
    config["contexts"].append({"name": "down", "context": {"cluster": "down", "user": "admin"}})
    config["current-context"] = "down"
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert "cannot reach" in cli("deploy", "istio", ref, "--id", "k").err
    result = cli("deploy", "istio", ref, "--id", "k", "--context", "mine")
    assert result.code == 0, result.err
    assert f"(namespace {namespace})" in result.out  # the context's namespace
    unknown = cli("deploy", "istio", ref, "--id", "k", "--context", "nope")
    assert unknown.code == 1 and "context 'nope'" in unknown.err
    assert cli("undeploy", "istio", "--id", "k", "--context", "mine").code == 0


def test_in_cluster_service_account(cli, kube: KubeCluster, namespace: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    open_registry: RegistryServer) -> None:
    """No kubeconfig anywhere, KUBERNETES_SERVICE_HOST set: the pod's service account is used,
    and its namespace file gives the default namespace."""
    from kubernetes.config import incluster_config

    ref = _store(f"{open_registry.host}/team/incluster:v1")
    assert cli("push", ref).code == 0
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(kube.token)
    (account / "ca.crt").write_text(kube.ca_file.read_text())
    (account / "namespace").write_text(namespace)
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(account / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(account / "ca.crt"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kube/config
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(kube.port))
    result = cli("deploy", "istio", ref, "--id", "incluster")
    assert result.code == 0, result.err
    assert result.out.strip() == f"wasmplugin/incluster created (namespace {namespace})"
    assert cli("undeploy", "istio", "--id", "incluster").code == 0


@pytest.mark.parametrize(("content", "message"), [
    ("garbage: [\n", "not valid YAML"),
    ("just a string\n", "it is not a kubeconfig"),
    ("apiVersion: v1\nkind: Config\n", "current-context"),
])
def test_broken_kubeconfig_is_one_line(cli, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(content)
    result = cli("deploy", "list", "--kubeconfig", str(path))
    assert result.code == 1 and result.err.count("\n") == 1
    assert "the kubeconfig is not usable" in result.err and message in result.err


def test_target_refs_network_type_and_reload_are_stored(run, kube: KubeCluster, namespace: str,
                                                       open_registry: RegistryServer) -> None:
    ref = _store(f"{open_registry.host}/team/gateway:v1")
    assert run("push", ref).code == 0
    result = run("deploy", "istio", ref, "--id", "gw", "-n", namespace, "--target-ref",
                 "Gateway/edge", "--target-ref", "Service/api", "--type", "NETWORK",
                 "--fail-strategy", "FAIL_RELOAD", "--env", "FROM_HOST", "--root-id", "net_root")
    assert result.code == 0, result.err
    spec = kube.request("GET", WP.format(ns=namespace) + "/gw")["spec"]
    assert spec["targetRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge"},
        {"group": "", "kind": "Service", "name": "api"}]
    assert (spec["type"], spec["failStrategy"], spec["pluginName"]) == ("NETWORK", "FAIL_RELOAD", "net_root")
    assert spec["vmConfig"]["env"] == [{"name": "FROM_HOST", "valueFrom": "HOST"}]
    assert "selector" not in spec
    both = run("deploy", "istio", ref, "--id", "gw", "-n", namespace, "--target-ref",
               "Gateway/edge", "-l", "app=web")
    assert both.code == 1 and "exclude each other" in both.err
