"""The common emulator base, filter loading, and RootEmulator for singletons (no traffic)."""

from __future__ import annotations

import itertools
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from wasmetool.errors import WasmetoolError
from wasmetool.host import abi
from wasmetool.host.config import Limits, PluginConfig, VmConfig
from wasmetool.host.log import LogRecord
from wasmetool.host.runtime import Host
from wasmetool.testing.clock import (
    WALL_START_NS,
    GrpcCall,
    HttpCall,
    VirtualDispatcher,
    VirtualTime,
)
from wasmetool.testing.trace import StrictModeError, TraceEvent, Tracer

# emulators made lately, for the pytest plugin's trace tail on a failing test
_serials = itertools.count(1)
RECENT: deque[tuple[int, weakref.ref[Any]]] = deque(maxlen=16)


def last_serial() -> int:
    return RECENT[-1][0] if RECENT else 0


HeaderInput = Mapping[str, str] | Mapping[bytes, bytes] | Sequence[tuple[Any, Any]]


def _b(v: Any) -> bytes:
    return v if isinstance(v, bytes) else str(v).encode()


def to_headers(h: HeaderInput | None) -> list[tuple[bytes, bytes]]:
    """Header input (a mapping or pairs, str or bytes) as the host's lower-case byte pairs."""
    if h is None:
        return []
    items = h.items() if isinstance(h, Mapping) else h
    try:      # str -> str, the usual input: one pass (bytes have no .encode)
        return [(k.lower().encode(), v.encode()) for k, v in items]
    except AttributeError:
        return [(_b(k).lower(), _b(v)) for k, v in items]


def level_number(level: int | str) -> int:
    if isinstance(level, int):
        return level
    name = level.lower()
    if name == "warning":
        name = "warn"
    if name not in abi.LEVEL_NAMES:
        raise ValueError(f"unknown log level {level!r} (one of {', '.join(abi.LEVEL_NAMES)})")
    return abi.LEVEL_NAMES.index(name)


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

    def as_dict(self) -> dict[str, str]:
        """Name -> value (repeated names joined with ``,``, as a proxy would fold them)."""
        out: dict[str, str] = {}
        for k, v in self:
            name, value = k.decode("utf-8", "replace"), v.decode("utf-8", "replace")
            out[name] = f"{out[name]},{value}" if name in out else value
        return out


class Body(bytes):
    """A body the filters produced: bytes (compare with ``==``), and ``.text``. The pytest
    plugin shows a line diff when a comparison with one fails."""

    @property
    def text(self) -> str:
        return self.decode("utf-8", "replace")


def property_state(properties: Mapping[str, bytes | str] | None) -> dict[bytes, bytes] | None:
    """``{"my.key": value}`` as a stream's filter state (what proxy_set_property writes)."""
    if not properties:
        return None
    return {b"wasm." + b"\0".join(p.encode() for p in path.split(".")): _b(value)
            for path, value in properties.items()}


def read_module(source: str | Path) -> tuple[bytes, str, list[str]]:
    """A filter from a .wasm file (an existing path wins) or a local store ref:
    (module bytes, where it came from, the root ids its runtime config names)."""
    path = Path(source).expanduser()
    if path.is_file():
        try:
            return path.read_bytes(), str(path), []
        except OSError as exc:
            raise WasmetoolError(f"cannot read {path}: {exc.strerror}") from None
    text = str(source)
    if path.suffix == ".wasm" or path.exists() or text.startswith((".", "/")):
        raise WasmetoolError(f"{source} is not a file" if path.exists()
                             else f"{source} does not exist",
                             "give a .wasm file or a ref from 'wasmetool list'")
    from wasmetool.store import Store

    image = Store.open().resolve(text)
    return image.wasm_bytes(), str(image.ref), list(image.runtime_config.root_ids or [])


class HostEmulator:
    """Runs plugins on a real :class:`~wasmetool.host.runtime.Host` with a virtual clock.

    Give the module's bytes (or :meth:`load` a file or store ref) and the plugin's
    settings, or a list of ``PluginConfig`` for a chain. ``trace`` keeps a decoded trace
    of every callback and host call (:attr:`tracer`; the last ``trace_limit`` events, None
    for all); ``strict`` makes a failing host
    call, a host call not in ``allowed_calls`` (when given) or a trap fail the test
    (:class:`StrictModeError`, with the call decoded).
    """

    kind = "http"

    def __init__(self, wasm: bytes | None = None, *, configuration: bytes | str = b"",
                 vm_configuration: bytes | str = b"", root_id: str = "", vm_id: str = "",
                 environment: dict[str, str] | None = None,
                 failure_policy: str = "fail_closed", fail_open: bool = False,
                 name: str = "plugin", plugins: list[PluginConfig] | None = None,
                 limits: Limits | None = None, clusters: Sequence[str] = (),
                 http_handler: Callable[[HttpCall], Any] | None = None,
                 grpc_handler: Callable[[GrpcCall], Any] | None = None,
                 log_level: int | str = abi.TRACE, start: bool = True,
                 trace: bool = True, strict: bool = False,
                 allowed_statuses: dict[str, set[int]] | None = None,
                 allowed_calls: set[str] | None = None,
                 trace_limit: int | None = 50_000,
                 properties: Mapping[str, bytes | str] | None = None,
                 wall_clock_ns: int = WALL_START_NS,
                 source: str = "<inline>") -> None:
        if plugins is None:
            if wasm is None:
                raise ValueError("give the module bytes or a list of PluginConfig")
            plugins = [PluginConfig(
                name=name, root_id=root_id, kind=self.kind,  # type: ignore[arg-type]
                configuration=_b(configuration),
                failure_policy="fail_open" if fail_open else failure_policy,  # type: ignore[arg-type]
                vm=VmConfig(code=wasm, code_source=source, vm_id=vm_id,
                            configuration=_b(vm_configuration),
                            environment=dict(environment or {})))]
        # properties every stream starts with (proxytest's WithProperty): "a.b" -> value
        self.properties = property_state(properties)
        self.serial = next(_serials)
        RECENT.append((self.serial, weakref.ref(self)))
        self.logs: list[LogRecord] = []
        self.tracer: Tracer | None = Tracer(keep=trace_limit, strict=strict,
                                            allowed_statuses=allowed_statuses,
                                            allowed_calls=allowed_calls) \
            if trace or strict else None
        self.strict = strict
        self.dispatcher = VirtualDispatcher(clusters=list(clusters), http_handler=http_handler)
        self.dispatcher.grpc_handler = grpc_handler
        # the guest's clocks read the virtual clock (wall time from wall_clock_ns)
        self.time = VirtualTime(self.dispatcher, wall_clock_ns, inner=self.tracer)
        self.host = Host(plugins, self.dispatcher, limits=limits or Limits(),
                         log_sink=self.logs.append, log_level=level_number(log_level),
                         observer=self.time)
        if strict:     # a host call given memory outside the guest's (WASI ones too)
            self.host.on_memory_fault = self._memory_fault
        if start:
            self.start()

    def _memory_fault(self, plugin: str, message: str) -> None:
        if self.tracer is None:
            return
        ev = TraceEvent("hostcall", "(memory fault)", plugin, 0, 0, [])
        ev.error = message
        self.tracer.violations.append(ev)

    @classmethod
    def load(cls, source: str | Path, **options: Any) -> Any:
        """Load a filter from a .wasm file or a local store ref (``me/filter:v1``).

        A store ref's first root id is used unless ``root_id`` is given. Other options
        are the constructor's (configuration, vm_configuration, vm_id, environment,
        fail_open, clusters, strict...)."""
        wasm, where, root_ids = read_module(source)
        if "root_id" not in options and root_ids:
            options["root_id"] = root_ids[0]
        options.setdefault("name", Path(str(source)).stem if where == str(source)
                           else where.rsplit("/", 1)[-1].split(":", 1)[0])
        return cls(wasm, source=where, **options)

    def start(self) -> None:
        self.host.start()
        self.pump()

    def close(self) -> None:
        self.host.shutdown()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pump(self) -> int:
        """Run queued work; in strict mode raise if a host call failed meanwhile."""
        n = self.dispatcher.run_pending() if self.dispatcher._soon else 0
        if self.strict:
            self.check_strict()
        return n

    def check_strict(self) -> None:
        tracer = self.tracer
        if tracer is None or not tracer.violations:
            return
        found = tracer.take_violations()
        lines = [f"  {ev}" for ev in found]
        raise StrictModeError("strict mode: " + ("a host call failed" if len(found) == 1
                                                 else f"{len(found)} host calls failed")
                              + " or the guest trapped:\n" + "\n".join(lines)
                              + "\ntrace tail:\n" + tracer.tail(20))

    # observations ----------------------------------------------------------------
    def log_messages(self, level: int | str | None = None) -> list[str]:
        """The plugin's (and the host's) log lines, all or those of one level."""
        want = None if level is None else level_number(level)
        return [r.message for r in self.logs if want is None or r.level == want]

    def logs_by_level(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in self.logs:
            out.setdefault(abi.LEVEL_NAMES[r.level], []).append(r.message)
        return out

    def metric(self, name: str) -> int | None:
        """A counter's or gauge's value (None: not defined)."""
        return self.host.metrics.value(name)

    def metrics(self) -> dict[str, int]:
        """Every counter and gauge the filters defined, by name; histograms as their count."""
        out: dict[str, int] = {}
        for (t, n), m in self.host.metrics.metrics.items():
            out[n] = m.count if t == abi.METRIC_HISTOGRAM else m.value
        return out

    def prometheus(self) -> str:
        return self.host.prometheus_text()

    def shared_data(self, key: bytes | str, vm_id: str = "") -> bytes | None:
        entry = self.host.shared_data.get(vm_id, _b(key))
        return entry[0] if entry is not None else None

    def set_shared_data(self, key: bytes | str, value: bytes | str, vm_id: str = "") -> int:
        """Seed shared data as another VM would (returns the proxy-wasm status)."""
        return self.host.shared_data.set(vm_id, _b(key), _b(value), 0)

    def queue_items(self, name: bytes | str, vm_id: str = "") -> list[bytes]:
        token = self.host.queues.resolve(vm_id, _b(name))
        q = self.host.queues.get(token) if token is not None else None
        return list(q.items) if q is not None else []

    def enqueue(self, name: bytes | str, data: bytes | str, vm_id: str = "") -> int:
        """Put an item on a queue a filter registered; its on_queue_ready runs now."""
        token = self.host.queues.resolve(vm_id, _b(name))
        if token is None:
            return abi.NOT_FOUND
        status = self.host.queues.enqueue(token, _b(data))
        self.pump()
        return status

    @property
    def trace(self) -> list[TraceEvent]:
        return list(self.tracer.events) if self.tracer is not None else []

    def trace_tail(self, n: int = 30) -> str:
        return self.tracer.tail(n) if self.tracer is not None else "(tracing is off)"

    def host_calls(self, name: str | None = None) -> list[TraceEvent]:
        return self.tracer.host_calls(name) if self.tracer is not None else []

    # time and callouts -----------------------------------------------------------
    @property
    def now_ns(self) -> int:
        """The virtual monotonic clock (ns)."""
        return self.dispatcher.now_ns

    @property
    def wall_ns(self) -> int:
        """The virtual wall clock the guest reads (ns since the epoch)."""
        return self.time.wall_ns()

    def advance(self, seconds: float) -> int:
        """Move the virtual clock; due ticks and http call timeouts fire, in order.
        Returns how many timers fired."""
        fired = self.dispatcher.advance(seconds)
        if self.strict:
            self.check_strict()
        return fired

    def run_pending(self) -> int:
        return self.pump()

    def tick_period_ms(self, index: int = 0) -> int:
        """The tick period the index-th plugin's root context set (0: none)."""
        root = self.host.plugins[index].root
        return root.tick_period_ms if root is not None else 0

    @property
    def http_calls(self) -> list[HttpCall]:
        """Every http call the filters made, answered or not, in order."""
        return self.dispatcher.http_calls

    def pending_http_calls(self) -> list[HttpCall]:
        return self.dispatcher.pending_http_calls()

    def answer_http_call(self, status: int = 200, headers: HeaderInput | None = None,
                         body: bytes | str = b"", trailers: HeaderInput | None = None,
                         fail: bool = False, timeout: bool = False, index: int = 0) -> HttpCall:
        """Answer the index-th pending http call (``fail``: the call failed;
        ``timeout``: it timed out) and run the filter's response callback."""
        pending = self.pending_http_calls()
        if index >= len(pending):
            raise AssertionError(f"no pending http call #{index} (pending: {pending}; "
                                 f"all calls: {self.http_calls})")
        call = pending[index]
        if fail:
            call.fail()
        elif timeout:
            call.time_out()
        else:
            call.respond(status=status, headers=to_headers(headers), body=_b(body),
                         trailers=to_headers(trailers))
        self.pump()
        return call


    @property
    def grpc_calls(self) -> list[GrpcCall]:
        """Every gRPC call and stream the filters opened, in order."""
        return self.dispatcher.grpc_calls

    def open_grpc_calls(self) -> list[GrpcCall]:
        """gRPC calls neither closed by the test nor cancelled by the filter."""
        return self.dispatcher.open_grpc_calls()

    def answer_grpc_call(self, message: bytes | str = b"", status: int = 0,
                         status_message: bytes | str = b"", fail: bool = False,
                         timeout: bool = False, index: int = 0) -> GrpcCall:
        """Answer the index-th open gRPC call: one message and a status (``fail``: close
        with ``status`` (default 14) and no message; ``timeout``: as when its timeout
        passes) and run the filter's callbacks."""
        open_calls = self.open_grpc_calls()
        if index >= len(open_calls):
            raise AssertionError(f"no open gRPC call #{index} (all calls: {self.grpc_calls})")
        call = open_calls[index]
        if timeout:
            call.time_out()
        elif fail:
            call.fail(status or 14, _b(status_message))
        else:
            call.reply(_b(message), status, _b(status_message))
        self.pump()
        return call


class RootEmulator(HostEmulator):
    """Singleton plugins (bootstrap extensions): root context only, ticks and queues."""

    kind = "singleton"
