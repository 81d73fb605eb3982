"""Test any proxy-wasm filter without Envoy: in-process, no sockets, a virtual clock.

Split like proxy-wasm-go-sdk's proxytest, but for a .wasm from any language:
:mod:`.http` (HTTP filters), :mod:`.network` (TCP filters), :mod:`.root` (the common
base, singletons, ticks, queues, shared data), :mod:`.clock` (virtual time and http
calls), :mod:`.trace` (decoded callbacks and host calls, strict mode).

    from wasmetool.testing import HttpEmulator
    emu = HttpEmulator.load("filter.wasm", configuration="value")
    ex = emu.request({":path": "/", ":method": "GET", ":authority": "x"})
    assert ex.headers["hello"] == "value"

Guide: docs/testing.md. The pytest plugin is :mod:`wasmetool.testing.pytest_plugin`,
the YAML runner behind ``wasmetool test`` is :mod:`wasmetool.testing.cases`.
"""

from wasmetool.host.stream_info import StreamInfo
from wasmetool.testing.clock import GrpcCall, HttpCall, VirtualDispatcher
from wasmetool.testing.http import Exchange, HttpEmulator
from wasmetool.testing.network import TcpEmulator, TcpSession
from wasmetool.testing.root import Body, Headers, HostEmulator, RootEmulator, read_module
from wasmetool.testing.trace import StrictModeError, TraceEvent, Tracer


def load_filter(source: str, kind: str = "http", **options: object) -> HostEmulator:
    """Load a filter from a .wasm file or a local store ref into an emulator:
    ``kind`` is ``http`` (HttpEmulator), ``network`` (TcpEmulator) or ``singleton``
    (RootEmulator); options are the emulator's (configuration, root_id, vm_id,
    vm_configuration, environment, fail_open, clusters, strict, trace...)."""
    classes = {"http": HttpEmulator, "network": TcpEmulator, "tcp": TcpEmulator,
               "singleton": RootEmulator}
    if kind not in classes:
        raise ValueError(f"kind is one of {', '.join(classes)}")
    return classes[kind].load(source, **options)  # type: ignore[no-any-return]


__all__ = ["Body", "Exchange", "GrpcCall", "Headers", "HostEmulator", "HttpCall", "HttpEmulator", "RootEmulator",
           "StreamInfo", "StrictModeError", "TcpEmulator", "TcpSession", "TraceEvent", "Tracer",
           "VirtualDispatcher", "load_filter", "read_module"]
