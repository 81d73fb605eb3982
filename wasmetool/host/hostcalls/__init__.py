"""Host functions the guest imports, grouped by topic (one module per family).

Each topic module registers its functions in :mod:`.registry` when imported; this package
imports them all (and the WASI set) and :func:`host_functions` lists them with the module
they are imported from, their wasm signature and the ABI versions that see them. Topic
modules reach the VM, its contexts and the host only through :mod:`wasmetool.host.state`.
"""

from __future__ import annotations

from wasmetool.host import wasi
from wasmetool.host.hostcalls import (
    buffers,
    foreign,
    grpc,
    headers,
    http_call,
    logging,
    metrics,
    properties,
    shared,
    stream,
    timers,
)
from wasmetool.host.hostcalls.registry import REGISTRY, HostFunction, hostcall

__all__ = ["HostFunction", "hostcall", "host_functions"]

TOPICS = (wasi, buffers, foreign, grpc, headers, http_call, logging, metrics, properties,
          shared, stream, timers)


def host_functions(abi_version: str) -> list[HostFunction]:
    return [f for f in REGISTRY if f.abi is None or abi_version in f.abi]
