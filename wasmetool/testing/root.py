"""The common emulator base, and RootEmulator for singleton plugins (no traffic)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wasmetool.host import abi
from wasmetool.host.config import Limits, PluginConfig, VmConfig
from wasmetool.host.dispatch import HttpCallHandler, HttpCallResponse, ManualDispatcher
from wasmetool.host.log import LogRecord
from wasmetool.host.runtime import Host

HeaderInput = Mapping[str, str] | Mapping[bytes, bytes] | Sequence[tuple[Any, Any]]


def _b(v: Any) -> bytes:
    return v if isinstance(v, bytes) else str(v).encode()


def to_headers(h: HeaderInput | None) -> list[tuple[bytes, bytes]]:
    if h is None:
        return []
    items = h.items() if isinstance(h, Mapping) else h
    return [(_b(k).lower(), _b(v)) for k, v in items]


class Headers(list):  # type: ignore[type-arg]
    """A header list with ``h["name"]`` (first value, as str) and ``"name" in h``."""

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        key = name.lower().encode()
        for k, v in self:
            if k == key:
                return v.decode("utf-8", "replace")
        return default

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, str):
            v = self.get(item)
            if v is None:
                raise KeyError(item)
            return v
        return super().__getitem__(item)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return self.get(item) is not None
        return super().__contains__(item)

    def all(self, name: str) -> list[str]:
        key = name.lower().encode()
        return [v.decode("utf-8", "replace") for k, v in self if k == key]


class HostEmulator:
    """Runs plugins on a real :class:`Host` with a :class:`ManualDispatcher`."""

    kind = "http"

    def __init__(self, wasm: bytes | None = None, *, configuration: bytes | str = b"",
                 vm_configuration: bytes | str = b"", root_id: str = "", vm_id: str = "",
                 environment: dict[str, str] | None = None,
                 failure_policy: str = "fail_closed", name: str = "plugin",
                 plugins: list[PluginConfig] | None = None, limits: Limits | None = None,
                 clusters: Sequence[str] = (), http_handler: HttpCallHandler | None = None,
                 log_level: int = abi.TRACE, start: bool = True) -> None:
        if plugins is None:
            if wasm is None:
                raise ValueError("give the module bytes or a list of PluginConfig")
            plugins = [PluginConfig(
                name=name, root_id=root_id, kind=self.kind,  # type: ignore[arg-type]
                configuration=_b(configuration),
                failure_policy=failure_policy,  # type: ignore[arg-type]
                vm=VmConfig(code=wasm, vm_id=vm_id, configuration=_b(vm_configuration),
                            environment=dict(environment or {})))]
        self.logs: list[LogRecord] = []
        self.dispatcher = ManualDispatcher(clusters=list(clusters), http_handler=http_handler)
        self.host = Host(plugins, self.dispatcher, limits=limits or Limits(),
                         log_sink=self.logs.append, log_level=log_level)
        if start:
            self.start()

    def start(self) -> None:
        self.host.start()
        self.dispatcher.run_pending()

    def close(self) -> None:
        self.host.shutdown()

    def __enter__(self) -> HostEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # observations ----------------------------------------------------------------
    def log_messages(self, level: int | None = None) -> list[str]:
        return [r.message for r in self.logs if level is None or r.level == level]

    def metric(self, name: str) -> int | None:
        return self.host.metrics.value(name)

    def prometheus(self) -> str:
        return self.host.prometheus_text()

    def shared_data(self, key: bytes | str, vm_id: str = "") -> bytes | None:
        entry = self.host.shared_data.get(vm_id, _b(key))
        return entry[0] if entry is not None else None

    def queue_items(self, name: bytes | str, vm_id: str = "") -> list[bytes]:
        token = self.host.queues.resolve(vm_id, _b(name))
        q = self.host.queues.get(token) if token is not None else None
        return list(q.items) if q is not None else []

    def enqueue(self, name: bytes | str, data: bytes | str, vm_id: str = "") -> int:
        token = self.host.queues.resolve(vm_id, _b(name))
        if token is None:
            return abi.NOT_FOUND
        status = self.host.queues.enqueue(token, _b(data))
        self.dispatcher.run_pending()
        return status

    # time and callouts -----------------------------------------------------------
    def advance(self, seconds: float) -> int:
        """Move the manual clock; due ticks fire. Returns how many timers fired."""
        return self.dispatcher.advance(seconds)

    def run_pending(self) -> int:
        return self.dispatcher.run_pending()

    def pending_http_calls(self) -> list[Any]:
        return self.dispatcher.pending_http_calls()

    def answer_http_call(self, status: int = 200, headers: HeaderInput | None = None,
                         body: bytes | str = b"", trailers: HeaderInput | None = None,
                         fail: bool = False, index: int = 0) -> None:
        """Answer the index-th pending http call (fail=True: the call failed/reset)."""
        call = self.pending_http_calls()[index]
        if fail:
            call.respond(None)
        else:
            call.respond(HttpCallResponse([(b":status", str(status).encode())] + to_headers(headers),
                                          _b(body), to_headers(trailers)))
        self.dispatcher.run_pending()


class RootEmulator(HostEmulator):
    """Singleton plugins (bootstrap extensions): root context only, ticks and queues."""

    kind = "singleton"
