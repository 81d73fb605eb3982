"""One description of a proxy setup (wasm plugins, upstream, clusters), rendered twice.

``envoy.py`` renders a :class:`ProxySetup` to an Envoy v3 bootstrap and
``wasmetool_run.py`` renders the same object to a wasmetool plugin file, so each
conformance case is written once and runs through both proxies unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"
RUNTIME_V8 = "envoy.wasm.runtime.v8"


@dataclass
class WasmPlugin:
    """An Envoy ``envoy.extensions.wasm.v3.PluginConfig`` with the fields the tests use."""

    name: str
    wasm: Path
    root_id: str = ""
    vm_id: str = ""
    configuration: str | None = None        # plugin configuration (buffer 7)
    vm_configuration: str | None = None     # vm configuration (buffer 6)
    env: dict[str, str] = field(default_factory=dict)
    host_env_keys: list[str] = field(default_factory=list)
    fail_open: bool = False
    failure_policy: str | None = None       # FAIL_CLOSED | FAIL_OPEN | FAIL_RELOAD

    def plugin_config(self) -> dict[str, Any]:
        """The PluginConfig as Envoy's YAML/JSON shape (also accepted by wasmetool)."""
        vm_config: dict[str, Any] = {
            "vm_id": self.vm_id,
            "runtime": RUNTIME_V8,
            "code": {"local": {"filename": str(Path(self.wasm).resolve())}},
        }
        if self.vm_configuration is not None:
            vm_config["configuration"] = {"@type": STRING_VALUE, "value": self.vm_configuration}
        if self.env or self.host_env_keys:
            env: dict[str, Any] = {}
            if self.env:
                env["key_values"] = dict(self.env)
            if self.host_env_keys:
                env["host_env_keys"] = list(self.host_env_keys)
            vm_config["environment_variables"] = env
        config: dict[str, Any] = {
            "name": self.name,
            "root_id": self.root_id,
            "vm_config": vm_config,
        }
        if self.configuration is not None:
            config["configuration"] = {"@type": STRING_VALUE, "value": self.configuration}
        if self.fail_open:
            config["fail_open"] = True
        if self.failure_policy is not None:
            config["failure_policy"] = self.failure_policy
        return config


@dataclass
class ProxySetup:
    """Everything both proxies need: filters, the upstream, named clusters."""

    upstream: str                                   # http://127.0.0.1:PORT
    http_filters: list[WasmPlugin] = field(default_factory=list)
    network_filters: list[WasmPlugin] = field(default_factory=list)
    singletons: list[WasmPlugin] = field(default_factory=list)
    clusters: dict[str, str] = field(default_factory=dict)   # name -> http://127.0.0.1:PORT
    # clusters of gRPC servers (proxy_grpc_*): HTTP/2 upstreams, name -> http://127.0.0.1:PORT
    grpc_clusters: dict[str, str] = field(default_factory=dict)
    tcp: bool = False                               # network filters + tcp_proxy instead of HTTP
    cluster_timeout_ms: int = 5000
    # Envoy's HTTP connection manager default is to generate x-request-id; the cases
    # turn it off unless they look at it
    generate_request_id: bool = False


def split_url(url: str) -> tuple[str, int]:
    """``http://127.0.0.1:8081`` (or ``127.0.0.1:8081``) -> ("127.0.0.1", 8081)."""
    rest = url.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = rest.rpartition(":")
    return host, int(port)
