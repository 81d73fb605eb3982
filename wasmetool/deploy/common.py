"""What every deploy target shares: ids, labels, plugin configuration, manifest rendering."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import yaml

from wasmetool.deploy.kube import DIGEST_ANNOTATION, ID_LABEL, IMAGE_ANNOTATION, MANAGED_BY
from wasmetool.errors import WasmetoolError

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
REDACTED = "<redacted: pass --show-secrets to print>"


def check_id(value: str) -> str:
    """--id is the name of the objects deploy writes: a DNS-1123 label, at most 50 characters
    (room for the 'wasmetool-' prefix of the legacy objects)."""
    if not value:
        raise WasmetoolError("--id is required", "e.g. --id add-header")
    if len(value) > 50 or not _DNS_LABEL.match(value):
        raise WasmetoolError(
            f"--id {value!r} is not a valid name",
            "use at most 50 lowercase letters, digits and '-', starting and ending alphanumeric")
    return value


def parse_labels(values: list[str], flag: str = "--labels") -> dict[str, str]:
    """-l app=x -l tier=web, or -l app=x,tier=web."""
    labels: dict[str, str] = {}
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, val = part.partition("=")
            key, val = key.strip(), val.strip()
            if not sep or not _LABEL_KEY.match(key) or len(val) > 63 or not _LABEL_VALUE.match(val):
                raise WasmetoolError(f"{flag} {part!r}: expected KEY=VALUE with a valid label",
                                     "e.g. -l app=reviews")
            labels[key] = val
    return labels


def selector_string(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def read_config(value: str | None, flag: str = "--config") -> tuple[str | None, Any]:
    """--config as given (the string, or @file's contents) and parsed as JSON/YAML (None if not)."""
    if value is None:
        return None, None
    from wasmetool.host.plugin_file import read_flag_value

    raw = read_flag_value(value, flag)
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise WasmetoolError(f"{flag}: the configuration is not UTF-8 text") from None
    try:
        parsed = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        parsed = None
    return text, parsed


def config_struct(value: str | None, flag: str = "--config") -> dict[str, Any] | None:
    """--config for fields that are a protobuf Struct (WasmPlugin pluginConfig)."""
    text, parsed = read_config(value, flag)
    if text is None:
        return None
    if not isinstance(parsed, dict):
        raise WasmetoolError(f"{flag} must be a JSON or YAML object for this target",
                             "e.g. --config '{\"header\": \"x-hello\"}'")
    return json.loads(json.dumps(parsed, default=str))


def config_string(value: str | None, flag: str = "--config") -> str:
    """--config for fields that are a string handed to the plugin as is (Envoy's configuration).

    A JSON/YAML object is passed as compact JSON (what filters usually parse); anything
    else is passed exactly as given.
    """
    text, parsed = read_config(value, flag)
    if text is None:
        return ""
    if isinstance(parsed, dict | list):
        return json.dumps(parsed, separators=(",", ":"), default=str)
    return text


def managed_metadata(name: str, namespace: str | None, deploy_id: str, *,
                     image: str | None = None, digest: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name,
                            "labels": {MANAGED_BY: "wasmetool", ID_LABEL: deploy_id}}
    if namespace is not None:
        meta["namespace"] = namespace
    annotations = {}
    if image:
        annotations[IMAGE_ANNOTATION] = image
    if digest:
        annotations[DIGEST_ANNOTATION] = digest
    if annotations:
        meta["annotations"] = annotations
    return meta


def redact(objects: list[dict[str, Any]], show_secrets: bool) -> list[dict[str, Any]]:
    if show_secrets:
        return objects
    out = []
    for obj in objects:
        if obj.get("kind") == "Secret":
            obj = {**obj, "data": {k: REDACTED for k in (obj.get("data") or {})}}
        out.append(obj)
    return out


def render(objects: list[dict[str, Any]], output: str) -> str:
    """Manifests as a YAML stream (---) or a JSON List, for --dry-run."""
    if output == "json":
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2) + "\n"
    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
