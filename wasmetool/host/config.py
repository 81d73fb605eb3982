"""Plugin and VM configuration, shaped like Envoy's envoy.extensions.wasm.v3.PluginConfig.

These dataclasses are the contract between the parts of the host: the file/CLI
parser (plugin_file.py) produces them, the runtime (runtime.py) consumes them.
Module bytes are already resolved here (code.local / code.remote are loaded and
checked by the parser), so the runtime never touches the filesystem or network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FailurePolicy = Literal["fail_closed", "fail_open", "fail_reload"]
PluginKind = Literal["http", "network", "singleton"]


@dataclass
class VmConfig:
    code: bytes                      # the wasm module, already loaded
    code_source: str = "<inline>"    # where it came from, for messages
    vm_id: str = ""                  # plugins with the same vm_id (and code) share one VM
    runtime: str = "envoy.wasm.runtime.v8"
    configuration: bytes = b""       # buffer type 6, read in proxy_on_vm_start
    environment: dict[str, str] = field(default_factory=dict)  # WASI environ
    allow_precompiled: bool = False


@dataclass
class PluginConfig:
    name: str
    vm: VmConfig
    root_id: str = ""
    configuration: bytes = b""       # buffer type 7, read in proxy_on_configure
    failure_policy: FailurePolicy = "fail_closed"
    kind: PluginKind = "http"


@dataclass
class Limits:
    call_timeout_ms: int = 300                 # each call into the guest
    memory_limit_bytes: int = 256 * 1024 * 1024  # linear memory cap per VM
    buffer_limit_bytes: int = 1024 * 1024      # body a filter may buffer (Envoy's default
                                               # per-connection buffer limit): 413 / 500


@dataclass
class Cluster:
    """A named upstream for proxy_http_call (and the proxy's own upstream)."""

    name: str
    url: str                                   # e.g. http://127.0.0.1:8081
    timeout_ms: int = 5000
