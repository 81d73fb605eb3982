"""A trace of every callback into the guest and every host call it makes, decoded.

:class:`Tracer` implements the host's :class:`~wasmetool.host.observe.CallObserver`: the
host hands it each import and export once, when a VM loads, and it wraps them. Each
call becomes a :class:`TraceEvent` with its arguments decoded from guest memory (strings,
header maps, buffer and map names, out-parameters after the call) and its status.

The same tracer serves the test API (kept events, the tail shown on a failure, strict
mode) and ``wasmetool run --trace`` (a sink that prints each event as it happens).
"""

from __future__ import annotations

import struct
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wasmetool.host import abi, pairs
from wasmetool.host.fastpath import AbortGuest, GuestTrap

if TYPE_CHECKING:
    from wasmetool.host.vm import Vm

STATUS_NAMES = {
    abi.OK: "OK", abi.NOT_FOUND: "NOT_FOUND", abi.BAD_ARGUMENT: "BAD_ARGUMENT",
    abi.SERIALIZATION_FAILURE: "SERIALIZATION_FAILURE", abi.PARSE_FAILURE: "PARSE_FAILURE",
    5: "BAD_EXPRESSION", abi.INVALID_MEMORY_ACCESS: "INVALID_MEMORY_ACCESS",
    abi.EMPTY: "EMPTY", abi.CAS_MISMATCH: "CAS_MISMATCH", 9: "RESULT_MISMATCH",
    abi.INTERNAL_FAILURE: "INTERNAL_FAILURE", abi.BROKEN_CONNECTION: "BROKEN_CONNECTION",
    abi.UNIMPLEMENTED: "UNIMPLEMENTED",
}
# statuses that are ordinary answers (a missing header, an empty queue, a CAS race)
ORDINARY_STATUSES = frozenset({abi.OK, abi.NOT_FOUND, abi.EMPTY, abi.CAS_MISMATCH})

MAP_NAMES = ("request_headers", "request_trailers", "response_headers", "response_trailers",
             "grpc_initial_metadata", "grpc_trailing_metadata", "http_call_response_headers",
             "http_call_response_trailers")
BUFFER_NAMES = ("request_body", "response_body", "downstream_data", "upstream_data",
                "http_call_response_body", "grpc_message", "vm_configuration",
                "plugin_configuration", "foreign_function_arguments")
STREAM_NAMES = ("request", "response", "downstream", "upstream")
PEER_NAMES = ("unknown", "local", "remote")
METRIC_NAMES = ("counter", "gauge", "histogram")

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

# Argument specs: "name" (integer), "name:kind" (enum or flag), "name:str"/"name:pairs"
# (a pointer and a size, read before the call), "name:out"/"name:outpairs" (a pointer to
# the returned pointer and one to the size, read after the call), "name:u32"/"name:u64"
# (a pointer the host writes one integer to).
HOST_CALLS: dict[str, tuple[str, ...]] = {
    "proxy_log": ("level:level", "message:str"),
    "proxy_get_log_level": ("level:u32",),
    "proxy_get_current_time_nanoseconds": ("time:u64",),
    "proxy_set_tick_period_milliseconds": ("period_ms",),
    "proxy_get_configuration": ("configuration:out",),
    "proxy_get_buffer_bytes": ("buffer:buffer", "start", "max_size", "data:out"),
    "proxy_set_buffer_bytes": ("buffer:buffer", "start", "size", "data:str"),
    "proxy_get_buffer_status": ("buffer:buffer", "size:u32", "flags:u32"),
    "proxy_get_header_map_pairs": ("map:map", "pairs:outpairs"),
    "proxy_set_header_map_pairs": ("map:map", "pairs:pairs"),
    "proxy_get_header_map_size": ("map:map", "size:u32"),
    "proxy_get_header_map_value": ("map:map", "key:str", "value:out"),
    "proxy_add_header_map_value": ("map:map", "key:str", "value:str"),
    "proxy_replace_header_map_value": ("map:map", "key:str", "value:str"),
    "proxy_remove_header_map_value": ("map:map", "key:str"),
    "proxy_get_property": ("path:path", "value:out"),
    "proxy_set_property": ("path:path", "value:str"),
    "proxy_continue_stream": ("stream:stream",),
    "proxy_close_stream": ("stream:stream",),
    "proxy_send_local_response": ("status", "details:str", "body:str", "headers:pairs",
                                  "grpc_status"),
    "proxy_http_call": ("cluster:str", "headers:pairs", "body:str", "trailers:pairs",
                        "timeout_ms", "token:u32"),
    "proxy_grpc_call": ("cluster:str", "service:str", "method:str", "metadata:pairs",
                        "message:str", "timeout_ms", "token:u32"),
    "proxy_grpc_stream": ("cluster:str", "service:str", "method:str", "metadata:pairs",
                          "token:u32"),
    "proxy_grpc_send": ("token", "message:str", "end_stream:bool"),
    "proxy_grpc_cancel": ("token",),
    "proxy_grpc_close": ("token",),
    "proxy_get_shared_data": ("key:str", "value:out", "cas:u32"),
    "proxy_set_shared_data": ("key:str", "value:str", "cas"),
    "proxy_register_shared_queue": ("name:str", "queue_id:u32"),
    "proxy_resolve_shared_queue": ("vm_id:str", "name:str", "queue_id:u32"),
    "proxy_enqueue_shared_queue": ("queue_id", "data:str"),
    "proxy_dequeue_shared_queue": ("queue_id", "data:out"),
    "proxy_define_metric": ("type:metric", "name:str", "metric_id:u32"),
    "proxy_increment_metric": ("metric_id", "offset"),
    "proxy_record_metric": ("metric_id", "value"),
    "proxy_get_metric": ("metric_id", "value:u64"),
    "proxy_set_effective_context": ("context_id",),
    "proxy_get_status": ("code:u32", "message:out"),
    "proxy_call_foreign_function": ("name:str", "arguments:str", "result:out"),
}

CALLBACK_ARGS: dict[str, tuple[str, ...]] = {
    "proxy_on_context_create": ("context_id", "parent_context_id"),
    "proxy_on_vm_start": ("context_id", "vm_configuration_size"),
    "proxy_on_configure": ("context_id", "plugin_configuration_size"),
    "proxy_on_tick": ("context_id",),
    "proxy_on_done": ("context_id",),
    "proxy_on_log": ("context_id",),
    "proxy_on_delete": ("context_id",),
    "proxy_on_new_connection": ("context_id",),
    "proxy_on_downstream_data": ("context_id", "data_size", "end_of_stream:bool"),
    "proxy_on_upstream_data": ("context_id", "data_size", "end_of_stream:bool"),
    "proxy_on_downstream_connection_close": ("context_id", "peer:peer"),
    "proxy_on_upstream_connection_close": ("context_id", "peer:peer"),
    "proxy_on_request_headers": ("context_id", "num_headers", "end_of_stream:bool"),
    "proxy_on_response_headers": ("context_id", "num_headers", "end_of_stream:bool"),
    "proxy_on_request_body": ("context_id", "body_size", "end_of_stream:bool"),
    "proxy_on_response_body": ("context_id", "body_size", "end_of_stream:bool"),
    "proxy_on_request_trailers": ("context_id", "num_trailers"),
    "proxy_on_response_trailers": ("context_id", "num_trailers"),
    "proxy_on_http_call_response": ("context_id", "token", "num_headers", "body_size",
                                    "num_trailers"),
    "proxy_on_grpc_receive_initial_metadata": ("context_id", "token", "num_headers"),
    "proxy_on_grpc_receive": ("context_id", "token", "message_size"),
    "proxy_on_grpc_receive_trailing_metadata": ("context_id", "token", "num_trailers"),
    "proxy_on_grpc_close": ("context_id", "token", "status_code"),
    "proxy_on_queue_ready": ("context_id", "queue_id"),
    "proxy_on_foreign_function": ("context_id", "function_id", "data_size"),
}
# what a callback's return value means
ACTION_CALLBACKS = frozenset({
    "proxy_on_request_headers", "proxy_on_response_headers", "proxy_on_request_body",
    "proxy_on_response_body", "proxy_on_request_trailers", "proxy_on_response_trailers",
    "proxy_on_new_connection", "proxy_on_downstream_data", "proxy_on_upstream_data"})
BOOL_CALLBACKS = frozenset({"proxy_on_vm_start", "proxy_on_configure", "proxy_on_done"})
UNTRACED = frozenset({"malloc", "proxy_on_memory_allocate"})   # the guest's allocator

_IN_PAIRS = ("str", "pairs", "path", "out", "outpairs")


def action_name(value: int) -> str:
    return {0: "Continue", 1: "Pause"}.get(value, f"Stop({value})")


def _enum(names: tuple[str, ...], value: int) -> str:
    return names[value] if 0 <= value < len(names) else str(value)


def show_bytes(data: bytes | None, limit: int = 160) -> str:
    if data is None:
        return "<unreadable>"
    text = data.decode("utf-8", "backslashreplace")
    if len(text) > limit:
        return repr(text[:limit])[:-1] + f"…' ({len(data)} bytes)"
    return repr(text)


def show_pairs(data: bytes | None) -> str:
    if data is None:
        return "<unreadable>"
    decoded = pairs.decode(data)
    if decoded is None:
        return f"<malformed map, {len(data)} bytes>"
    return "{" + ", ".join(f"{show_bytes(k, 60)}: {show_bytes(v, 60)}" for k, v in decoded) + "}"


def _parse_specs(specs: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((spec.partition(":")[0], spec.partition(":")[2]) for spec in specs)


_HOST_SPECS = {name: _parse_specs(specs) for name, specs in HOST_CALLS.items()}
_CALLBACK_SPECS = {name: _parse_specs(specs[1:]) for name, specs in CALLBACK_ARGS.items()}
_ENUMS = {"level": abi.LEVEL_NAMES, "map": MAP_NAMES, "buffer": BUFFER_NAMES,
          "stream": STREAM_NAMES, "peer": PEER_NAMES, "metric": METRIC_NAMES}
Captured = list[tuple[str, str, Any]]          # (argument name, kind, int or bytes|None)


def _show(kind: str, value: Any) -> Any:
    """One captured argument as the trace shows it."""
    if kind == "str":
        return show_bytes(value)
    if kind in ("pairs", "outpairs"):
        return show_pairs(value)
    if kind == "out":
        return show_bytes(value)
    if kind == "path":
        if value is None:
            return "<unreadable>"
        return ".".join(p.decode("utf-8", "replace") for p in value.split(b"\0") if p)
    if kind == "bool":
        return "true" if value else "false"
    names = _ENUMS.get(kind)
    if names is not None:
        return _enum(names, value)
    return value


class TraceEvent:
    """One callback (``kind="callback"``) or host call (``kind="hostcall"``).

    What the call carried is captured when it happens (numbers, and the bytes of strings
    and maps read from guest memory); :attr:`args` and :attr:`outputs` format it when
    read."""

    __slots__ = ("kind", "name", "plugin", "context_id", "depth", "result", "error", "done",
                 "_args", "_outputs", "_shown_args", "_shown_outputs")

    def __init__(self, kind: str, name: str, plugin: str, context_id: int, depth: int,
                 args: Any = None) -> None:
        self.kind = kind
        self.name = name
        self.plugin = plugin
        self.context_id = context_id
        self.depth = depth
        self.result: int | None = None
        self.error: str | None = None
        self.done = False
        self._args = args if args is not None else []
        self._outputs: Captured = []
        self._shown_args: dict[str, Any] | None = None
        self._shown_outputs: dict[str, Any] | None = None

    @property
    def args(self) -> dict[str, Any]:
        """The decoded arguments: enum names, strings and maps read from guest memory."""
        if self._shown_args is None:
            raw = self._args
            if isinstance(raw, dict):
                self._shown_args = dict(raw)
            elif isinstance(raw, tuple):         # a callback: (specs, its integer args)
                specs, values = raw
                self._shown_args = {name: _show(kind, v)
                                    for (name, kind), v in zip(specs, values, strict=False)}
            else:
                self._shown_args = {name: _show(kind, value) for name, kind, value in raw}
        return self._shown_args

    @property
    def outputs(self) -> dict[str, Any]:
        """What a host call wrote back for the guest (values behind its out-pointers)."""
        if self._shown_outputs is None:
            self._shown_outputs = {name: _show(kind, value) for name, kind, value in
                                   self._outputs}
        return self._shown_outputs

    @property
    def status(self) -> str:
        """A host call's status name (``OK``, ``NOT_FOUND``...)."""
        if self.result is None:
            return ""
        return STATUS_NAMES.get(self.result, str(self.result))

    @property
    def action(self) -> str | None:
        """A stream callback's action (``Continue``/``Pause``), else None."""
        if self.kind != "callback" or self.name not in ACTION_CALLBACKS or self.result is None:
            return None
        return action_name(self.result)

    def result_text(self) -> str:
        if self.error is not None:
            return self.error if self.kind == "hostcall" else f"TRAP {self.error}"
        if self.result is None:
            return ""
        if self.kind == "hostcall":
            text = self.status if self.name in HOST_CALLS else str(self.result)
            if self._outputs:
                text += " " + ", ".join(f"{k}={v}" for k, v in self.outputs.items())
            return text
        if self.name in ACTION_CALLBACKS:
            return action_name(self.result)
        if self.name in BOOL_CALLBACKS:
            return "true" if self.result else "false"
        return ""           # the other callbacks return nothing

    def call_text(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.name}({args})"

    def __str__(self) -> str:
        indent = "  " * self.depth
        arrow = "→ " if self.kind == "callback" else "  "
        text = f"[{self.plugin} #{self.context_id}] {indent}{arrow}{self.call_text()}"
        result = self.result_text()
        return f"{text} = {result}" if result else text

    def __repr__(self) -> str:
        return f"<TraceEvent {self}>"


class StrictModeError(AssertionError):
    """A host call failed (or the guest trapped) while the emulator ran in strict mode."""


def _peek(mem: Any, ptr: int, n: int) -> bytes | None:
    """Guest memory as the trace reads it: like GuestMemory.read, but an access outside
    the memory is not reported as the guest's fault (the trace must change nothing)."""
    if mem is None:
        return None
    end = ptr + n
    if end > mem.size:
        mem.refresh()
        if end > mem.size:
            return None
    return bytes(mem.view[ptr:end])


def _peek_u32(mem: Any, ptr: int) -> int | None:
    data = _peek(mem, ptr, 4)
    return _U32.unpack(data)[0] if data is not None else None


def _capture_in(mem: Any, specs: tuple[tuple[str, str], ...], raw: tuple[int, ...],
                out_slots: list[tuple[str, str, int, int]]) -> Captured:
    """A host call's arguments as numbers and the bytes they point at (read now: the guest
    may reuse that memory after the call)."""
    args: Captured = []
    i = 0
    n = len(raw)
    for name, kind in specs:
        if i >= n:
            break
        if kind in _IN_PAIRS:
            ptr, size = raw[i], raw[i + 1] if i + 1 < n else 0
            i += 2
            if kind in ("out", "outpairs"):
                out_slots.append((name, kind, ptr, size))
            else:
                args.append((name, kind, _peek(mem, ptr, size)))
            continue
        value = raw[i]
        i += 1
        if kind in ("u32", "u64"):
            out_slots.append((name, kind, value, 0))
        else:
            args.append((name, kind, value))
    return args


def _capture_out(mem: Any, slots: list[tuple[str, str, int, int]]) -> Captured:
    out: Captured = []
    for name, kind, ptr, size_ptr in slots:
        if kind == "u32":
            out.append((name, "", _peek_u32(mem, ptr)))
        elif kind == "u64":
            data = _peek(mem, ptr, 8)
            out.append((name, "", _U64.unpack(data)[0] if data is not None else None))
        else:
            p, n = _peek_u32(mem, ptr), _peek_u32(mem, size_ptr)
            out.append((name, kind, _peek(mem, p, n) if p is not None and n is not None
                        else None))
    return out


class Tracer:
    """Records (and optionally forwards) every callback and host call of the VMs it wraps.

    ``keep``: how many events to keep in :attr:`events` (None = all, 0 = none);
    ``sink``: called with each event when it starts (callbacks again when they return);
    ``strict``: host calls that fail (a status other than OK, NOT_FOUND, EMPTY or
    CAS_MISMATCH, unless listed in ``allowed_statuses``), host calls not named in
    ``allowed_calls`` (when given) and traps go to :attr:`violations`.
    """

    def __init__(self, *, keep: int | None = None,
                 sink: Callable[[str, TraceEvent], None] | None = None,
                 strict: bool = False,
                 allowed_statuses: dict[str, set[int]] | None = None,
                 allowed_calls: set[str] | None = None) -> None:
        self.events: deque[TraceEvent] | list[TraceEvent] = \
            deque(maxlen=keep) if keep is not None else []
        self.keep = keep
        self.sink = sink
        self.strict = strict
        self.allowed = allowed_statuses or {}
        self.allowed_calls = allowed_calls
        self.violations: list[TraceEvent] = []
        self._depth: dict[int, int] = {}     # per VM (a VM runs on one thread)

    # ------------------------------------------------------------------ CallObserver
    def wrap_host_function(self, vm: Vm, name: str,
                           fn: Callable[..., Any]) -> Callable[..., Any]:
        specs = _HOST_SPECS.get(name)
        tracer = self

        def traced(bound: Vm, *raw: int) -> Any:
            ctx = bound.ctx()
            plugin = _plugin_name(bound, ctx)
            slots: list[tuple[str, str, int, int]] = []
            if specs is not None:
                args: Captured = _capture_in(bound.mem, specs, raw, slots)
            else:
                args = [(f"a{i}", "", v) for i, v in enumerate(raw)]
            ev = TraceEvent("hostcall", name, plugin, ctx.id, tracer._depth.get(id(bound), 0),
                            args)
            tracer._record(ev)
            if tracer.strict and tracer.allowed_calls is not None \
                    and name not in tracer.allowed_calls:
                ev.error = "unexpected host call (not in allowed_calls)"
                tracer.violations.append(ev)
            try:
                result = fn(bound, *raw)
            except AbortGuest as e:
                ev.error = str(e)
                ev.done = True
                raise
            ev.result = result
            ev.done = True
            if ev.error is not None:
                ev.error = f"{ev.error}, returned {STATUS_NAMES.get(result, result)}"
            if slots and result == abi.OK:
                try:
                    ev._outputs = _capture_out(bound.mem, slots)
                except Exception:  # noqa: BLE001 - a trace must never change the call
                    ev._outputs = []
            if tracer.strict and specs is not None and result is not None \
                    and result not in ORDINARY_STATUSES \
                    and result not in tracer.allowed.get(name, ()):
                tracer.violations.append(ev)
            return result

        return traced

    def wrap_callback(self, vm: Vm, name: str, call: Callable[..., int]) -> Callable[..., int]:
        if name in UNTRACED:
            return call
        specs = _CALLBACK_SPECS.get(name)
        tracer = self

        def traced(*raw: int) -> int:
            if specs is not None:
                args: Any = (specs, raw[1:])             # formatted when read
                cid = raw[0]
            else:
                args = [(f"a{i}", "", v) for i, v in enumerate(raw)]
                cid = 0
            ctx = vm.contexts.get(cid)
            key = id(vm)
            depth = tracer._depth.get(key, 0)
            ev = TraceEvent("callback", name, _plugin_name(vm, ctx), cid, depth, args)
            tracer._record(ev)
            tracer._depth[key] = depth + 1
            try:
                result = call(*raw)
            except GuestTrap as e:
                ev.error = str(e)
                ev.done = True
                if tracer.strict:
                    tracer.violations.append(ev)
                raise
            finally:
                tracer._depth[key] = depth
            ev.result = result
            ev.done = True
            if tracer.sink is not None:
                tracer.sink("return", ev)
            return result

        return traced

    # ------------------------------------------------------------------ reading
    def _record(self, ev: TraceEvent) -> None:
        if self.keep != 0:
            self.events.append(ev)
        if self.sink is not None:
            self.sink("call", ev)

    def clear(self) -> None:
        self.events.clear()
        self.violations.clear()

    def callbacks(self, context_id: int | None = None) -> list[TraceEvent]:
        return [e for e in self.events if e.kind == "callback"
                and (context_id is None or e.context_id == context_id)]

    def host_calls(self, name: str | None = None) -> list[TraceEvent]:
        return [e for e in self.events if e.kind == "hostcall"
                and (name is None or e.name == name)]

    def of_filters(self, filters: Any) -> list[TraceEvent]:
        """The events of these filter contexts (a stream's or a connection's filters: each
        with ``plugin.name`` and ``id``)."""
        mine = {(f.plugin.name, f.id) for f in filters}
        return [e for e in self.events if (e.plugin, e.context_id) in mine]

    def tail(self, n: int = 30) -> str:
        events = list(self.events)[-n:]
        return "\n".join(str(e) for e in events)

    def take_violations(self) -> list[TraceEvent]:
        found, self.violations = self.violations, []
        return found


def _plugin_name(vm: Vm, ctx: Any) -> str:
    if ctx is not None and getattr(ctx, "root", None) is not None:
        return ctx.root.plugin.config.name
    return vm.name


def print_sink(write: Callable[[str], Any]) -> Callable[[str, TraceEvent], None]:
    """A sink for live traces (``wasmetool run --trace``): callbacks as they start and
    return; each host call once it returned (with its status and outputs), that is before
    the next event of its thread. Safe with several worker threads (``--concurrency``)."""
    local = threading.local()
    lock = threading.Lock()

    def sink(phase: str, ev: TraceEvent) -> None:
        pending: list[TraceEvent] = local.__dict__.setdefault("pending", [])
        with lock:
            while pending:
                write(str(pending.pop(0)))
            where = f"[{ev.plugin} #{ev.context_id}] {'  ' * ev.depth}"
            if phase != "call":
                result = ev.result_text()
                write(f"{where}← {ev.name}" + (f" = {result}" if result else ""))
            elif ev.kind == "callback":
                write(f"{where}→ {ev.call_text()}")
            else:
                pending.append(ev)

    return sink
