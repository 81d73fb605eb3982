"""`deploy gloo` / `undeploy gloo`: a wasm filter entry in Gloo Edge Gateway resources.

Gloo Edge (gateway.solo.io/v1 ``Gateway``) runs wasm filters listed under
``spec.httpGateway.options.wasm.filters[]`` (``name``, ``image``, ``config``,
``rootId``, ``vmType``); Gloo pulls the image itself, so the image must be in
its registry in a pullable format (the same check as for Istio).  Only the entry
named ``--id`` is added, replaced or removed; the gateway records what wasmetool
added in an annotation (``wasmetool.io/gloo.ID``) so `deploy list` and
`undeploy gloo` find it.  Each change is a JSON merge patch carrying the
gateway's resourceVersion, so a concurrent edit is a conflict, never lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from wasmetool.deploy.common import config_string, selector_string, warn
from wasmetool.deploy.image import RemoteImage
from wasmetool.deploy.istio import Change
from wasmetool.deploy.kube import KINDS, Kube
from wasmetool.errors import WasmetoolError

ANNOTATION_PREFIX = "wasmetool.io/gloo."
STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"


@dataclass
class GlooOptions:
    deploy_id: str
    namespaces: list[str] = field(default_factory=lambda: ["gloo-system"])
    labels: dict[str, str] = field(default_factory=dict)
    config: str | None = None
    root_id: str | None = None


def filter_entry(opts: GlooOptions, image: RemoteImage) -> dict[str, Any]:
    """The ``wasm.filters[]`` entry (pure; unit-tested)."""
    entry: dict[str, Any] = {"name": opts.deploy_id, "image": str(image.ref), "vmType": "V8"}
    if opts.root_id:
        entry["rootId"] = opts.root_id
    configuration = config_string(opts.config)
    if configuration:
        entry["config"] = {"@type": STRING_VALUE, "value": configuration}
    return entry


def _filters(gateway: dict[str, Any]) -> list[dict[str, Any]] | None:
    http = (gateway.get("spec") or {}).get("httpGateway")
    if http is None:
        return None
    wasm = ((http.get("options") or {}).get("wasm") or {})
    return list(wasm.get("filters") or [])


def _patch(gateway: dict[str, Any], filters: list[dict[str, Any]],
           annotation: tuple[str, str | None]) -> dict[str, Any]:
    meta = gateway["metadata"]
    return {"metadata": {"resourceVersion": meta.get("resourceVersion"),
                         "annotations": {annotation[0]: annotation[1]}},
            "spec": {"httpGateway": {"options": {"wasm": {"filters": filters} if filters else None}}}}


def select_gateways(kube: Kube, opts: GlooOptions) -> list[dict[str, Any]]:
    selector = selector_string(opts.labels) or None
    gateways = []
    for namespace in opts.namespaces:
        kube.check_namespace(namespace)
        gateways += kube.list(KINDS["Gateway"], namespace, selector)
    http = [g for g in gateways if _filters(g) is not None]
    if not http:
        chosen = f" labelled {selector}" if selector else ""
        what = "no Gateway" if not gateways else "no HTTP Gateway (httpGateway)"
        raise WasmetoolError(f"{what}{chosen} in namespace(s) {', '.join(opts.namespaces)}",
                             "check -n and -l; Gloo Edge's default gateways are in gloo-system")
    return http


def deploy_gloo(kube: Kube, opts: GlooOptions, image: RemoteImage, *,
                server_dry_run: bool = False) -> list[Change]:
    entry = filter_entry(opts, image)
    record = json.dumps({"image": str(image.ref), "digest": image.digest}, sort_keys=True)
    key = ANNOTATION_PREFIX + opts.deploy_id
    plans = []
    for gateway in select_gateways(kube, opts):
        filters = _filters(gateway) or []
        names = [f.get("name") for f in filters]
        if opts.deploy_id in names:
            new = [entry if f.get("name") == opts.deploy_id else f for f in filters]
        else:
            new = [*filters, entry]
        annotations = gateway["metadata"].get("annotations") or {}
        if new == filters and annotations.get(key) == record:
            plans.append((gateway, None))
            continue
        plans.append((gateway, _patch(gateway, new, (key, record))))
    for gateway, patch in plans:  # validate all before changing any
        if patch is not None:
            meta = gateway["metadata"]
            kube.merge_patch(KINDS["Gateway"], meta["namespace"], meta["name"], patch, dry_run=True)
    changes = []
    suffix = " (server dry run)" if server_dry_run else ""
    done: list[dict[str, Any]] = []
    try:
        for gateway, patch in plans:
            meta = gateway["metadata"]
            if patch is None:
                changes.append(Change("Gateway", meta["name"], meta["namespace"], "unchanged"))
                continue
            if not server_dry_run:
                kube.merge_patch(KINDS["Gateway"], meta["namespace"], meta["name"], patch)
                done.append(gateway)
            changes.append(Change("Gateway", meta["name"], meta["namespace"], "configured" + suffix))
    except WasmetoolError:
        # A gateway changed under us (conflict): put back the ones already changed.
        for gateway in done:
            meta = gateway["metadata"]
            previous = (meta.get("annotations") or {}).get(key)
            undo = _patch(gateway, _filters(gateway) or [], (key, previous))
            del undo["metadata"]["resourceVersion"]
            try:
                kube.merge_patch(KINDS["Gateway"], meta["namespace"], meta["name"], undo)
            except WasmetoolError as exc:
                warn(f"could not restore Gateway {meta['name']}: {exc}")
        raise
    return changes


def undeploy_gloo(kube: Kube, deploy_id: str, namespaces: list[str], *,
                  server_dry_run: bool = False) -> list[Change]:
    key = ANNOTATION_PREFIX + deploy_id
    touched = []
    for namespace in namespaces:
        kube.check_namespace(namespace)
        for gateway in kube.list(KINDS["Gateway"], namespace):
            filters = _filters(gateway) or []
            if key in (gateway["metadata"].get("annotations") or {}):
                new = [f for f in filters if f.get("name") != deploy_id]
                touched.append((gateway, _patch(gateway, new, (key, None))))
    if not touched:
        raise WasmetoolError(f"no Gloo Gateway in {', '.join(namespaces)} has filter '{deploy_id}' "
                             "from wasmetool", "see 'wasmetool deploy list -A'")
    changes = []
    suffix = " (server dry run)" if server_dry_run else ""
    for gateway, patch in touched:
        meta = gateway["metadata"]
        kube.merge_patch(KINDS["Gateway"], meta["namespace"], meta["name"], patch,
                         dry_run=server_dry_run)
        changes.append(Change("Gateway", meta["name"], meta["namespace"], "configured" + suffix))
    return changes


def list_gloo(kube: Kube, namespace: str | None) -> list[dict[str, str]]:
    rows = []
    for gateway in kube.list(KINDS["Gateway"], namespace, missing_ok=True):
        meta = gateway.get("metadata") or {}
        for key, value in (meta.get("annotations") or {}).items():
            if not key.startswith(ANNOTATION_PREFIX):
                continue
            try:
                record = json.loads(value)
            except ValueError:
                record = {}
            rows.append({"namespace": meta.get("namespace", ""), "id": key[len(ANNOTATION_PREFIX):],
                         "kind": "Gateway", "name": meta.get("name", ""),
                         "image": str(record.get("image", "")), "digest": str(record.get("digest", ""))})
    return rows
