"""The plugin file of `wasmetool run`, and the same structures built from CLI flags.

The file (YAML, JSON or TOML, chosen by extension) is shaped like Envoy's configuration
so that filters translate directly (docs/host_contract.md, "Plugin file"):

    upstream: http://127.0.0.1:8081
    clusters: [{name: auth, url: "http://127.0.0.1:9000", timeout_ms: 5000}]
    http_filters: [<PluginConfig> | <Envoy wasm filter with typed_config>, ...]
    network_filters: [...]
    singletons: [<PluginConfig> | <Envoy bootstrap WasmService>, ...]

Code is resolved here (local file, inline bytes/string, remote with a mandatory sha256),
so the runtime never touches the filesystem or the network. Every malformed input raises
one WasmetoolError naming the field, e.g. ``http_filters[1].vm_config.code: ...``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wasmetool.errors import WasmetoolError
from wasmetool.host.config import Cluster, FailurePolicy, PluginConfig, PluginKind, VmConfig

log = logging.getLogger(__name__)
TYPE_PREFIX = "type.googleapis.com/"
HTTP_WASM_TYPE = "envoy.extensions.filters.http.wasm.v3.Wasm"
NETWORK_WASM_TYPE = "envoy.extensions.filters.network.wasm.v3.Wasm"
WASM_SERVICE_TYPE = "envoy.extensions.wasm.v3.WasmService"
STRING_VALUE_TYPE = "google.protobuf.StringValue"
BYTES_VALUE_TYPE = "google.protobuf.BytesValue"
TYPED_STRUCT_TYPES = ("udpa.type.v1.TypedStruct", "xds.type.v3.TypedStruct")
# Envoy filters that may sit in a pasted filter list and that `run` provides itself.
PASSTHROUGH_FILTERS = {
    "envoy.extensions.filters.http.router.v3.Router",
    "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
}
PASSTHROUGH_NAMES = {"envoy.filters.http.router", "envoy.filters.network.tcp_proxy",
                     "envoy.router", "envoy.tcp_proxy"}
KNOWN_RUNTIMES = {"envoy.wasm.runtime.v8", "envoy.wasm.runtime.wasmtime",
                  "envoy.wasm.runtime.wamr", "envoy.wasm.runtime.wavm", ""}
PLUGIN_FIELDS = {"name", "root_id", "vm_config", "configuration", "fail_open",
                 "failure_policy", "capability_restriction_config"}
VM_FIELDS = {"vm_id", "runtime", "code", "configuration", "environment_variables",
             "allow_precompiled", "nack_on_code_cache_miss"}
TOP_FIELDS = {"upstream", "clusters", "http_filters", "network_filters", "singletons",
              "generate_request_id"}
SECTIONS: dict[str, PluginKind] = {"http_filters": "http", "network_filters": "network",
                                   "singletons": "singleton"}
DEFAULT_REMOTE_TIMEOUT_S = 10.0
MAX_REMOTE_BYTES = 256 * 1024 * 1024


@dataclass
class RunSetup:
    """Everything `run` needs besides the CLI's own options."""

    plugins: list[PluginConfig] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    upstream: str | None = None
    generate_request_id: bool | None = None   # None: the default (on, as Envoy)


# --------------------------------------------------------------------------- helpers


def _fail(where: str, what: str, hint: str | None = None) -> WasmetoolError:
    return WasmetoolError(f"{where}: {what}" if where else what, hint)


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(
        type(value), type(value).__name__)


def _expect_mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, f"expected a mapping, got {_type_name(value)}")
    return value


def _expect_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(where, f"expected a string, got {_type_name(value)}")
    return value


def _expect_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, f"expected true or false, got {_type_name(value)}")
    return value


def _expect_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(where, f"expected a list, got {_type_name(value)}")
    return value


def _check_fields(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in obj:
        if key not in allowed:
            raise _fail(f"{where}.{key}" if where else str(key), "unknown field",
                        f"expected one of: {', '.join(sorted(allowed))}")


def _strip_type(type_url: Any, where: str) -> str:
    text = _expect_str(type_url, f"{where}.@type")
    return text[len(TYPE_PREFIX):] if text.startswith(TYPE_PREFIX) else text.rsplit("/", 1)[-1]


def _parse_duration(value: Any, where: str) -> float:
    """Envoy/protobuf duration: "10s", "1.5s", "500ms", or a number of seconds."""
    if isinstance(value, bool):
        raise _fail(where, "expected a duration such as 10s")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", value)
        if not match:
            raise _fail(where, f"invalid duration {value!r}", "use e.g. 10s or 500ms")
        number = float(match.group(1))
        seconds = {"ms": number / 1000, "m": number * 60}.get(match.group(2) or "s", number)
    else:
        raise _fail(where, f"expected a duration such as 10s, got {_type_name(value)}")
    if seconds <= 0:
        raise _fail(where, "duration must be positive")
    return seconds


def configuration_bytes(value: Any, where: str) -> bytes:
    """A plugin or VM configuration: a string, a StringValue/BytesValue Any, or a mapping.

    A plain mapping (no ``@type``) is passed to the plugin as compact JSON, a convenience
    for JSON-configured filters (Envoy itself would need it wrapped in a StringValue).
    """
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, Mapping):
        if "@type" not in value:
            return json.dumps(value, separators=(",", ":")).encode()
        type_name = _strip_type(value["@type"], where)
        _check_fields(value, {"@type", "value"}, where)
        if type_name == STRING_VALUE_TYPE:
            return _expect_str(value.get("value", ""), f"{where}.value").encode()
        if type_name == BYTES_VALUE_TYPE:
            return _decode_base64(value.get("value", ""), f"{where}.value")
        raise _fail(f"{where}.@type", f"unsupported type {value['@type']!r}",
                    f"use {TYPE_PREFIX}{STRING_VALUE_TYPE} or {TYPE_PREFIX}{BYTES_VALUE_TYPE}")
    raise _fail(where, f"expected a string or a StringValue object, got {_type_name(value)}")


def _decode_base64(value: Any, where: str) -> bytes:
    text = _expect_str(value, where)
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _fail(where, f"not valid base64 ({exc})") from None


# --------------------------------------------------------------------------- URLs


@dataclass(frozen=True)
class HttpTarget:
    """A parsed upstream/cluster URL."""

    host: str
    port: int
    authority: str      # what goes in :authority by default
    path_prefix: str    # e.g. "" or "/base"
    tls: bool = False   # https://: TLS to the upstream, verified against the system CAs

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_http_url(url: str, where: str) -> HttpTarget:
    """Parse ``http(s)://host[:port][/prefix]`` (or bare ``host:port``) for an HTTP upstream."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise _fail(where, f"unsupported scheme in {url!r}", "use http:// or https://")
    tls = parts.scheme == "https"
    port = parts.port if _port_ok(parts, url, where) else (443 if tls else 80)
    return _target(parts.hostname, port, parts.path.rstrip("/"), url, where, tls)


def parse_tcp_address(url: str, where: str) -> HttpTarget:
    """Parse ``host:port`` or ``tcp://host:port`` for the TCP proxy's upstream."""
    text = url.strip()
    if "://" not in text:
        text = "tcp://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("tcp", "http"):
        raise _fail(where, f"unsupported scheme in {url!r}", "use host:port")
    if not _port_ok(parts, url, where) or parts.port is None:
        raise _fail(where, f"{url!r} has no port", "use host:port, e.g. 127.0.0.1:9000")
    return _target(parts.hostname, parts.port, "", url, where)


def _port_ok(parts: Any, url: str, where: str) -> bool:
    try:
        return parts.port is not None
    except ValueError:
        raise _fail(where, f"invalid port in {url!r}") from None


def _target(host: str | None, port: int, prefix: str, url: str, where: str,
            tls: bool = False) -> HttpTarget:
    if not host:
        raise _fail(where, f"no host in {url!r}", "use e.g. http://127.0.0.1:8081")
    default_port = port == (443 if tls else 80)
    authority = host if default_port else f"{host}:{port}"
    if ":" in host:  # IPv6 literal
        authority = f"[{host}]" if default_port else f"[{host}]:{port}"
    return HttpTarget(host=host, port=port, authority=authority, path_prefix=prefix, tls=tls)


# --------------------------------------------------------------------------- code


def fetch_remote(uri: str, sha256: str, timeout_s: float, where: str) -> bytes:
    """Download exactly the module the user named and check its sha256."""
    import urllib.error
    import urllib.request

    if urlsplit(uri).scheme not in ("http", "https"):
        raise _fail(f"{where}.http_uri.uri", f"unsupported URI {uri!r}", "use http:// or https://")
    try:
        with urllib.request.urlopen(uri, timeout=timeout_s) as response:  # noqa: S310
            data = response.read(MAX_REMOTE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise _fail(where, f"fetching {uri} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _fail(where, f"fetching {uri} failed: {reason}",
                    "check the URI and that the server is reachable") from None
    if len(data) > MAX_REMOTE_BYTES:
        raise _fail(where, f"{uri} is larger than {MAX_REMOTE_BYTES // (1024 * 1024)} MiB")
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise _fail(f"{where}.sha256", f"mismatch for {uri}: expected {sha256}, got {actual}",
                    "the module was not loaded; fix the sha256 or the URI")
    return data


def resolve_code(code: Any, base_dir: Path, where: str) -> tuple[bytes, str]:
    """Resolve an Envoy AsyncDataSource into (module bytes, source description)."""
    code = _expect_mapping(code, where)
    _check_fields(code, {"local", "remote"}, where)
    if ("local" in code) == ("remote" in code):
        raise _fail(where, "needs exactly one of local or remote")
    if "local" in code:
        local_where = f"{where}.local"
        local = _expect_mapping(code["local"], local_where)
        _check_fields(local, {"filename", "inline_bytes", "inline_string"}, local_where)
        if len(local) != 1:
            raise _fail(local_where, "needs exactly one of filename, inline_bytes, inline_string")
        if "filename" in local:
            name = _expect_str(local["filename"], f"{local_where}.filename")
            path = Path(os.path.expanduser(name))
            if not path.is_absolute():
                path = base_dir / path
            try:
                return path.read_bytes(), str(path)
            except FileNotFoundError:
                raise _fail(f"{local_where}.filename", f"{path} does not exist") from None
            except OSError as exc:
                raise _fail(f"{local_where}.filename",
                            f"cannot read {path}: {exc.strerror}") from None
        if "inline_bytes" in local:
            return _decode_base64(local["inline_bytes"], f"{local_where}.inline_bytes"), "<inline_bytes>"
        return _expect_str(local["inline_string"], f"{local_where}.inline_string").encode(), "<inline_string>"
    remote_where = f"{where}.remote"
    remote = _expect_mapping(code["remote"], remote_where)
    _check_fields(remote, {"http_uri", "sha256", "retry_policy"}, remote_where)
    sha = remote.get("sha256")
    if not sha:
        raise _fail(f"{remote_where}.sha256", "is required for remote code",
                    "add the module's sha256 (sha256sum filter.wasm)")
    sha = _expect_str(sha, f"{remote_where}.sha256").strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise _fail(f"{remote_where}.sha256", "must be 64 hex digits")
    http_uri = _expect_mapping(remote.get("http_uri"), f"{remote_where}.http_uri")
    _check_fields(http_uri, {"uri", "cluster", "timeout"}, f"{remote_where}.http_uri")
    if "uri" not in http_uri:
        raise _fail(f"{remote_where}.http_uri.uri", "is required")
    uri = _expect_str(http_uri["uri"], f"{remote_where}.http_uri.uri")
    timeout = (_parse_duration(http_uri["timeout"], f"{remote_where}.http_uri.timeout")
               if "timeout" in http_uri else DEFAULT_REMOTE_TIMEOUT_S)
    return fetch_remote(uri, sha, timeout, remote_where), uri


# --------------------------------------------------------------------------- plugins


def environment(value: Any, where: str) -> dict[str, str]:
    """Envoy's EnvironmentVariables: host_env_keys copied from our environment, key_values."""
    if value is None:
        return {}
    env_spec = _expect_mapping(value, where)
    _check_fields(env_spec, {"host_env_keys", "key_values"}, where)
    result: dict[str, str] = {}
    for index, key in enumerate(_expect_list(env_spec.get("host_env_keys", []),
                                             f"{where}.host_env_keys")):
        key = _expect_str(key, f"{where}.host_env_keys[{index}]")
        if key in os.environ:
            result[key] = os.environ[key]
    key_values = _expect_mapping(env_spec.get("key_values", {}), f"{where}.key_values")
    for key, val in key_values.items():
        if key in result or key in env_spec.get("host_env_keys", []):
            raise _fail(f"{where}.key_values.{key}", "is also listed in host_env_keys",
                        "every environment key must be unique")
        if isinstance(val, bool) or not isinstance(val, str | int | float):
            raise _fail(f"{where}.key_values.{key}", f"expected a string, got {_type_name(val)}")
        result[str(key)] = str(val)
    return result


def failure_policy(entry: Mapping[str, Any], where: str) -> FailurePolicy:
    policy = entry.get("failure_policy")
    fail_open = _expect_bool(entry.get("fail_open", False), f"{where}.fail_open")
    if policy is None or policy == "UNSPECIFIED":
        return "fail_open" if fail_open else "fail_closed"
    text = _expect_str(policy, f"{where}.failure_policy").upper()
    mapping: dict[str, FailurePolicy] = {"FAIL_CLOSED": "fail_closed", "FAIL_OPEN": "fail_open",
                                         "FAIL_RELOAD": "fail_reload"}
    if text not in mapping:
        raise _fail(f"{where}.failure_policy", f"unknown policy {policy!r}",
                    "use FAIL_CLOSED, FAIL_OPEN or FAIL_RELOAD")
    return mapping[text]


def _unwrap(entry: Mapping[str, Any], kind: PluginKind, where: str) -> tuple[Mapping[str, Any] | None, str]:
    """Return (PluginConfig mapping, its location) or (None, _) for a filter `run` provides."""
    if "typed_config" in entry:
        _check_fields(entry, {"name", "typed_config", "disabled", "is_optional"}, where)
        where = f"{where}.typed_config"
        typed = _expect_mapping(entry["typed_config"], where)
        type_name = _strip_type(typed.get("@type"), where)
        if type_name in TYPED_STRUCT_TYPES:
            inner_type = _expect_str(typed.get("type_url"), f"{where}.type_url")
            typed = dict(_expect_mapping(typed.get("value", {}), f"{where}.value"))
            typed["@type"] = inner_type
            type_name = _strip_type(inner_type, where)
            where = f"{where}.value"
        if type_name in PASSTHROUGH_FILTERS:
            return None, where
        expected = {"http": HTTP_WASM_TYPE, "network": NETWORK_WASM_TYPE,
                    "singleton": WASM_SERVICE_TYPE}[kind]
        if type_name != expected:
            raise _fail(f"{where}.@type", f"unsupported filter type {typed.get('@type')!r}",
                        f"a {kind} entry must be {TYPE_PREFIX}{expected}")
        entry = typed
    elif entry.get("name") in PASSTHROUGH_NAMES and "vm_config" not in entry:
        return None, where
    if "config" in entry:
        allowed = {"@type", "config", "singleton"} if kind == "singleton" else {"@type", "config"}
        _check_fields(entry, allowed, where)
        if "singleton" in entry:
            _expect_bool(entry["singleton"], f"{where}.singleton")
        return _expect_mapping(entry["config"], f"{where}.config"), f"{where}.config"
    return entry, where


def parse_plugin(entry: Any, kind: PluginKind, base_dir: Path, where: str) -> PluginConfig | None:
    """One entry of http_filters/network_filters/singletons → PluginConfig (None: router)."""
    config, where = _unwrap(_expect_mapping(entry, where), kind, where)
    if config is None:
        return None
    _check_fields(config, PLUGIN_FIELDS, where)
    if "capability_restriction_config" in config:
        log.warning("%s.capability_restriction_config is not enforced by wasmetool run; "
                    "the plugin may call every host function", where)
    if "vm_config" not in config:
        raise _fail(f"{where}.vm_config", "is required", "add vm_config.code with the module")
    vm_where = f"{where}.vm_config"
    vm = _expect_mapping(config["vm_config"], vm_where)
    _check_fields(vm, VM_FIELDS, vm_where)
    if "code" not in vm:
        raise _fail(f"{vm_where}.code", "is required",
                    "e.g. code: {local: {filename: ./filter.wasm}}")
    runtime = _expect_str(vm.get("runtime", "envoy.wasm.runtime.v8"), f"{vm_where}.runtime")
    if runtime == "envoy.wasm.runtime.null":
        raise _fail(f"{vm_where}.runtime", "the null runtime only runs plugins compiled into Envoy",
                    "use envoy.wasm.runtime.v8 (wasmetool runs every module on wasmtime)")
    if runtime not in KNOWN_RUNTIMES:
        raise _fail(f"{vm_where}.runtime", f"unknown runtime {runtime!r}",
                    "use envoy.wasm.runtime.v8")
    code, source = resolve_code(vm["code"], base_dir, f"{vm_where}.code")
    vm_config = VmConfig(
        code=code,
        code_source=source,
        vm_id=_expect_str(vm.get("vm_id", ""), f"{vm_where}.vm_id"),
        runtime=runtime,
        configuration=configuration_bytes(vm.get("configuration"), f"{vm_where}.configuration"),
        environment=environment(vm.get("environment_variables"),
                                f"{vm_where}.environment_variables"),
        allow_precompiled=_expect_bool(vm.get("allow_precompiled", False),
                                       f"{vm_where}.allow_precompiled"),
    )
    return PluginConfig(
        name=_expect_str(config.get("name", ""), f"{where}.name"),
        vm=vm_config,
        root_id=_expect_str(config.get("root_id", ""), f"{where}.root_id"),
        configuration=configuration_bytes(config.get("configuration"), f"{where}.configuration"),
        failure_policy=failure_policy(config, where),
        kind=kind,
    )


def _name_unnamed(plugins: list[PluginConfig]) -> None:
    """Envoy allows plugins without a name; the host needs one per plugin for its logs and
    metrics. An unnamed plugin is named after its module file (or "plugin"), made unique."""
    taken = {p.name for p in plugins if p.name}
    for plugin in plugins:
        if plugin.name:
            continue
        source = plugin.vm.code_source
        base = Path(source).stem if not source.startswith(("<", "http:", "https:")) else ""
        base = base or "plugin"
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}#{n}"
        plugin.name = name
        taken.add(name)


def parse_cluster(entry: Any, where: str) -> Cluster:
    cluster = _expect_mapping(entry, where)
    _check_fields(cluster, {"name", "url", "timeout_ms"}, where)
    for required in ("name", "url"):
        if required not in cluster:
            raise _fail(f"{where}.{required}", "is required")
    name = _expect_str(cluster["name"], f"{where}.name")
    if not name:
        raise _fail(f"{where}.name", "must not be empty")
    url = _expect_str(cluster["url"], f"{where}.url")
    parse_http_url(url, f"{where}.url")
    timeout = cluster.get("timeout_ms", 5000)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
        raise _fail(f"{where}.timeout_ms", "expected a positive integer (milliseconds)")
    return Cluster(name=name, url=url, timeout_ms=timeout)


def parse_document(doc: Any, base_dir: Path) -> RunSetup:
    """A loaded plugin document (dict) → RunSetup."""
    if doc is None:
        doc = {}
    doc = _expect_mapping(doc, "plugin file")
    _check_fields(doc, TOP_FIELDS, "")
    setup = RunSetup()
    if doc.get("upstream") is not None:
        setup.upstream = _expect_str(doc["upstream"], "upstream")
    if doc.get("generate_request_id") is not None:
        setup.generate_request_id = _expect_bool(doc["generate_request_id"],
                                                 "generate_request_id")
    names: set[str] = set()
    for index, entry in enumerate(_expect_list(doc.get("clusters", []) or [], "clusters")):
        cluster = parse_cluster(entry, f"clusters[{index}]")
        if cluster.name in names:
            raise _fail(f"clusters[{index}].name", f"duplicate cluster {cluster.name!r}")
        names.add(cluster.name)
        setup.clusters.append(cluster)
    for section, kind in SECTIONS.items():
        for index, entry in enumerate(_expect_list(doc.get(section, []) or [], section)):
            plugin = parse_plugin(entry, kind, base_dir, f"{section}[{index}]")
            if plugin is not None:
                setup.plugins.append(plugin)
    _name_unnamed(setup.plugins)
    if not setup.plugins:
        raise WasmetoolError("plugin file has no wasm plugins",
                             "add an entry under http_filters, network_filters or singletons")
    return setup


def load_document(path: Path) -> Any:
    """Read YAML, JSON or TOML by extension."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WasmetoolError(f"plugin file {path} does not exist") from None
    except OSError as exc:
        raise WasmetoolError(f"cannot read plugin file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise WasmetoolError(f"plugin file {path} is not UTF-8 text",
                             "give a YAML, JSON or TOML file") from None
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise WasmetoolError(f"{path}: invalid YAML{at}: {problem}") from None
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise WasmetoolError(f"{path}: invalid JSON at line {exc.lineno}, "
                                 f"column {exc.colno}: {exc.msg}") from None
    if suffix == ".toml":
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise WasmetoolError(f"{path}: invalid TOML: {exc}") from None
    raise WasmetoolError(f"plugin file {path} has an unknown extension",
                         "name it .yaml, .yml, .json or .toml")


def load_plugin_file(path: str | Path) -> RunSetup:
    path = Path(path)
    try:
        return parse_document(load_document(path), path.resolve().parent)
    except WasmetoolError as exc:
        if exc.message.startswith(str(path)) or exc.message.startswith("plugin file"):
            raise
        raise WasmetoolError(f"{path}: {exc.message}", exc.hint) from None


# --------------------------------------------------------------------------- CLI flags


def read_flag_value(value: str | None, flag: str) -> bytes:
    """A --config/--vm-config value: the string itself, or @file for a file's contents."""
    if value is None:
        return b""
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            return path.read_bytes()
        except OSError as exc:
            raise WasmetoolError(f"{flag} {value}: cannot read {path}: {exc.strerror}") from None
    return value.encode()


def parse_env_flags(values: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise WasmetoolError(f"--env {value!r}: expected KEY=VALUE")
        env[key] = val
    return env


def parse_cluster_flag(value: str) -> Cluster:
    name, sep, url = value.partition("=")
    if not sep or not name or not url:
        raise WasmetoolError(f"--cluster {value!r}: expected NAME=URL",
                             "e.g. --cluster auth=http://127.0.0.1:9000")
    parse_http_url(url, f"--cluster {name}")
    return Cluster(name=name, url=url)


def plugin_from_flags(
    code: bytes,
    code_source: str,
    *,
    name: str,
    root_id: str = "",
    configuration: bytes = b"",
    vm_configuration: bytes = b"",
    env: Mapping[str, str] | None = None,
    policy: FailurePolicy = "fail_closed",
    kind: PluginKind = "http",
) -> PluginConfig:
    return PluginConfig(
        name=name,
        vm=VmConfig(code=code, code_source=code_source, vm_id="",
                    configuration=vm_configuration, environment=dict(env or {})),
        root_id=root_id,
        configuration=configuration,
        failure_policy=policy,
        kind=kind,
    )
