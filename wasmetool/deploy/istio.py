"""`deploy istio` / `undeploy istio`: an Istio WasmPlugin, or the legacy ConfigMap path.

Default: one ``WasmPlugin`` (extensions.istio.io/v1alpha1) whose ``url`` is the
pushed image and whose ``sha256`` is its manifest digest (for ``oci://`` URLs
Istio's agent compares ``sha256`` with the digest of the image it pulled), plus,
for private registries, a ``kubernetes.io/dockerconfigjson`` Secret.  Istio's
agent pulls the module and hands it to Envoy: no pod restart.

``--legacy`` automates the recipe people still do by hand on old meshes: a
ConfigMap holding the module (binaryData), the ``sidecar.istio.io/userVolume`` /
``userVolumeMount`` pod-template annotations on the selected workloads (previous
values backed up on the workload and restored by undeploy; changing a pod
template restarts its pods — that is how the sidecar gets the volume), and an
EnvoyFilter inserting ``envoy.filters.http.wasm`` before the router (or
``envoy.filters.network.wasm`` before tcp_proxy).

Everything is written with server-side apply (field manager ``wasmetool``) after a
server-side dry run of all of it, so a refused object leaves the cluster as it was,
and a second deploy of the same thing changes nothing.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from wasmetool.deploy.common import (
    config_string,
    config_struct,
    managed_metadata,
    selector_string,
    warn,
)
from wasmetool.deploy.image import RemoteImage
from wasmetool.deploy.kube import (
    DIGEST_ANNOTATION,
    ID_LABEL,
    IMAGE_ANNOTATION,
    KINDS,
    MANAGED_BY,
    Kube,
    KubeApiError,
)
from wasmetool.errors import WasmetoolError

log = logging.getLogger(__name__)

USER_VOLUME = "sidecar.istio.io/userVolume"
USER_VOLUME_MOUNT = "sidecar.istio.io/userVolumeMount"
BACKUP_PREFIX = "wasmetool.io/backup."
MODULE_KEY = "filter.wasm"
MOUNT_ROOT = "/var/local/lib/wasmetool"
# A ConfigMap's data and binaryData together may hold at most 1 MiB (keys included).
CONFIGMAP_LIMIT = 1024 * 1024
WASMPLUGIN_MIN = (1, 12)
PHASES = ("UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS")
FAIL_STRATEGIES = ("FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD")
PULL_POLICIES = ("IfNotPresent", "Always")
PLUGIN_TYPES = ("HTTP", "NETWORK")
MATCH_MODES = ("UNDEFINED", "CLIENT", "SERVER", "CLIENT_AND_SERVER")
PATCH_CONTEXTS = {"inbound": "SIDECAR_INBOUND", "outbound": "SIDECAR_OUTBOUND",
                  "gateway": "GATEWAY", "any": "ANY"}
WORKLOAD_KINDS = {"deployment": "Deployment", "daemonset": "DaemonSet",
                  "statefulset": "StatefulSet"}
TARGET_GROUPS = {"Gateway": "gateway.networking.k8s.io",
                 "GatewayClass": "gateway.networking.k8s.io",
                 "Service": "", "ServiceEntry": "networking.istio.io"}
HTTP_WASM = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
NETWORK_WASM = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm"
STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"


@dataclass
class IstioOptions:
    deploy_id: str
    namespace: str = "default"
    root_id: str | None = None
    config: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    target_refs: list[str] = field(default_factory=list)
    phase: str | None = None
    priority: int | None = None
    fail_strategy: str | None = None
    plugin_type: str = "HTTP"
    match: list[str] = field(default_factory=list)
    image_pull_policy: str | None = None
    env: list[str] = field(default_factory=list)
    pull_secret: str | None = None
    create_pull_secret: bool = False
    legacy: bool = False
    workload_kind: str = "deployment"
    patch_context: str = "inbound"
    istio_namespace: str = "istio-system"
    revision: str | None = None


@dataclass
class Change:
    kind: str
    name: str
    namespace: str
    action: str  # created, configured, unchanged, deleted, annotated, restored

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "namespace": self.namespace,
                "action": self.action}

    def line(self) -> str:
        return f"{self.kind.lower()}/{self.name} {self.action} (namespace {self.namespace})"


@dataclass
class DeployResult:
    deploy_id: str
    namespace: str
    changes: list[Change] = field(default_factory=list)
    istio_version: str | None = None
    dry_run: str | None = None
    warnings: list[str] = field(default_factory=list)  # printed once the deploy succeeded

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.deploy_id, "namespace": self.namespace, "istioVersion": self.istio_version,
                "dryRun": self.dry_run, "changes": [c.to_dict() for c in self.changes]}


# --------------------------------------------------------------------- flag parsing


def _choice(value: str | None, choices: tuple[str, ...], flag: str) -> str | None:
    if value is None:
        return None
    for choice in choices:
        if value.upper() == choice.upper():
            return choice
    raise WasmetoolError(f"{flag} {value!r} is not one of {', '.join(choices)}")


def parse_target_refs(values: list[str]) -> list[dict[str, str]]:
    """--target-ref KIND/NAME (Gateway, GatewayClass, Service, ServiceEntry)."""
    refs = []
    for value in values:
        kind, sep, name = value.partition("/")
        if not sep or not name or kind not in TARGET_GROUPS:
            raise WasmetoolError(f"--target-ref {value!r}: expected KIND/NAME",
                                 f"KIND is one of {', '.join(TARGET_GROUPS)}, e.g. Gateway/my-gateway")
        refs.append({"group": TARGET_GROUPS[kind], "kind": kind, "name": name})
    if len(refs) > 16:
        raise WasmetoolError("at most 16 --target-ref values are allowed")
    return refs


def parse_match(values: list[str]) -> list[dict[str, Any]]:
    """--match MODE[:PORT[,PORT...]] e.g. SERVER:8080,9090."""
    out = []
    for value in values:
        mode_text, _, ports_text = value.partition(":")
        entry: dict[str, Any] = {}
        if mode_text:
            entry["mode"] = _choice(mode_text, MATCH_MODES, "--match")
        ports = []
        for part in filter(None, (p.strip() for p in ports_text.split(","))):
            if not part.isdigit() or not 1 <= int(part) <= 65535:
                raise WasmetoolError(f"--match {value!r}: port {part!r} is not 1-65535",
                                     "e.g. --match SERVER:8080,9090")
            ports.append({"number": int(part)})
        if ports:
            entry["ports"] = ports
        if not entry:
            raise WasmetoolError(f"--match {value!r}: expected MODE[:PORT,...]", "e.g. --match SERVER:8080")
        out.append(entry)
    return out


def parse_env(values: list[str]) -> list[tuple[str, str | None]]:
    """--env KEY=VALUE (inline) or --env KEY (taken from the proxy's own environment)."""
    out = []
    for value in values:
        key, sep, val = value.partition("=")
        if not key:
            raise WasmetoolError(f"--env {value!r}: expected KEY=VALUE or KEY")
        out.append((key, val if sep else None))
    return out


def _fail_strategy(opts: IstioOptions, fail_open: bool) -> str | None:
    strategy = _choice(opts.fail_strategy, FAIL_STRATEGIES, "--fail-strategy")
    if fail_open:
        if strategy not in (None, "FAIL_OPEN"):
            raise WasmetoolError(f"--fail-open contradicts --fail-strategy {strategy}",
                                 "pass one of them")
        strategy = "FAIL_OPEN"
    return strategy


# ------------------------------------------------------------------------ manifests


def wasm_plugin(opts: IstioOptions, image: RemoteImage, *, fail_open: bool = False,
                pull_secret: str | None = None) -> dict[str, Any]:
    """The WasmPlugin object for ``image`` (pure; unit-tested)."""
    if opts.labels and opts.target_refs:
        raise WasmetoolError("--labels and --target-ref exclude each other",
                             "select workloads by labels, or attach to Gateways/Services by ref")
    spec: dict[str, Any] = {"url": image.url, "sha256": image.sha256}
    if opts.labels:
        spec["selector"] = {"matchLabels": dict(sorted(opts.labels.items()))}
    if opts.target_refs:
        spec["targetRefs"] = parse_target_refs(opts.target_refs)
    if opts.root_id:
        spec["pluginName"] = opts.root_id
    plugin_config = config_struct(opts.config)
    if plugin_config is not None:
        spec["pluginConfig"] = plugin_config
    phase = _choice(opts.phase, PHASES, "--phase")
    if phase:
        spec["phase"] = phase
    if opts.priority is not None:
        if not -(2**31) <= opts.priority < 2**31:
            raise WasmetoolError("--priority must fit in 32 bits")
        spec["priority"] = opts.priority
    strategy = _fail_strategy(opts, fail_open)
    if strategy:
        spec["failStrategy"] = strategy
    policy = _choice(opts.image_pull_policy, PULL_POLICIES, "--image-pull-policy")
    if policy:
        spec["imagePullPolicy"] = policy
    if pull_secret:
        spec["imagePullSecret"] = pull_secret
    env = parse_env(opts.env)
    if env:
        spec["vmConfig"] = {"env": [
            {"name": k, "valueFrom": "INLINE", "value": v} if v is not None
            else {"name": k, "valueFrom": "HOST"} for k, v in env]}
    match = parse_match(opts.match)
    if match:
        spec["match"] = match
    spec["type"] = _choice(opts.plugin_type, PLUGIN_TYPES, "--type")
    return {"apiVersion": KINDS["WasmPlugin"].api_version, "kind": "WasmPlugin",
            "metadata": managed_metadata(opts.deploy_id, opts.namespace, opts.deploy_id,
                                         image=str(image.ref), digest=image.digest),
            "spec": spec}


def docker_config_json(registry: str, username: str, password: str) -> bytes:
    key = "https://index.docker.io/v1/" if registry == "docker.io" else registry
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {key: {"username": username, "password": password,
                                       "auth": auth}}}, sort_keys=True).encode()


def pull_secret_object(name: str, opts: IstioOptions, image: RemoteImage) -> dict[str, Any]:
    creds = image.credentials
    if creds is None:
        raise WasmetoolError(f"--create-pull-secret: no credentials for {image.ref.registry}",
                             f"run 'wasmetool login {image.ref.registry}' first")
    data = docker_config_json(image.ref.registry, creds.username, creds.password)
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": managed_metadata(name, opts.namespace, opts.deploy_id,
                                         image=str(image.ref)),
            "data": {".dockerconfigjson": base64.b64encode(data).decode()}}


def legacy_name(deploy_id: str) -> str:
    return f"wasmetool-{deploy_id}"


def mount_path(deploy_id: str) -> str:
    return f"{MOUNT_ROOT}/{deploy_id}"


def legacy_objects(opts: IstioOptions, wasm: bytes, image_ref: str, digest: str, *,
                   fail_open: bool = False) -> list[dict[str, Any]]:
    """The ConfigMap holding the module and the EnvoyFilter loading it (pure; unit-tested)."""
    if len(wasm) + len(MODULE_KEY) > CONFIGMAP_LIMIT:
        raise WasmetoolError(
            f"the module is {len(wasm)} bytes; a ConfigMap holds at most {CONFIGMAP_LIMIT} bytes, "
            "so --legacy cannot ship it",
            "deploy it as a WasmPlugin (drop --legacy), which pulls it from the registry")
    name = legacy_name(opts.deploy_id)
    configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": managed_metadata(name, opts.namespace, opts.deploy_id,
                                              image=image_ref, digest=digest),
                 "binaryData": {MODULE_KEY: base64.b64encode(wasm).decode()}}
    network = _choice(opts.plugin_type, PLUGIN_TYPES, "--type") == "NETWORK"
    strategy = _fail_strategy(opts, fail_open)
    plugin: dict[str, Any] = {
        "name": opts.deploy_id,
        "root_id": opts.root_id or "",
        "vm_config": {
            "vm_id": opts.deploy_id,
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": f"{mount_path(opts.deploy_id)}/{MODULE_KEY}"}},
        },
    }
    configuration = config_string(opts.config)
    if configuration:
        plugin["configuration"] = {"@type": STRING_VALUE, "value": configuration}
    if strategy == "FAIL_OPEN":
        plugin["fail_open"] = True
    elif strategy == "FAIL_RELOAD":
        plugin["failure_policy"] = "FAIL_RELOAD"
    env = parse_env(opts.env)
    if env:
        variables: dict[str, Any] = {}
        inline = {k: v for k, v in env if v is not None}
        host = [k for k, v in env if v is None]
        if inline:
            variables["key_values"] = inline
        if host:
            variables["host_env_keys"] = host
        plugin["vm_config"]["environment_variables"] = variables
    context = PATCH_CONTEXTS.get(opts.patch_context.lower())
    if context is None:
        raise WasmetoolError(f"--patch-context {opts.patch_context!r} is not one of "
                             f"{', '.join(PATCH_CONTEXTS)}")
    if network:
        match_filter = {"name": "envoy.filters.network.tcp_proxy"}
        apply_to, value = "NETWORK_FILTER", {
            "name": "envoy.filters.network.wasm",
            "typed_config": {"@type": NETWORK_WASM, "config": plugin}}
    else:
        match_filter = {"name": "envoy.filters.network.http_connection_manager",
                        "subFilter": {"name": "envoy.filters.http.router"}}
        apply_to, value = "HTTP_FILTER", {
            "name": "envoy.filters.http.wasm",
            "typed_config": {"@type": HTTP_WASM, "config": plugin}}
    spec: dict[str, Any] = {"configPatches": [{
        "applyTo": apply_to,
        "match": {"context": context, "listener": {"filterChain": {"filter": match_filter}}},
        "patch": {"operation": "INSERT_BEFORE", "value": value},
    }]}
    if opts.labels:
        spec = {"workloadSelector": {"labels": dict(sorted(opts.labels.items()))}, **spec}
    envoy_filter = {"apiVersion": KINDS["EnvoyFilter"].api_version, "kind": "EnvoyFilter",
                    "metadata": managed_metadata(name, opts.namespace, opts.deploy_id,
                                                 image=image_ref, digest=digest),
                    "spec": spec}
    return [configmap, envoy_filter]


def _load_list(value: str | None, where: str) -> list[Any] | dict[str, Any]:
    if value is None or not value.strip():
        return []
    try:
        parsed = json.loads(value)
    except ValueError:
        raise WasmetoolError(f"{where} is not valid JSON",
                             "fix or remove the annotation, then deploy again") from None
    if not isinstance(parsed, list | dict):
        raise WasmetoolError(f"{where} is not a JSON list", "fix or remove the annotation")
    return parsed


def _with_entry(current: list[Any] | dict[str, Any], entry: dict[str, Any]) -> list[Any] | dict[str, Any]:
    """Add ``entry`` (keyed by name) to a userVolume(Mount) value: a JSON list, or the old map."""
    if isinstance(current, dict):
        rest = {k: v for k, v in entry.items() if k != "name"}
        return {**current, entry["name"]: rest}
    return [e for e in current if not (isinstance(e, dict) and e.get("name") == entry["name"])] + [entry]


def _without_entry(current: list[Any] | dict[str, Any], name: str) -> list[Any] | dict[str, Any]:
    if isinstance(current, dict):
        return {k: v for k, v in current.items() if k != name}
    return [e for e in current if not (isinstance(e, dict) and e.get("name") == name)]


def _dump(value: list[Any] | dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


def legacy_annotations(deploy_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    name = legacy_name(deploy_id)
    volume = {"name": name, "configMap": {"name": name}}
    mount = {"name": name, "mountPath": mount_path(deploy_id), "readOnly": True}
    return volume, mount


def annotate_patch(workload: dict[str, Any], deploy_id: str) -> dict[str, Any] | None:
    """The merge patch adding our volume and mount to a workload's pod template, with the
    previous annotation values kept in a backup annotation; None when nothing would change."""
    meta = workload.get("metadata") or {}
    where = f"{workload.get('kind', 'workload')} {meta.get('name')}"
    template_ann = ((workload.get("spec") or {}).get("template") or {}).get("metadata", {}).get(
        "annotations") or {}
    volume, mount = legacy_annotations(deploy_id)
    new_values = {}
    for key, entry in ((USER_VOLUME, volume), (USER_VOLUME_MOUNT, mount)):
        current = template_ann.get(key)
        updated = _with_entry(_load_list(current, f"the {key} annotation of {where}"), entry)
        if current is None or _load_list(current, key) != updated:
            new_values[key] = _dump(updated)
    if not new_values:
        return None
    patch: dict[str, Any] = {"spec": {"template": {"metadata": {"annotations": new_values}}}}
    backup_key = BACKUP_PREFIX + deploy_id
    annotations = meta.get("annotations") or {}
    if backup_key not in annotations:
        # The values from before any wasmetool deploy: another id's backup has them.
        other = next((v for k, v in sorted(annotations.items()) if k.startswith(BACKUP_PREFIX)), None)
        backup = {key: template_ann.get(key) for key in (USER_VOLUME, USER_VOLUME_MOUNT)}
        if other is not None:
            try:
                backup = {key: json.loads(other).get(key) for key in backup}
            except (ValueError, AttributeError):
                pass
        patch["metadata"] = {"annotations": {backup_key: json.dumps(backup, sort_keys=True)}}
    return patch


def restore_patch(workload: dict[str, Any], deploy_id: str) -> dict[str, Any] | None:
    """The merge patch undoing :func:`annotate_patch`: our entries removed; when nothing else
    was added since, the annotations are exactly what the backup holds."""
    meta = workload.get("metadata") or {}
    backup_key = BACKUP_PREFIX + deploy_id
    backup_text = (meta.get("annotations") or {}).get(backup_key)
    if backup_text is None:
        return None
    try:
        backup = json.loads(backup_text)
        if not isinstance(backup, dict):
            raise ValueError
    except ValueError:
        backup = {}
    template_ann = ((workload.get("spec") or {}).get("template") or {}).get("metadata", {}).get(
        "annotations") or {}
    name = legacy_name(deploy_id)
    values: dict[str, Any] = {}
    for key in (USER_VOLUME, USER_VOLUME_MOUNT):
        current = template_ann.get(key)
        previous = backup.get(key)
        try:
            remaining = _without_entry(_load_list(current, key), name)
            previous_parsed = _load_list(previous, key) if previous is not None else None
        except WasmetoolError:
            continue  # someone wrote something unparsable since: leave it alone
        if remaining == previous_parsed:
            new = previous  # exactly what was there before deploy
        elif not remaining:
            new = None
        else:
            new = _dump(remaining)
        if new != current:
            values[key] = new  # None deletes the annotation (merge patch)
    patch: dict[str, Any] = {"metadata": {"annotations": {backup_key: None}}}
    if values:
        patch["spec"] = {"template": {"metadata": {"annotations": values}}}
    return patch


# -------------------------------------------------------------------- Istio version


_VERSION = re.compile(r":(?:[a-z-]*)?(\d+)\.(\d+)(?:\.(\d+))?")


def istio_versions(kube: Kube, istio_namespace: str, revision: str | None) -> list[tuple[str, str]]:
    """(revision, version) of every istiod in ``istio_namespace`` (from its image tag)."""
    found = []
    for deployment in kube.list(KINDS["Deployment"], istio_namespace, "app=istiod"):
        labels = (deployment.get("metadata") or {}).get("labels") or {}
        rev = labels.get("istio.io/rev", "default")
        if revision is not None and rev != revision:
            continue
        containers = ((deployment.get("spec") or {}).get("template") or {}).get("spec", {}).get(
            "containers") or []
        for container in containers:
            image = str(container.get("image") or "")
            match = _VERSION.search(image.rsplit("/", 1)[-1])
            if match:
                found.append((rev, ".".join(g for g in match.groups() if g)))
                break
    return found


def check_istio_version(kube: Kube, opts: IstioOptions, warnings: list[str]) -> str | None:
    """Read istiod's version; a WasmPlugin needs Istio >= 1.12. Nothing else is refused."""
    try:
        versions = istio_versions(kube, opts.istio_namespace, opts.revision)
    except KubeApiError as exc:
        if exc.status == 403:
            warnings.append(f"cannot read istiod in {opts.istio_namespace} (forbidden); "
                            "not checking the Istio version")
            return None
        raise
    if not versions:
        if opts.revision is not None:
            raise WasmetoolError(
                f"no istiod with revision '{opts.revision}' in namespace {opts.istio_namespace}",
                "check --revision and --istio-namespace")
        warnings.append(f"no istiod found in namespace {opts.istio_namespace}; not checking the "
                        "Istio version (pass --istio-namespace if Istio runs elsewhere)")
        return None
    shown = ", ".join(f"{v} ({r})" if r != "default" else v for r, v in versions)
    if not opts.legacy:
        old = [(r, v) for r, v in versions
               if tuple(int(x) for x in v.split(".")[:2]) < WASMPLUGIN_MIN]
        if old:
            rev, version = old[0]
            raise WasmetoolError(
                f"Istio {version} has no WasmPlugin resource (it came in Istio 1.12)",
                "deploy with --legacy (ConfigMap + EnvoyFilter, works on older Istio), "
                "or upgrade Istio")
    return shown


# --------------------------------------------------------------------------- apply


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def apply_all(kube: Kube, objects: list[dict[str, Any]], namespace: str, *,
              server_dry_run: bool) -> list[Change]:
    """Validate every object with a server-side dry run, then apply them all.

    If a real apply fails half-way, objects this call created are deleted again.
    """
    before = {}
    for obj in objects:
        kind = KINDS[obj["kind"]]
        before[_key(obj)] = kube.get(kind, namespace, obj["metadata"]["name"])
    checked = {}
    for obj in objects:
        checked[_key(obj)] = kube.apply(obj, dry_run=True)
    changes: list[Change] = []
    if server_dry_run:
        for obj in objects:
            old = before[_key(obj)]
            new = checked[_key(obj)]
            action = "created" if old is None else (
                "unchanged" if _same(old, new) else "configured")
            changes.append(Change(obj["kind"], obj["metadata"]["name"], namespace,
                                  action + " (server dry run)"))
        return changes
    created: list[dict[str, Any]] = []
    try:
        for obj in objects:
            old = before[_key(obj)]
            new = kube.apply(obj)
            if old is None:
                created.append(obj)
                action = "created"
            elif old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
                action = "unchanged"
            else:
                action = "configured"
            changes.append(Change(obj["kind"], obj["metadata"]["name"], namespace, action))
    except WasmetoolError:
        for obj in reversed(created):
            try:
                kube.delete(KINDS[obj["kind"]], namespace, obj["metadata"]["name"])
            except WasmetoolError as exc:  # keep the original error; say what is left
                warn(f"could not remove {obj['kind']} {obj['metadata']['name']} again: {exc}")
        raise
    return changes


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    strip = ("metadata",)
    a = {k: v for k, v in old.items() if k not in strip and k != "status"}
    b = {k: v for k, v in new.items() if k not in strip and k != "status"}
    ma = {k: (old.get("metadata") or {}).get(k) for k in ("labels", "annotations")}
    mb = {k: (new.get("metadata") or {}).get(k) for k in ("labels", "annotations")}
    return a == b and ma == mb


def select_workloads(kube: Kube, opts: IstioOptions) -> list[dict[str, Any]]:
    """Workloads of --workload-kind whose pod template carries all of --labels."""
    kind_name = WORKLOAD_KINDS.get(opts.workload_kind.lower())
    if kind_name is None:
        raise WasmetoolError(f"--workload-kind {opts.workload_kind!r} is not one of "
                             f"{', '.join(WORKLOAD_KINDS)}")
    workloads = []
    for workload in kube.list(KINDS[kind_name], opts.namespace):
        workload.setdefault("kind", kind_name)
        pod_labels = ((workload.get("spec") or {}).get("template") or {}).get("metadata", {}).get(
            "labels") or {}
        if all(pod_labels.get(k) == v for k, v in opts.labels.items()):
            workloads.append(workload)
    if not workloads:
        chosen = f" with pod labels {selector_string(opts.labels)}" if opts.labels else ""
        raise WasmetoolError(
            f"no {opts.workload_kind} in namespace {opts.namespace}{chosen}",
            "check -n, -l and --workload-kind (deployment, daemonset, statefulset)")
    return workloads


def deploy_legacy_annotations(kube: Kube, opts: IstioOptions, workloads: list[dict[str, Any]], *,
                              server_dry_run: bool) -> list[Change]:
    changes = []
    patches = []
    for workload in workloads:
        patch = annotate_patch(workload, opts.deploy_id)
        name = workload["metadata"]["name"]
        kind = KINDS[workload["kind"]]
        patches.append((kind, name, patch))
    for kind, name, patch in patches:
        if patch is None:
            changes.append(Change(kind.kind, name, opts.namespace, "unchanged"))
            continue
        suffix = " (server dry run)" if server_dry_run else ""
        if not server_dry_run:
            kube.merge_patch(kind, opts.namespace, name, patch)
        changes.append(Change(kind.kind, name, opts.namespace, "annotated" + suffix))
    return changes


# ----------------------------------------------------------------------- undeploy


OWNED_KINDS = ("WasmPlugin", "EnvoyFilter", "ConfigMap", "Secret")


def undeploy_istio(kube: Kube, deploy_id: str, namespace: str, *,
                   server_dry_run: bool = False) -> list[Change]:
    """Remove exactly what deploy wrote for ``deploy_id`` and restore workload annotations."""
    kube.check_namespace(namespace)
    selector = f"{MANAGED_BY}=wasmetool,{ID_LABEL}={deploy_id}"
    suffix = " (server dry run)" if server_dry_run else ""
    changes: list[Change] = []
    restores = []
    for kind_name in WORKLOAD_KINDS.values():
        kind = KINDS[kind_name]
        for workload in kube.list(kind, namespace):
            workload.setdefault("kind", kind_name)
            patch = restore_patch(workload, deploy_id)
            if patch is not None:
                restores.append((kind, workload["metadata"]["name"], patch))
    owned = []
    for kind_name in OWNED_KINDS:
        kind = KINDS[kind_name]
        for obj in kube.list(kind, namespace, selector, missing_ok=True):
            owned.append((kind, obj["metadata"]["name"]))
    if not owned and not restores:
        raise WasmetoolError(f"nothing deployed with id '{deploy_id}' in namespace {namespace}",
                             "see 'wasmetool deploy list -A'")
    for kind, name, patch in restores:
        kube.merge_patch(kind, namespace, name, patch, dry_run=server_dry_run)
        changes.append(Change(kind.kind, name, namespace, "restored" + suffix))
    for kind, name in owned:
        if kube.delete(kind, namespace, name, dry_run=server_dry_run):
            changes.append(Change(kind.kind, name, namespace, "deleted" + suffix))
    return changes


# --------------------------------------------------------------------------- list


LISTED_KINDS = OWNED_KINDS


def list_deployed(kube: Kube, namespace: str | None) -> list[dict[str, str]]:
    """Every object wasmetool wrote (namespace None: all namespaces), plus annotated workloads."""
    rows = []
    selector = f"{MANAGED_BY}=wasmetool"
    for kind_name in LISTED_KINDS:
        kind = KINDS[kind_name]
        for obj in kube.list(kind, namespace, selector, missing_ok=True):
            meta = obj.get("metadata") or {}
            ann = meta.get("annotations") or {}
            rows.append({"namespace": meta.get("namespace", ""),
                         "id": (meta.get("labels") or {}).get(ID_LABEL, ""),
                         "kind": kind_name, "name": meta.get("name", ""),
                         "image": ann.get(IMAGE_ANNOTATION, ""),
                         "digest": ann.get(DIGEST_ANNOTATION, "")})
    for kind_name in WORKLOAD_KINDS.values():
        for obj in kube.list(KINDS[kind_name], namespace, missing_ok=True):
            meta = obj.get("metadata") or {}
            for key in meta.get("annotations") or {}:
                if key.startswith(BACKUP_PREFIX):
                    rows.append({"namespace": meta.get("namespace", ""),
                                 "id": key[len(BACKUP_PREFIX):], "kind": kind_name,
                                 "name": meta.get("name", ""), "image": "", "digest": ""})
    rows.sort(key=lambda r: (r["namespace"], r["id"], r["kind"], r["name"]))
    return rows


# ------------------------------------------------------------------------- deploy


@dataclass
class IstioPlan:
    """What deploy writes: objects to apply, plus (legacy) the workloads to annotate."""

    objects: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def _module_for_legacy(ref_text: str, transport: Any) -> tuple[bytes, str, str, list[str]]:
    """(module, image ref, manifest digest, root ids) from the store; pulled if only remote."""
    from wasmetool.oci.reference import parse_reference
    from wasmetool.store import Store

    ref = parse_reference(ref_text)
    store = Store.open()
    try:
        image = store.resolve(ref)
    except WasmetoolError:
        from wasmetool.registry.pull import pull_image

        try:
            pull_image(store, ref, transport=transport, progress=False)
        except WasmetoolError as exc:
            raise WasmetoolError(f"no image {ref.familiar} in the local store, and pulling it "
                                 f"failed: {exc.message}", exc.hint) from None
        image = store.resolve(ref)
    return (image.wasm_bytes(), str(image.ref), image.manifest_descriptor.digest,
            list(image.runtime_config.root_ids or []))


def _local_root_ids(ref_text: str) -> list[str]:
    from wasmetool.store import Store

    try:
        return list(Store.open().resolve(ref_text).runtime_config.root_ids or [])
    except WasmetoolError:
        return []


def plan_istio(opts: IstioOptions, ref_text: str, *, fail_open: bool, push: bool,
               transport: Any, kube: Kube | None) -> IstioPlan:
    """Build the objects for a deploy (checks the image; reads the pull secret if named)."""
    if opts.legacy:
        for flag, used in (("--pull-secret", opts.pull_secret),
                           ("--create-pull-secret", opts.create_pull_secret),
                           ("--target-ref", opts.target_refs), ("--phase", opts.phase),
                           ("--priority", opts.priority is not None), ("--match", opts.match),
                           ("--image-pull-policy", opts.image_pull_policy), ("--push", push)):
            if used:
                raise WasmetoolError(f"{flag} applies to the WasmPlugin path, not --legacy",
                                     "--legacy ships the module in a ConfigMap; drop one of them")
        wasm, image_ref, digest, root_ids = _module_for_legacy(ref_text, transport)
        if opts.root_id is None and root_ids:
            opts.root_id = root_ids[0]
        objects = legacy_objects(opts, wasm, image_ref, digest, fail_open=fail_open)
        volume, mount = legacy_annotations(opts.deploy_id)
        notes = [f"pod template annotations {USER_VOLUME}={_dump([volume])} and "
                 f"{USER_VOLUME_MOUNT}={_dump([mount])} (merged into existing values)"]
        return IstioPlan(objects, notes)

    from wasmetool.deploy.image import resolve_remote_image

    if opts.labels and opts.target_refs:
        raise WasmetoolError("--labels and --target-ref exclude each other",
                             "select workloads by labels, or attach to Gateways/Services by ref")
    image = resolve_remote_image(ref_text, push=push, transport=transport)
    if opts.root_id is None:
        root_ids = _local_root_ids(ref_text)
        if root_ids:
            opts.root_id = root_ids[0]
    objects: list[dict[str, Any]] = []
    secret_name = opts.pull_secret
    if opts.create_pull_secret:
        secret_name = secret_name or f"wasmetool-{opts.deploy_id}-pull"
        objects.append(pull_secret_object(secret_name, opts, image))
    elif secret_name is None and not image.anonymous_pull:
        raise WasmetoolError(
            f"{image.ref.registry} refuses anonymous pulls, so Istio's agent could not pull "
            f"{image.ref.familiar}",
            "add --create-pull-secret (stores your 'wasmetool login' credentials in a Secret) "
            "or --pull-secret NAME")
    elif secret_name is not None and kube is not None:
        secret = kube.get(KINDS["Secret"], opts.namespace, secret_name)
        if secret is None:
            raise WasmetoolError(f"Secret '{secret_name}' does not exist in namespace {opts.namespace}",
                                 "create it, or add --create-pull-secret to have wasmetool create it")
        if secret.get("type") not in ("kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg"):
            raise WasmetoolError(f"Secret '{secret_name}' is of type {secret.get('type')}, not "
                                 "kubernetes.io/dockerconfigjson",
                                 "use a docker-registry Secret, or --create-pull-secret")
    if opts.create_pull_secret and kube is not None:
        existing = kube.get(KINDS["Secret"], opts.namespace, secret_name or "")
        labels = ((existing or {}).get("metadata") or {}).get("labels") or {}
        if existing is not None and labels.get(MANAGED_BY) != "wasmetool":
            raise WasmetoolError(f"Secret '{secret_name}' exists and was not created by wasmetool",
                                 "pass --pull-secret with another name, or drop "
                                 "--create-pull-secret to use that Secret as it is")
    objects.append(wasm_plugin(opts, image, fail_open=fail_open, pull_secret=secret_name))
    return IstioPlan(objects)


def deploy_istio(opts: IstioOptions, ref_text: str, *, fail_open: bool, push: bool,
                 transport: Any, kube: Kube, server_dry_run: bool) -> DeployResult:
    """Deploy against a cluster (``server_dry_run``: everything validated, nothing stored).

    The annotation patches (legacy) are validated with a server-side dry run before
    any object is written; they are applied last.
    """
    kube.check_namespace(opts.namespace)
    result = DeployResult(opts.deploy_id, opts.namespace,
                          dry_run="server" if server_dry_run else None)
    result.istio_version = check_istio_version(kube, opts, result.warnings)
    kube.check_served(KINDS["EnvoyFilter" if opts.legacy else "WasmPlugin"], opts.namespace)
    plan = plan_istio(opts, ref_text, fail_open=fail_open, push=push, transport=transport,
                      kube=kube)
    if not opts.legacy and transport is not None and (transport.plain_http or transport.insecure):
        result.warnings.append(
            "Istio's agent pulls over verified HTTPS unless told otherwise: set "
            "WASM_INSECURE_REGISTRIES to this registry's host in the proxies' environment")
    workloads = select_workloads(kube, opts) if opts.legacy else []
    if workloads:
        # Validate the annotation patches before anything is written.
        for workload in workloads:
            patch = annotate_patch(workload, opts.deploy_id)
            if patch is not None:
                kube.merge_patch(KINDS[workload["kind"]], opts.namespace,
                                 workload["metadata"]["name"], patch, dry_run=True)
    result.changes = apply_all(kube, plan.objects, opts.namespace, server_dry_run=server_dry_run)
    if any(c.kind == "ConfigMap" and c.action == "configured" for c in result.changes) and workloads:
        names = " ".join(f"{w['kind'].lower()}/{w['metadata']['name']}" for w in workloads)
        result.warnings.append(
            "the module changed; sidecars read it when they start, so restart the workloads to "
            f"run it: kubectl rollout restart -n {opts.namespace} {names}")
    if workloads:
        try:
            result.changes += deploy_legacy_annotations(kube, opts, workloads,
                                                        server_dry_run=server_dry_run)
        except WasmetoolError:
            # A workload changed under us: take back what this run created.
            for change in result.changes:
                if change.action == "created":
                    try:
                        kube.delete(KINDS[change.kind], opts.namespace, change.name)
                    except WasmetoolError as exc:
                        warn(f"could not remove {change.kind} {change.name} again: {exc}")
            raise
    return result
