"""Pure logic of deploy: manifests, annotation merge/restore, image formats, flag parsing."""

from __future__ import annotations

import base64
import json

import pytest

from wasmetool.deploy import istio
from wasmetool.deploy.common import check_id, config_string, config_struct, parse_labels, redact
from wasmetool.deploy.envoy import (
    EnvoyOptions,
    default_bootstrap,
    insert_filter,
    remove_filter,
    wasm_filter,
)
from wasmetool.deploy.gloo import GlooOptions, filter_entry
from wasmetool.deploy.image import RemoteImage, istio_format
from wasmetool.errors import WasmetoolError
from wasmetool.oci import mediatypes as mt
from wasmetool.oci.reference import parse_reference
from wasmetool.registry.credentials import Credentials

DIGEST = "sha256:" + "ab" * 32


def _image(creds: Credentials | None = None) -> RemoteImage:
    return RemoteImage(ref=parse_reference("ghcr.io/me/hello:v1"), digest=DIGEST, format="wasme",
                       anonymous_pull=creds is None, credentials=creds)


def test_wasm_plugin_carries_every_flag() -> None:
    opts = istio.IstioOptions(
        deploy_id="hello", namespace="shop", root_id="root", config="header: x-hi",
        labels={"app": "web"}, phase="authz", priority=7, fail_strategy="FAIL_RELOAD",
        plugin_type="network", match=["CLIENT_AND_SERVER:80,443", "server"],
        image_pull_policy="always", env=["A=1", "POD_NAME"])
    plugin = istio.wasm_plugin(opts, _image(), pull_secret="pull")
    assert plugin["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "wasmetool",
                                            "wasmetool.io/id": "hello"}
    assert plugin["metadata"]["namespace"] == "shop"
    spec = plugin["spec"]
    assert spec["url"] == "oci://ghcr.io/me/hello:v1" and spec["sha256"] == "ab" * 32
    assert spec["selector"] == {"matchLabels": {"app": "web"}}
    assert spec["pluginName"] == "root" and spec["pluginConfig"] == {"header": "x-hi"}
    assert (spec["phase"], spec["priority"], spec["failStrategy"]) == ("AUTHZ", 7, "FAIL_RELOAD")
    assert spec["type"] == "NETWORK" and spec["imagePullPolicy"] == "Always"
    assert spec["imagePullSecret"] == "pull"
    assert spec["match"] == [{"mode": "CLIENT_AND_SERVER", "ports": [{"number": 80}, {"number": 443}]},
                             {"mode": "SERVER"}]
    assert spec["vmConfig"]["env"] == [{"name": "A", "valueFrom": "INLINE", "value": "1"},
                                       {"name": "POD_NAME", "valueFrom": "HOST"}]


def test_wasm_plugin_target_refs_and_conflicts() -> None:
    opts = istio.IstioOptions(deploy_id="gw", target_refs=["Gateway/edge", "Service/api"])
    refs = istio.wasm_plugin(opts, _image())["spec"]["targetRefs"]
    assert refs == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge"},
                    {"group": "", "kind": "Service", "name": "api"}]
    with pytest.raises(WasmetoolError, match="exclude each other"):
        istio.wasm_plugin(istio.IstioOptions(deploy_id="x", labels={"a": "b"},
                                             target_refs=["Gateway/g"]), _image())
    with pytest.raises(WasmetoolError, match="KIND/NAME"):
        istio.parse_target_refs(["Pod/x"])
    with pytest.raises(WasmetoolError, match="contradicts"):
        istio.wasm_plugin(istio.IstioOptions(deploy_id="x", fail_strategy="FAIL_CLOSE"), _image(),
                          fail_open=True)
    with pytest.raises(WasmetoolError, match="--phase 'late'"):
        istio.wasm_plugin(istio.IstioOptions(deploy_id="x", phase="late"), _image())
    with pytest.raises(WasmetoolError, match="port '0'"):
        istio.parse_match(["SERVER:0"])
    with pytest.raises(WasmetoolError, match="JSON or YAML object"):
        istio.wasm_plugin(istio.IstioOptions(deploy_id="x", config="just text"), _image())


def test_pull_secret_is_a_dockerconfigjson() -> None:
    secret = istio.pull_secret_object("pull", istio.IstioOptions(deploy_id="x"),
                                      _image(Credentials("me", "s3cret")))
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert config["auths"]["ghcr.io"]["username"] == "me"
    assert base64.b64decode(config["auths"]["ghcr.io"]["auth"]) == b"me:s3cret"
    assert "s3cret" not in json.dumps(redact([secret], show_secrets=False))
    assert redact([secret], show_secrets=True) == [secret]
    with pytest.raises(WasmetoolError, match="wasmetool login ghcr.io"):
        istio.pull_secret_object("pull", istio.IstioOptions(deploy_id="x"), _image())


def test_legacy_objects_http_and_network() -> None:
    wasm = b"\0asm\1\0\0\0"
    opts = istio.IstioOptions(deploy_id="hello", labels={"app": "web"}, config='{"a": 1}',
                              env=["K=V", "HOSTKEY"], patch_context="outbound", legacy=True)
    configmap, envoy_filter = istio.legacy_objects(opts, wasm, "r/x:v1", DIGEST, fail_open=True)
    assert base64.b64decode(configmap["binaryData"]["filter.wasm"]) == wasm
    patch = envoy_filter["spec"]["configPatches"][0]
    assert envoy_filter["spec"]["workloadSelector"] == {"labels": {"app": "web"}}
    assert patch["applyTo"] == "HTTP_FILTER" and patch["match"]["context"] == "SIDECAR_OUTBOUND"
    assert patch["match"]["listener"]["filterChain"]["filter"]["subFilter"] == {
        "name": "envoy.filters.http.router"}
    config = patch["patch"]["value"]["typed_config"]["config"]
    assert config["vm_config"]["code"]["local"]["filename"] == "/var/local/lib/wasmetool/hello/filter.wasm"
    assert config["configuration"]["value"] == '{"a":1}' and config["fail_open"] is True
    assert config["vm_config"]["environment_variables"] == {"key_values": {"K": "V"},
                                                            "host_env_keys": ["HOSTKEY"]}
    opts.plugin_type = "NETWORK"
    _, network = istio.legacy_objects(opts, wasm, "r/x:v1", DIGEST)
    patch = network["spec"]["configPatches"][0]
    assert patch["applyTo"] == "NETWORK_FILTER"
    assert patch["match"]["listener"]["filterChain"]["filter"] == {"name": "envoy.filters.network.tcp_proxy"}
    assert patch["patch"]["value"]["name"] == "envoy.filters.network.wasm"


def test_legacy_refuses_a_module_over_the_configmap_limit() -> None:
    with pytest.raises(WasmetoolError, match="a ConfigMap holds at most 1048576 bytes"):
        istio.legacy_objects(istio.IstioOptions(deploy_id="big"), b"\0" * (1024 * 1024), "r", DIGEST)


def _workload(template: dict | None = None, meta: dict | None = None) -> dict:
    return {"kind": "Deployment", "metadata": {"name": "web", **(meta or {})},
            "spec": {"template": {"metadata": {"annotations": template or {}}}}}


def _apply(workload: dict, patch: dict) -> dict:
    """A JSON merge patch (RFC 7386), as the API server applies it."""
    def merge(target, value):
        if not isinstance(value, dict):
            return value
        out = dict(target) if isinstance(target, dict) else {}
        for key, item in value.items():
            if item is None:
                out.pop(key, None)
            else:
                out[key] = merge(out.get(key), item)
        return out
    return merge(workload, patch)


@pytest.mark.parametrize("before", [
    {},
    {istio.USER_VOLUME: '[{"name":"certs","secret":{"secretName":"c"}}]',
     istio.USER_VOLUME_MOUNT: '[{"name":"certs","mountPath":"/etc/c"}]'},
    {istio.USER_VOLUME: '{"certs": {"secret": {"secretName": "c"}}}'},  # Istio's older map form
])
def test_annotations_merge_and_restore_exactly(before: dict) -> None:
    workload = _workload(dict(before))
    patch = istio.annotate_patch(workload, "hello")
    assert patch is not None
    deployed = _apply(workload, patch)
    annotations = deployed["spec"]["template"]["metadata"]["annotations"]
    assert "wasmetool-hello" in annotations[istio.USER_VOLUME]
    assert "/var/local/lib/wasmetool/hello" in annotations[istio.USER_VOLUME_MOUNT]
    assert istio.annotate_patch(deployed, "hello") is None  # idempotent: no second restart
    # a second id on the same workload, then undeploy both in turn
    both = _apply(deployed, istio.annotate_patch(deployed, "other"))
    one = _apply(both, istio.restore_patch(both, "hello"))
    assert "wasmetool-hello" not in json.dumps(one["spec"])
    assert "wasmetool-other" in one["spec"]["template"]["metadata"]["annotations"][istio.USER_VOLUME]
    restored = _apply(one, istio.restore_patch(one, "other"))
    assert restored["spec"]["template"]["metadata"]["annotations"] == before
    assert restored["metadata"].get("annotations", {}) == {}


def test_annotation_that_is_not_json_is_refused() -> None:
    with pytest.raises(WasmetoolError, match="not valid JSON"):
        istio.annotate_patch(_workload({istio.USER_VOLUME: "{oops"}), "x")


def test_istio_format_follows_istios_fetcher() -> None:
    wasme = {"layers": [{"mediaType": mt.WASM_CONFIG}, {"mediaType": mt.WASM_LAYER}]}
    assert istio_format(wasme, mt.OCI_MANIFEST) == "wasme"
    assert istio_format({"layers": [{"mediaType": mt.OCI_LAYER_TAR_GZIP}]}, mt.OCI_MANIFEST) == "oci"
    assert istio_format({"layers": [{"mediaType": mt.DOCKER_LAYER_TAR_GZIP}]},
                        mt.DOCKER_MANIFEST) == "docker"
    three = {"layers": [*wasme["layers"], {"mediaType": "text/markdown"}]}
    assert istio_format(three, mt.OCI_MANIFEST) is None
    assert istio_format({"layers": [{"mediaType": "application/vnd.wasm.content.layer.v1+wasm"}]},
                        mt.OCI_MANIFEST) is None
    assert istio_format({"manifests": []}, mt.OCI_INDEX) is None


def test_ids_labels_and_config() -> None:
    assert check_id("add-header") == "add-header"
    for bad in ("", "Upper", "-x", "a" * 51, "under_score"):
        with pytest.raises(WasmetoolError):
            check_id(bad)
    assert parse_labels(["app=web,tier=front", "v=1"]) == {"app": "web", "tier": "front", "v": "1"}
    with pytest.raises(WasmetoolError, match="KEY=VALUE"):
        parse_labels(["novalue"])
    assert config_struct("a: 1\nb: [x]") == {"a": 1, "b": ["x"]}
    assert config_string("plain") == "plain" and config_string('{"a": 1}') == '{"a":1}'


def test_envoy_insert_replace_remove(tmp_path) -> None:
    doc = default_bootstrap("http://127.0.0.1:9", listen="127.0.0.1:1", admin="127.0.0.1:2")
    opts = EnvoyOptions(deploy_id="f", config="c1")
    assert insert_filter(doc, opts, wasm_filter(opts, tmp_path / "m.wasm")) == 1
    opts.config = "c2"
    insert_filter(doc, opts, wasm_filter(opts, tmp_path / "m.wasm"))
    http = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
    assert [f["name"] for f in http] == ["envoy.filters.http.wasm", "envoy.filters.http.router"]
    assert http[0]["typed_config"]["config"]["configuration"]["value"] == "c2"
    assert remove_filter(doc, "f") == 1
    assert [f["name"] for f in http] == ["envoy.filters.http.router"]


def test_gloo_filter_entry() -> None:
    entry = filter_entry(GlooOptions(deploy_id="hello", config="cfg", root_id="root"), _image())
    assert entry == {"name": "hello", "image": "ghcr.io/me/hello:v1", "vmType": "V8",
                     "rootId": "root", "config": {
                         "@type": "type.googleapis.com/google.protobuf.StringValue", "value": "cfg"}}
